/**
 * What the multi-node tests (`*.test.ts` in this folder) share: nodes in this
 * process on one store (test/helpers/nodes.ts), two of them behind a
 * round-robin balancer, a store handle that can go dead, the numbered
 * messages they send, waiting for acks both ways, and the exactly-once check;
 * the stores they run on (storeKinds), and a node's view of its store whose
 * wake-ups a test can hold back (pausableEvents).
 */
import assert from 'node:assert/strict';
import { WebSocket, type RawData } from 'ws';
import type { HoldlineClient, ResetEvent } from '../../client/index.js';
import { MemoryStore, type Session, type SessionStore } from '../../server/index.js';
import { RedisStore } from '../../server/redis.js';
import type { StoreEvent, StoreListener } from '../../server/store.js';
import type { Payload } from '../../shared/index.js';
import { balance, recordAtServer, recordingClient, startNode, type Node } from '../helpers/nodes.js';
import type { RoundRobin } from '../helpers/round-robin.js';
import { withTimeout, type Cleanup, Condition, type RawResponse, type RawSession } from '../helpers/server.js';
import { startRedis } from '../middlebox/redis.js';

export { assertExactlyOnce } from '../helpers/assertions.js';

export { payloadKey as key } from '../helpers/nodes.js';

/** Message i: text for even i, binary (i as 4 bytes, then 0xff) for odd. */
export function message(prefix: string, i: number): Payload {
  if (i % 2 === 0) return `${prefix}${i}`;
  const b = new Uint8Array(5);
  new DataView(b.buffer).setUint32(0, i);
  b[4] = 0xff;
  return b;
}

/**
 * A store handle that can go dead: every call fails, wake-ups stop (a node
 * whose process died, or that is cut off from its store, as far as the store
 * can tell); revive() reconnects it.
 */
export function killable(store: SessionStore): { store: SessionStore; kill(): void; revive(): void } {
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
  return { store: handle, kill: () => (dead = true), revive: () => (dead = false) };
}

/**
 * A store handle for a node that can be paused, as the store and the other
 * nodes see it (a process stopped, a VM frozen): while paused its
 * heartbeats are not stored (the node is told they were) and it hears no
 * wake-ups; keep requests away from it too (the balancer's drop()).
 * hear(): the node hears wake-ups again while its heartbeats still go
 * unstored: a node just woken, before its first heartbeat's answer, held
 * there for as long as the test needs.
 */
export function pausable(store: SessionStore): { store: SessionStore; pause(): void; resume(): void; hear(): void } {
  let paused = false;
  let deaf = false;
  const handle = new Proxy(store, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      if (prop === 'heartbeat') return (...args: unknown[]) => (paused ? Promise.resolve(true) : Reflect.apply(v, target, args));
      if (prop === 'subscribe') {
        return (listener: Parameters<SessionStore['subscribe']>[0]) =>
          target.subscribe((sid, event) => {
            if (!deaf) listener(sid, event);
          });
      }
      return v.bind(target);
    },
  });
  return {
    store: handle,
    pause: () => (paused = deaf = true),
    resume: () => (paused = deaf = false),
    hear: () => (deaf = false),
  };
}

/** A node on `store` (polls held up to 2 s), as startNode() gives it. */
export function nodeOn(cleanup: Cleanup, store: SessionStore, nodeId: string, ownerLeaseMs = 10_000): Promise<Node> {
  return startNode(cleanup, { store, nodeId, ownerLeaseMs, pollTimeoutMs: 2_000 });
}

/** Two nodes (ids PREFIX-a, PREFIX-b) on `storeFor`'s stores (default: one new MemoryStore), and a round-robin balancer in front of them. */
export async function twoNodes(cleanup: Cleanup, prefix: string, storeFor?: () => SessionStore): Promise<{ a: Node; b: Node; lb: RoundRobin }> {
  const shared = storeFor === undefined ? new MemoryStore() : undefined;
  const a = await nodeOn(cleanup, shared ?? storeFor?.() ?? new MemoryStore(), `${prefix}-a`);
  const b = await nodeOn(cleanup, shared ?? storeFor?.() ?? new MemoryStore(), `${prefix}-b`);
  const lb = await balance(cleanup, [a.origin, b.origin]);
  return { a, b, lb };
}

