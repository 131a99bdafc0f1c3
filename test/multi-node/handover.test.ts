/**
 * A node that goes away hands its sessions to the other node on the same
 * MemoryStore, behind a round-robin balancer, and the client never sees a
 * reset:
 *
 * - A node that leaves (graceful close()) mid-stream: the other takes the
 *   session over (resumed); nothing is lost or delivered twice either way.
 * - A node that leaves in the very turn it delivered a message writes that
 *   message's delivery mark first: the next owner redelivers nothing.
 * - A node that dies (its store calls fail and its heartbeat lapses) loses
 *   its session to the other; the wire loses and duplicates nothing, and
 *   only what the dead owner had accepted is flagged redelivered.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { MemoryStore, type Session } from '../../server/index.js';
import { balance, newClient, recordAtServer, recordingClient } from '../helpers/nodes.js';
import { Cleanup, Condition, withTimeout } from '../helpers/server.js';
import { assertTestScheme } from '../helpers/tls.js';
import { assertExactlyOnce, key, killable, message, nodeOn, streamAcrossOwners, twoNodes } from './helpers.js';

describe('two servers, one MemoryStore', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it('a node that leaves (close()) hands its sessions over: the other takes it (resumed), no reset, nothing lost', async () => {
    // Opens go to A first: A owns the session.
    const { a, b, lb } = await twoNodes(cleanup, 'leave');
    // https in the https run (scripts/test-https.ts): the client to the balancer, and the balancer to each node.
    assertTestScheme(lb.origin, 'the balancer');
    assertTestScheme(a.origin, 'node a');
    assertTestScheme(b.origin, 'node b');
    const changed = new Condition();
    // Flagged messages may come twice (the leaving owner may not have marked them delivered).
    const atServer = recordAtServer([a, b], changed, { dropFlaggedRepeats: true });
    const { client, received: atClient, resets } = await recordingClient(cleanup, lb.origin, changed);
    const sid = client.sessionId ?? '';
    const first = a.hl.session(sid);
    assert.ok(first, 'A owns the session it opened');
    const onFirst: string[] = [];
    first.on('moved', () => onFirst.push('moved'));
    first.on('close', () => onFirst.push('close'));

    const N = 1_000;
    const expectedUp: string[] = [];
    const expectedDown: string[] = [];
    for (let i = 0; i < N; i++) {
      const m = message('down', i);
      expectedDown.push(key(m));
      await first.send(m);
    }
    const upHalf = Array.from({ length: N }, (_, i) => message('up', i));
    for (const m of upHalf.slice(0, N / 2)) {
      expectedUp.push(key(m));
      await client.send(m);
    }
    // A leaves mid-stream: the balancer stops sending to it, and it hands over.
    lb.drop(0);
    await a.hl.close();
    assert.deepEqual(onFirst, ['moved'], "the leaving node's session says it moved, and does not close");
    assert.equal(first.state, 'closed', 'that object is done');
    for (const m of upHalf.slice(N / 2)) {
      expectedUp.push(key(m));
      await client.send(m);
    }
    await changed.until(() => b.sessions.length === 1, 10_000, () => 'B to take the session over');
    const taken = b.sessions[0];
    assert.ok(taken);
    assert.equal(taken.id, sid);
    assert.equal(taken.resumed, true);
    for (let i = N; i < 2 * N; i++) {
      const m = message('down', i);
      expectedDown.push(key(m));
      await taken.send(m);
    }
    await changed.until(() => atServer.length >= N && atClient.length >= 2 * N, 30_000, () => `server has ${atServer.length}/${N}, client ${atClient.length}/${2 * N}`);
    assertExactlyOnce(atServer, expectedUp, 'client to server');
    assertExactlyOnce(atClient, expectedDown, 'server to client');
    assert.deepEqual(resets, []);
    assert.equal(client.state, 'open');
  });

  it('a node that leaves right after a delivery writes its delivery mark first: the next owner redelivers nothing', async () => {
    const { a, b, lb } = await twoNodes(cleanup, 'mark');
    const onA: string[] = [];
    const onB: Array<{ m: string; redelivered: boolean }> = [];
    let leaving: Promise<void> | undefined;
    a.hl.on('session', (s) =>
      s.on('message', (m) => {
        onA.push(key(m));
        // Leaves in the very turn it delivered x1: the mark of x1 is still to be written.
        lb.drop(0);
        leaving ??= a.hl.close();
      }),
    );
    const changed = new Condition();
    b.hl.on('session', (s) =>
      s.on('message', (m, info) => {
        onB.push({ m: key(m), redelivered: info?.redelivered === true });
        changed.notify();
      }),
    );
    const client = newClient(cleanup, lb.origin);
    await client.connect();
    assert.ok(a.hl.session(client.sessionId ?? ''), 'A owns the session it opened');
    await client.send('x1');
    await leaving;
    await client.send('x2');
    await changed.until(() => onB.length >= 1, 10_000, () => 'B to deliver x2');
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(onA, ['x1']);
    assert.deepEqual(onB, [{ m: 'x2', redelivered: false }], 'x1 was marked delivered before A handed the session over');
  });

  it('a node that dies (store calls fail, heartbeat lapses) loses its session to the other; the wire loses and duplicates nothing', async () => {
    const shared = new MemoryStore();
    const dying = killable(shared);
    const a = await nodeOn(cleanup, dying.store, 'dies-a', 400);
    const b = await nodeOn(cleanup, shared, 'dies-b', 400);
    const lb = await balance(cleanup, [a.origin, b.origin]);
    const flagged: string[] = [];
    const changed = new Condition();
    const atServer = recordAtServer([a, b], changed, {
      dropFlaggedRepeats: true,
      each: (k, info) => {
        if (info?.redelivered) flagged.push(k);
      },
    });
    const { client, received: atClient, resets } = await recordingClient(cleanup, lb.origin, changed);
    const sid = client.sessionId ?? '';
    assert.ok(a.hl.session(sid), 'A owns the session it opened');

    const N = 2_000;
    const expectedUp = Array.from({ length: N }, (_, i) => key(message('up', i)));
    const expectedDown = Array.from({ length: N }, (_, i) => key(message('down', i)));
    /** The node that owns the session now, as the application sees it. */
    const current = (): Session | undefined => b.sessions.at(-1) ?? a.hl.session(sid);
    const streamed = streamAcrossOwners(client, current, N);
    await changed.until(() => atServer.length >= N / 4 && atClient.length >= N / 4, 30_000, () => 'a quarter of the stream');
    // A dies: its store calls fail, its heartbeat stops, its connections drop.
    dying.kill();
    lb.drop(0);
    a.http.closeAllConnections();
    await withTimeout(streamed, 60_000, 'sending across the takeover');
    await changed.until(() => atServer.length >= N && atClient.length >= N, 60_000, () => `server has ${atServer.length}/${N}, client ${atClient.length}/${N}`);
    assertExactlyOnce(atServer, expectedUp, 'client to server (flagged repeats dropped)');
    assertExactlyOnce(atClient, expectedDown, 'server to client');
    assert.equal(b.sessions.length, 1, 'B took the session over once');
    assert.equal(b.sessions[0]?.resumed, true);
    assert.deepEqual(resets, [], 'the client never saw a reset');
    assert.equal(client.sessionId, sid);
    // Only what the dead owner may have delivered is flagged, and flagged messages are ones it had accepted.
    for (const f of flagged) assert.ok(expectedUp.includes(f));
  });
});
