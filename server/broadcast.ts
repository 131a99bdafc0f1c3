/**
 * A broadcast on this node: one message queued to every session the node
 * owns, in chunks, with a bounded number of sends waiting for the store at
 * once. The node (server/session-registry.ts) runs it for the application's
 * `hl.broadcast()` and for a broadcast published by another node
 * (server/store-events.ts).
 */
import PQueue from 'p-queue';
import type { OutboxEntry } from '../shared/index.js';
import type { Session } from './session.js';

/** What one node's broadcast reached. */
export interface BroadcastResult {
  /** Sessions owned by this node the message was queued to. */
  queued: number;
  /** Sessions that refused it (closed meanwhile, or queue_full after sendTimeoutMs). */
  failed: number;
}

/**
 * Sends of one broadcast in flight at once (each is a store round trip with a
 * networked store). The Redis store sends the commands of one turn as one
 * pipeline and waits for its replies before the next: at 2,048 a broadcast
 * to 10,000 sessions is five such round trips (bench/README.md, Redis).
 */
export const BROADCAST_CONCURRENCY = 2048;
/** Sessions per queued task of a broadcast. */
const BROADCAST_CHUNK = 256;

/**
 * Queue `entry` to each of `owned` (the sessions this node owns). At most
 * BROADCAST_CONCURRENCY sends wait for the store at once; a send that waits
 * for room (a client behind on its acks) frees its place at once and is
 * counted when it ends.
 */
export async function sendToOwned(owned: Iterable<Session>, entry: OutboxEntry): Promise<BroadcastResult> {
  // The sessions of now, in chunks: a queued task per chunk, not per session.
  const sessions = [...owned];
  const queue = new PQueue({ concurrency: Math.ceil(BROADCAST_CONCURRENCY / BROADCAST_CHUNK) });
  let queued = 0;
  let failed = 0;
  const ok = (): void => void queued++;
  const notOk = (): void => void failed++;
  const sends: Promise<void>[] = [];
  for (let i = 0; i < sessions.length; i += BROADCAST_CHUNK) {
    const chunk = sessions.slice(i, i + BROADCAST_CHUNK);
    void queue.add(async () => {
      const committing: Promise<void>[] = [];
      for (const s of chunk) {
        const sent = s.sendEncoded(entry).then(ok, notOk);
        // A send that waits for room (its client is behind on acks) frees its place at once.
        if (s.sendWaiting) sends.push(sent);
        else committing.push(sent);
      }
      await Promise.all(committing);
    });
  }
  await queue.onIdle();
  await Promise.all(sends);
  return { queued, failed };
}
