/**
 * Requests about a session that reach a node other than its owner, with two
 * nodes on one MemoryStore:
 *
 * - From any node, remote(id).send() reaches a session owned elsewhere,
 *   broadcast() reaches every node's sessions, and a remote send to a
 *   session that does not exist fails with session_unknown.
 * - A poll held on one node whose session the owner closes meanwhile gets
 *   the close frame at once, not a hold or a 404 (even when that node's
 *   store is slow and its wake-ups lose the close).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { MemoryStore } from '../../server/index.js';
import { newClient } from '../helpers/nodes.js';
import { Cleanup, Condition } from '../helpers/server.js';
import { assertTestScheme } from '../helpers/tls.js';
import { nodeOn, twoNodes } from './helpers.js';

describe('two servers, one MemoryStore', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it('from any node: remote(id).send() reaches a session owned elsewhere, broadcast() reaches every node\'s sessions', async () => {
    const { a, b, lb } = await twoNodes(cleanup, 'any');
    // https in the https run (scripts/test-https.ts): the client to the balancer, and the balancer to each node.
    assertTestScheme(lb.origin, 'the balancer');
    assertTestScheme(a.origin, 'node a');
    assertTestScheme(b.origin, 'node b');
    // Two clients: opens alternate, so one session is owned by each node.
    const clients = [0, 1].map(() => newClient(cleanup, lb.origin));
    const got: string[][] = [[], []];
    const changed = new Condition();
    for (const [i, c] of clients.entries()) {
      c.on('message', (m) => {
        got[i]?.push(String(m));
        changed.notify();
      });
      await c.connect();
    }
    const [sid0, sid1] = clients.map((c) => c.sessionId ?? '');
    assert.ok(a.hl.session(sid0 ?? '') && b.hl.session(sid1 ?? ''), 'one session owned by each node');

    // B never saw client 0's session as its owner: it sends to it all the same.
    assert.equal(b.hl.session(sid0 ?? ''), undefined);
    await b.hl.remote(sid0 ?? '').send('from B, which does not own it');
    await changed.until(() => got[0]?.includes('from B, which does not own it') === true, 5_000, () => 'the remote send');

    // A broadcast on B reaches both sessions.
    const r = await b.hl.broadcast('to everyone');
    assert.deepEqual(r, { queued: 1, failed: 0 }, 'B counts the session it owns');
    await changed.until(() => got.every((g) => g.includes('to everyone')), 5_000, () => `broadcast: ${JSON.stringify(got)}`);

    // A session that does not exist: the remote send says so.
    const err = await a.hl.remote('no-such-session-id').send('x').then(() => undefined, (e: { code: string }) => e.code);
    assert.equal(err, 'session_unknown');
  });

  it('a poll on one node whose session the owner closes meanwhile gets the close frame at once, not a hold or a 404', async () => {
    const shared = new MemoryStore();
    // Node B's store is slow to answer pendingOutbound: the owner closes the session in that gap.
    const slow = new Proxy(shared, {
      get(target, prop, receiver) {
        const v: unknown = Reflect.get(target, prop, receiver);
        if (typeof v !== 'function') return v;
        // And its wake-ups lose the close (a late or lost event): only the store can tell it.
        if (prop === 'subscribe') {
          return (listener: Parameters<MemoryStore['subscribe']>[0]) => target.subscribe((sid, event) => event.type === 'close' || listener(sid, event));
        }
        if (prop !== 'pendingOutbound') return v.bind(target);
        return async (...args: unknown[]) => {
          await new Promise((r) => setTimeout(r, 200));
          return Reflect.apply(v, target, args) as unknown;
        };
      },
    });
    const a = await nodeOn(cleanup, shared, 'vanish-a');
    const b = await nodeOn(cleanup, slow, 'vanish-b');
    const open = await fetch(`${a.origin}/holdline/open`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ v: 1, attempt: 'vanish-attempt-1' }) });
    const s = (await open.json()) as { sid: string; token: string };
    const owner = a.hl.session(s.sid);
    assert.ok(owner);
    const started = Date.now();
    const poll = fetch(`${b.origin}/holdline/poll`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ ...s, ack: 0 }), signal: AbortSignal.timeout(4_000) });
    await new Promise((r) => setTimeout(r, 50));
    owner.close({ code: 'server_closed', message: 'bye' });
    const res = await poll;
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as { close?: unknown }).close, { code: 'server_closed', message: 'bye' });
    assert.ok(Date.now() - started < 1_500, 'answered at once, not at the end of a hold');
  });
});