/** Wait until the client's sends so far are acknowledged (a sender paced by acks makes many small requests). */
export function clientAcked(client: HoldlineClient): Promise<void> {
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
export function sessionDrained(s: Session): Promise<void> {
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


/** A name and a maker of each node's store: make() once per test, then call what it gives once per node. */
export type StoreKind = [name: string, make: () => Promise<() => SessionStore>];

/**
 * The stores a multi-node test runs on: one MemoryStore shared in this
 * process, and a RedisStore on each node on one redis-server of the file's
 * own (started on first use, stopped at clean-up; keys under `prefix`).
 */
export function storeKinds(cleanup: Cleanup, prefix: string): StoreKind[] {
  let url: Promise<string> | undefined;
  return [
    [
      'one MemoryStore',
      () => {
        const shared = new MemoryStore();
        return Promise.resolve(() => shared);
      },
    ],
    [
      'a RedisStore on each node',
      async () => {
        url ??= startRedis().then((redis) => {
          cleanup.add(() => redis.stop());
          return redis.url;
        });
        const redisUrl = await url;
        const keyPrefix = `${prefix}-${process.pid}-${Date.now()}:`;
        return () => {
          const store = new RedisStore({ url: redisUrl, keyPrefix });
          cleanup.add(() => store.close()); // after its node closes, before redis stops
          return store;
        };
      },
    ],
  ];
}

export interface PausableEvents {
  /** The store as the node sees it. */
  store: SessionStore;
  /** Hold the node's wake-ups back from now on. */
  pause(): void;
  /** Deliver those held back, in order, and the next ones as they come. */
  resume(): void;
  /** Resolves once the node's listener has been given an event that `match` takes (5 s at most). */
  delivered(match: (sid: string, event: StoreEvent) => boolean, what: string): Promise<void>;
}

/** `store` as one node sees it, with its wake-ups (subscribe) held back while paused. */
export function pausableEvents(store: SessionStore): PausableEvents {
  let paused = false;
  const queued: Array<() => void> = [];
  const seen: Array<[string, StoreEvent]> = [];
  let heard: (() => void) | undefined;
  const view = new Proxy(store, {
    get(target, prop) {
      if (prop === 'subscribe') {
        return (listener: StoreListener) =>
          target.subscribe((sid, event) => {
            const deliver = (): void => {
              listener(sid, event);
              seen.push([sid, event]);
              heard?.();
            };
            if (paused) queued.push(deliver);
            else deliver();
          });
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (...args: unknown[]) => Reflect.apply(v, target, args) : v;
    },
  });
  return {
    store: view,
    pause: () => (paused = true),
    resume: () => {
      paused = false;
      for (const deliver of queued.splice(0)) deliver();
    },
    delivered: (match, what) =>
      withTimeout(
        (async () => {
          while (!seen.some(([sid, event]) => match(sid, event))) await new Promise<void>((resolve) => (heard = resolve));
        })(),
        5_000,
        what,
      ),
  };
}

export interface BalancedSession {
  /** Notified by both recorders. */
  changed: Condition;
  /** What the nodes' sessions delivered, by key, in order. */
  atServer: string[];
  client: HoldlineClient;
  /** What the client received, by key, in order. */
  atClient: string[];
  resets: ResetEvent[];
  /** The session, on the node that owns it (exactly one does), and that node's index in [a, b]. */
  owner: Session;
  ownerIndex: number;
}

/** A recording client of `origin` (a balancer in front of `a` and `b`), connected, and what both ends receive; no node died, so nothing is flagged redelivered. */
export async function balancedSession(cleanup: Cleanup, a: Node, b: Node, origin: string): Promise<BalancedSession> {
  const changed = new Condition();
  const atServer = recordAtServer([a, b], changed, {
    each: (_key, info) => assert.equal(info, undefined, 'no node died: nothing is flagged redelivered'),
  });
  const { client, received: atClient, resets } = await recordingClient(cleanup, origin, changed);
  const sid = client.sessionId;
  assert.ok(sid);
  const onA = a.hl.session(sid);
  const onB = b.hl.session(sid);
  assert.ok((onA === undefined) !== (onB === undefined), 'exactly one node owns the session');
  const owner = onA ?? onB;
  assert.ok(owner);
  return { changed, atServer, client, atClient, resets, owner, ownerIndex: onA ? 0 : 1 };
}

/** A raw WebSocket to `base`'s endpoint, its hello sent with WebSocket count `ws` and answered ok; its text frames as they come. */
export async function helloAt(base: string, s: RawSession, ws: number): Promise<{ socket: WebSocket; texts: string[]; next(): Promise<string> }> {
  const socket = new WebSocket(`${base.replace(/^http/, 'ws')}/ws`);
  const texts: string[] = [];
  let wake: (() => void) | undefined;
  socket.on('message', (data: RawData) => {
    texts.push(Buffer.isBuffer(data) ? data.toString('utf8') : String(data));
    wake?.();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  let read = 0;
  const next = async (): Promise<string> => {
    while (read >= texts.length) await new Promise<void>((resolve) => (wake = resolve));
    return texts[read++] ?? '';
  };
  socket.send(JSON.stringify({ sid: s.sid, token: s.token, ack: 0, ws }));
  const ok = JSON.parse(await withTimeout(next(), 5_000, 'the answer to the hello')) as { ok?: unknown };
  assert.equal(ok.ok, true);
  return { socket, texts, next };
}


/**
 * Send messages 0..n-1 both ways: up from `client` (waiting for its acks
 * every 10), down on whichever node owns the session (`current()`); a down
 * send that failed (its node died before committing it) is sent again on
 * the next owner. Resolves when both are sent.
 */
export function streamAcrossOwners(client: HoldlineClient, current: () => Session | undefined, n: number): Promise<void> {
  const up = (async () => {
    for (let i = 0; i < n; i++) {
      await client.send(message('up', i));
      if (i % 10 === 9) await clientAcked(client);
    }
  })();
  const down = (async () => {
    for (let i = 0; i < n; i++) {
      for (;;) {
        const s = current();
        try {
          if (s && s.state === 'open') {
            await s.send(message('down', i));
            if (i % 10 === 9) await withTimeout(sessionDrained(s), 2_000, 'drain').catch(() => undefined);
            break;
          }
        } catch {
          // not committed: again, on whoever owns it next
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  })();
  return Promise.all([up, down]).then(() => undefined);
}

/** The messages of a poll's answer (a batch `{"ack","seq","m"}`). */
export function messagesOf(res: RawResponse): unknown[] {
  assert.equal(res.status, 200, res.text);
  const body = JSON.parse(res.text) as { m?: unknown };
  assert.ok(Array.isArray(body.m), res.text);
  return body.m;
}

/** 'held' when the poll `p` has no answer within 300 ms, else its answer. */
export function heldAfter300(p: Promise<RawResponse>): Promise<RawResponse | 'held'> {
  return Promise.race([p, new Promise<'held'>((r) => setTimeout(r, 300, 'held'))]);
}
