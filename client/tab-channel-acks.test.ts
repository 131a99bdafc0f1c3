/**
 * HoldlineTabClient's acknowledgement accounting, with a scripted client whose
 * acks and session losses the test drives (tabs in Node: real
 * BroadcastChannels, a FIFO lock manager for navigator.locks): a tab's
 * messages are confirmed exactly as the server acknowledges them, after a
 * reset the lost ones are listed exactly, the leader's own are confirmed on
 * its client's ack event with no timer, and a message the client refuses is
 * reported to its tab while the acks of later ones still line up.
 */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type { Payload } from '../shared/index.js';
import { closeTabs, firstOf, ScriptedClient, tabGroup } from '../test/helpers/tabs.js';
import { waitFor } from '../test/helpers/wait.js';

afterEach(closeTabs);

describe('HoldlineTabClient acknowledgement accounting (scripted client)', () => {
  it('confirms exactly what the server acknowledged; after a reset, lists the lost messages of the tab exactly', async () => {
    const delivered: Payload[] = [];
    const made: ScriptedClient[] = [];
    const tab = tabGroup('http://127.0.0.1:1/holdline', () => {
      const c = new ScriptedClient(delivered);
      made.push(c);
      return c;
    });
    const [a, b] = [tab(), tab()];
    await Promise.all([a.connect(), b.connect()]);
    assert.equal(made.length, 1);
    const core = firstOf(made, 'scripted client');
    for (const m of ['b1', '', 'b3', 'b4']) await b.send(m);
    await waitFor(() => core.outstanding.length === 4, 5_000, '4 handed over');

    core.receive(2, true); // 'b1' and '' acknowledged: an empty message counts like any other
    await waitFor(() => b.stats.unconfirmed === 2, 5_000, 'b1 and the empty one confirmed');
    core.receive(1, true);
    await waitFor(() => b.stats.unconfirmed === 1, 5_000, 'b3 confirmed');

    const lost: Payload[][] = [];
    b.on('reset', (e) => lost.push(e.lost));
    core.receive(1, false); // 'b4' reached the server, its ack did not come back
    core.loseSession({ code: 'session_unknown', message: 'gone' });
    // 'b4' went to the old session, unacknowledged: lost, and listed in b's reset (as HoldlineClient's would).
    await waitFor(() => lost.length === 1, 5_000, 'the reset');
    assert.deepEqual(lost, [['b4']]);
    assert.equal(b.stats.unconfirmed, 0);
    await b.send('b5');
    await waitFor(() => core.outstanding.length === 1, 5_000, 'sent');
    assert.deepEqual(core.outstanding, ['b5']);
    core.receive(1, true);
    await waitFor(() => b.stats.unconfirmed === 0 && b.bufferedAmount === 0, 5_000, 'all confirmed');
    assert.deepEqual(delivered, ['b1', '', 'b3', 'b4', 'b5']);
  });

  it("confirms the leader's own messages the moment its client reports the ack, with no timer", async () => {
    const made: ScriptedClient[] = [];
    const a = tabGroup('http://127.0.0.1:1/holdline', () => {
      const c = new ScriptedClient([]);
      made.push(c);
      return c;
    })();
    await a.connect();
    const core = firstOf(made, 'scripted client');
    for (const m of ['a1', 'a2', 'a3']) await a.send(m);
    assert.deepEqual(core.outstanding, ['a1', 'a2', 'a3']);
    assert.equal(a.stats.unconfirmed, 3);
    core.receive(2, true);
    assert.equal(a.stats.unconfirmed, 1, 'confirmed synchronously, on the ack event');
    assert.equal(a.bufferedAmount, 2);
    core.receive(1, true);
    assert.deepEqual([a.stats.unconfirmed, a.bufferedAmount], [0, 0]);
  });

  it('a message the client refuses is reported to its tab, and the acks of the later ones still line up', async () => {
    const made: ScriptedClient[] = [];
    const tab = tabGroup('http://127.0.0.1:1/holdline', () => {
      const c = new ScriptedClient([], 5);
      made.push(c);
      return c;
    });
    const [a, b] = [tab(), tab()];
    await Promise.all([a.connect(), b.connect()]);
    const core = firstOf(made, 'scripted client');
    const errors: string[] = [];
    b.on('error', (e) => errors.push(e.code));
    for (const m of ['b1', 'too large', 'b3']) await b.send(m);
    await waitFor(() => errors.length === 1, 5_000, 'the refusal');
    assert.deepEqual(errors, ['message_too_large']);
    assert.deepEqual(core.outstanding, ['b1', 'b3']);
    assert.equal(b.stats.unconfirmed, 2);
    core.receive(1, true);
    await waitFor(() => b.stats.unconfirmed === 1, 5_000, 'b1 confirmed');
    core.receive(1, true); // the client's 2nd message is 'b3'
    await waitFor(() => b.stats.unconfirmed === 0 && b.bufferedAmount === 0, 5_000, 'b3 confirmed');

    // The leader's own sends reach its client in one go, so the refusal comes
    // after a later message was handed over: that one moves up in the client's order.
    const errorsA: string[] = [];
    a.on('error', (e) => errorsA.push(e.code));
    await Promise.all(['a1', 'too large', 'a3'].map((m) => a.send(m)));
    await waitFor(() => errorsA.length === 1, 5_000, 'the refusal');
    assert.deepEqual(core.outstanding, ['a1', 'a3']);
    core.receive(2, true);
    assert.deepEqual([a.stats.unconfirmed, a.bufferedAmount], [0, 0]);
  });
});
