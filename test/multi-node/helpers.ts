/**
 * What the multi-node tests (`*.test.ts` in this folder) share: nodes in this
 * process on one store (test/helpers/nodes.ts), two of them behind a
 * round-robin balancer, a store handle that can go dead, the numbered
 * messages they send, waiting for acks both ways, and the exactly-once check.
 */
import type { HoldlineClient } from '../../client/index.js';
import { MemoryStore, type Session, type SessionStore } from '../../server/index.js';
import type { Payload } from '../../shared/index.js';
import { balance, startNode, type Node } from '../helpers/nodes.js';
import type { RoundRobin } from '../helpers/round-robin.js';
import type { Cleanup } from '../helpers/server.js';

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

/** A store handle that can go dead: every call fails, wake-ups stop (a node whose process died, as far as the store can tell). */
export function killable(store: SessionStore): { store: SessionStore; kill(): void } {
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

/** A node on `store` (polls held up to 2 s), as startNode() gives it. */
export function nodeOn(cleanup: Cleanup, store: SessionStore, nodeId: string, ownerLeaseMs = 10_000): Promise<Node> {
  return startNode(cleanup, { store, nodeId, ownerLeaseMs, pollTimeoutMs: 2_000 });
}

/** Two nodes sharing a new MemoryStore (ids PREFIX-a, PREFIX-b), and a round-robin balancer in front of them. */
export async function twoNodes(cleanup: Cleanup, prefix: string): Promise<{ a: Node; b: Node; lb: RoundRobin }> {
  const store = new MemoryStore();
  const a = await nodeOn(cleanup, store, `${prefix}-a`);
  const b = await nodeOn(cleanup, store, `${prefix}-b`);
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

