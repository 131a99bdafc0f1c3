/**
 * Two HoldlineServers in one process sharing one MemoryStore are two nodes
 * of one cluster. A client behind a plain round-robin balancer (every
 * request to the next node, no stickiness) gets exactly-once, in-order
 * delivery both ways; a node that leaves (graceful close) or dies (its
 * store calls fail and its heartbeat lapses) hands its sessions to the
 * other, and the client never sees a reset.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, it } from 'node:test';
import { HoldlineClient } from '../client/index.js';
import { HoldlineServer, MemoryStore, type Session, type SessionStore } from '../server/index.js';
import type { Payload } from '../shared/index.js';
import { roundRobin, type RoundRobin } from './helpers/round-robin.js';
import { closeHttpServer, Condition, Cleanup, listen, withTimeout } from './helpers/server.js';

const key = (p: Payload): string => (typeof p === 'string' ? p : `bin:${Buffer.from(p).toString('hex')}`);
/** Message i: text for even i, binary (i as 4 bytes, then 0xff) for odd. */
function message(prefix: string, i: number): Payload {
  if (i % 2 === 0) return `${prefix}${i}`;
  const b = new Uint8Array(5);
  new DataView(b.buffer).setUint32(0, i);
  b[4] = 0xff;
  return b;
}

interface Node {
  hl: HoldlineServer;
  origin: string;
  http: http.Server;
  sessions: Session[];
  errors: unknown[];
}

/** A store handle that can go dead: every call fails, wake-ups stop (a node whose process died, as far as the store can tell). */
function killable(store: SessionStore): { store: SessionStore; kill(): void } {
  let dead = false;
  const handle = new Proxy(store, {
    get(target, prop, receiver) {
      // A store whose connection can be lost is a networked one: it has no synchronous enqueueNow.
      if (prop === 'enqueueNow') return undefined;
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      if (prop === 'subscribe') {
        return (listener: Parameters<SessionStore['subscribe']>[0]) =>
          target.subscribe((sid, event) => {
            if (!dead) listener(sid, event);
          });
      }
      return (...args: unknown[]) => (dead ? Promise.reject(new Error('store connection lost')) : Reflect.apply(v, target, args));
    },
  });
  return { store: handle, kill: () => (dead = true) };
}

async function startNode(cleanup: Cleanup, store: SessionStore, nodeId: string, ownerLeaseMs = 10_000): Promise<Node> {
  const hl = new HoldlineServer({ store, nodeId, ownerLeaseMs, pollTimeoutMs: 2_000 });
  const errors: unknown[] = [];
  hl.on('error', (e) => errors.push(e));
  const sessions: Session[] = [];
  hl.on('session', (s) => sessions.push(s));
  const server = http.createServer();
  hl.attach(server);
  const origin = await listen(server);
  cleanup.add(async () => {
    await hl.close();
    await closeHttpServer(server);
  });
  return { hl, origin, http: server, sessions, errors };
}

/** Two nodes sharing a new MemoryStore (ids PREFIX-a, PREFIX-b), and a round-robin balancer in front of them. */
async function twoNodes(cleanup: Cleanup, prefix: string): Promise<{ a: Node; b: Node; lb: RoundRobin }> {
  const store = new MemoryStore();
  const a = await startNode(cleanup, store, `${prefix}-a`);
  const b = await startNode(cleanup, store, `${prefix}-b`);
  const lb = await roundRobin([a.origin, b.origin]);
  cleanup.add(() => lb.close());
  return { a, b, lb };
}

/** Wait until the client's sends so far are acknowledged (a sender paced by acks makes many small requests). */
function clientAcked(client: HoldlineClient): Promise<void> {
  if (client.bufferedAmount === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (client.bufferedAmount !== 0) return;
      client.off('ack', check);
      resolve();
    };
    client.on('ack', check);
  });
}

/** Wait until a session's sends so far are acknowledged by the client. */
function sessionDrained(s: Session): Promise<void> {
  if (s.bufferedAmount === 0 || s.state === 'closed') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      s.off('drain', done);
      s.off('close', done);
      resolve();
    };
    s.on('drain', done);
    s.on('close', done);
  });
}

/** Checks a stream of received messages against 0..n-1: in order, nothing twice (after dropping what is flagged redelivered). */
function assertExactlyOnce(received: string[], expected: string[], what: string): void {
  assert.equal(received.length, expected.length, `${what}: ${received.length} received, ${expected.length} expected`);
  for (let i = 0; i < expected.length; i++) {
    if (received[i] !== expected[i]) assert.fail(`${what}: message ${i} is ${received[i]}, expected ${expected[i]}`);
  }
}

describe('two servers, one MemoryStore', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it('serve one session round-robin: 5,000 messages each way, mixed text and binary, exactly once and in order', async () => {
    const { a, b, lb } = await twoNodes(cleanup, 'node');

    const N = 5_000;
    const atServer: string[] = [];
    const atClient: string[] = [];
    const changed = new Condition();
    for (const n of [a, b]) {
      n.hl.on('session', (s) =>
        s.on('message', (m, info) => {
          assert.equal(info, undefined, 'no node died: nothing is flagged redelivered');
          atServer.push(key(m));
          changed.notify();
        }),
      );
    }
    const client = new HoldlineClient(`${lb.origin}/holdline`, { reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
    cleanup.add(() => client.close());
    const resets: unknown[] = [];
    client.on('reset', (e) => resets.push(e));
    client.on('message', (m) => {
      atClient.push(key(m));
      changed.notify();
    });
    await client.connect();
    const sid = client.sessionId;
    assert.ok(sid);
    const owner = a.hl.session(sid) ?? b.hl.session(sid);
    assert.ok(owner, 'one node owns the session');
    assert.equal((a.hl.session(sid) ? 1 : 0) + (b.hl.session(sid) ? 1 : 0), 1, 'exactly one node owns it');

    const expectedUp: string[] = [];
    const expectedDown: string[] = [];
    const up = (async () => {
      for (let i = 0; i < N; i++) {
        const m = message('up', i);
        expectedUp.push(key(m));
        await client.send(m);
        if (i % 50 === 49) await clientAcked(client);
      }
    })();
    const down = (async () => {
      for (let i = 0; i < N; i++) {
        const m = message('down', i);
        expectedDown.push(key(m));
        await owner.send(m);
        if (i % 50 === 49) await sessionDrained(owner);
      }
    })();
    await withTimeout(Promise.all([up, down]), 60_000, 'sending');
    await changed.until(() => atServer.length >= N && atClient.length >= N, 60_000, () => `server has ${atServer.length}, client ${atClient.length} of ${N}`);
    assertExactlyOnce(atServer, expectedUp, 'client to server');
    assertExactlyOnce(atClient, expectedDown, 'server to client');
    assert.deepEqual(resets, [], 'the session never reset');
    assert.equal(client.sessionId, sid);

    // Consecutive requests alternated between the nodes, polls and sends alike.
    for (const [i, c] of lb.counts.entries()) {
      assert.ok((c.poll ?? 0) > 10, `node ${i} answered polls (${JSON.stringify(c)})`);
      assert.ok((c.send ?? 0) > 10, `node ${i} took sends (${JSON.stringify(c)})`);
    }
    assert.deepEqual([...a.errors, ...b.errors], []);
  });

  it('a node that leaves (close()) hands its sessions over: the other takes it (resumed), no reset, nothing lost', async () => {
    // Opens go to A first: A owns the session.
    const { a, b, lb } = await twoNodes(cleanup, 'leave');
    const atServer: string[] = [];
    const atClient: string[] = [];
    const changed = new Condition();
    for (const n of [a, b]) {
      n.hl.on('session', (s) =>
        s.on('message', (m, info) => {
          // Flagged messages may come twice (the leaving owner may not have marked them delivered).
          if (info?.redelivered && atServer.includes(key(m))) return;
          atServer.push(key(m));
          changed.notify();
        }),
      );
    }
    const client = new HoldlineClient(`${lb.origin}/holdline`, { reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
    cleanup.add(() => client.close());
    const resets: unknown[] = [];
    client.on('reset', (e) => resets.push(e));
    client.on('message', (m) => {
      atClient.push(key(m));
      changed.notify();
    });
    await client.connect();
    const sid = client.sessionId ?? '';
    const first = a.hl.session(sid);
    assert.ok(first, 'A owns the session it opened');

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
    const client = new HoldlineClient(`${lb.origin}/holdline`, { reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
    cleanup.add(() => client.close());
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
    const a = await startNode(cleanup, dying.store, 'dies-a', 400);
    const b = await startNode(cleanup, shared, 'dies-b', 400);
    const lb = await roundRobin([a.origin, b.origin]);
    cleanup.add(() => lb.close());
    const atServer: string[] = [];
    const flagged: string[] = [];
    const atClient: string[] = [];
    const changed = new Condition();
    for (const n of [a, b]) {
      n.hl.on('session', (s) =>
        s.on('message', (m, info) => {
          if (info?.redelivered) flagged.push(key(m));
          if (info?.redelivered && atServer.includes(key(m))) return;
          atServer.push(key(m));
          changed.notify();
        }),
      );
    }
    const client = new HoldlineClient(`${lb.origin}/holdline`, { reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
    cleanup.add(() => client.close());
    const resets: unknown[] = [];
    client.on('reset', (e) => resets.push(e));
    client.on('message', (m) => {
      atClient.push(key(m));
      changed.notify();
    });
    await client.connect();
    const sid = client.sessionId ?? '';
    assert.ok(a.hl.session(sid), 'A owns the session it opened');

    const N = 2_000;
    const expectedUp = Array.from({ length: N }, (_, i) => key(message('up', i)));
    const expectedDown = Array.from({ length: N }, (_, i) => key(message('down', i)));
    /** The node that owns the session now, as the application sees it. */
    const current = (): Session | undefined => b.sessions.at(-1) ?? a.hl.session(sid);
    const up = (async () => {
      for (let i = 0; i < N; i++) {
        await client.send(message('up', i));
        if (i % 10 === 9) await clientAcked(client);
      }
    })();
    const down = (async () => {
      for (let i = 0; i < N; i++) {
        // An application's send that failed (its node died before committing it) is sent again on the new owner.
        for (;;) {
          const s = current();
          try {
            if (s && s.state === 'open') {
              await s.send(message('down', i));
              if (i % 10 === 9) await withTimeout(sessionDrained(s), 2_000, 'drain').catch(() => undefined);
              break;
            }
          } catch {
            // not committed: try again on whoever owns it next
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    })();
    await changed.until(() => atServer.length >= N / 4 && atClient.length >= N / 4, 30_000, () => 'a quarter of the stream');
    // A dies: its store calls fail, its heartbeat stops, its connections drop.
    dying.kill();
    lb.drop(0);
    a.http.closeAllConnections();
    await withTimeout(Promise.all([up, down]), 60_000, 'sending across the takeover');
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

  it('from any node: remote(id).send() reaches a session owned elsewhere, broadcast() reaches every node\'s sessions', async () => {
    const { a, b, lb } = await twoNodes(cleanup, 'any');
    // Two clients: opens alternate, so one session is owned by each node.
    const clients = [0, 1].map(() => new HoldlineClient(`${lb.origin}/holdline`, { reconnect: { minDelayMs: 20, maxDelayMs: 200 } }));
    const got: string[][] = [[], []];
    const changed = new Condition();
    for (const [i, c] of clients.entries()) {
      cleanup.add(() => c.close());
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

  it('nodeHeader: every answer names the node that gave it, and a round-robin client is served by both', async () => {
    const store = new MemoryStore();
    const nodes = await Promise.all(['hdr-a', 'hdr-b'].map(async (nodeId) => {
      const hl = new HoldlineServer({ store, nodeId, nodeHeader: true, pollTimeoutMs: 500 });
      const server = http.createServer();
      hl.attach(server);
      const origin = await listen(server);
      cleanup.add(async () => {
        await hl.close();
        await closeHttpServer(server);
      });
      return origin;
    }));
    const lb = await roundRobin(nodes);
    cleanup.add(() => lb.close());
    const seen = new Set<string>();
    const open = await fetch(`${lb.origin}/holdline/open`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ v: 1, attempt: 'node-header-1' }) });
    const s = (await open.json()) as { sid: string; token: string };
    seen.add(open.headers.get('holdline-node') ?? '');
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${lb.origin}/holdline/poll`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ ...s, ack: 0, hold: 0 }) });
      assert.equal(res.status, 200);
      seen.add(res.headers.get('holdline-node') ?? '');
    }
    assert.deepEqual([...seen].sort(), ['hdr-a', 'hdr-b']);
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
    const a = await startNode(cleanup, shared, 'vanish-a');
    const b = await startNode(cleanup, slow, 'vanish-b');
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

