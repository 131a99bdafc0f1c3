/**
 * Wake-ups of the Redis store (server/redis-store.ts) over Redis pub/sub,
 * on one channel per key prefix (`<prefix>events`).
 *
 * Publishing: the events published in one turn (server/redis-pipeline.ts) go out as
 * one PUBLISH (at most MAX_EVENTS each), in the store's pipeline of that
 * turn: a broadcast's thousands of `poll` and `out` wake-ups are a few
 * messages, not one round trip (and one subscriber callback on every node)
 * each. A message is `[sid, event]` for one event, `[[sid, event], ...]` for
 * several.
 *
 * Listening: each store has at most one subscriber connection (made by
 * `duplicate()` on the first subscribe()), whatever the number of sessions,
 * listeners or held polls. On Redis Cluster the channel is classic pub/sub
 * (every shard sees every event).
 */
import { Redis, type Cluster } from 'ioredis';
import { isStoreEvent } from './redis-codec.js';
import { keySlot, type Pipeliner, type RedisClient } from './redis-pipeline.js';
import type { StoreEvent, StoreListener } from './store.js';

/** Events per PUBLISH at most. */
const MAX_EVENTS = 500;

interface Pending {
  readonly sid: string;
  readonly event: StoreEvent;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

export class RedisEvents {
  readonly #client: RedisClient;
  readonly #pipe: Pipeliner;
  readonly #channel: string;
  #pending: Pending[] = [];
  #subscriber: RedisClient | undefined;
  #listeners: StoreListener[] = [];
  #closed = false;

  constructor(client: RedisClient, pipe: Pipeliner, channel: string) {
    this.#client = client;
    this.#pipe = pipe;
    this.#channel = channel;
    pipe.beforeFlush = this.#flush;
  }

  publish(sid: string, event: StoreEvent): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ sid, event, resolve, reject });
      this.#pipe.schedule();
    });
  }

  /** Queue this turn's events, MAX_EVENTS to a PUBLISH, into the pipeline's flush. */
  readonly #flush = (): void => {
    const pending = this.#pending;
    this.#pending = [];
    for (let i = 0; i < pending.length; i += MAX_EVENTS) {
      const part = pending.slice(i, i + MAX_EVENTS);
      const text = part.length === 1 ? JSON.stringify([part[0]?.sid, part[0]?.event]) : JSON.stringify(part.map((p) => [p.sid, p.event]));
      this.#send(text).then(
        () => {
          for (const p of part) p.resolve();
        },
        (e: unknown) => {
          for (const p of part) p.reject(e);
        },
      );
    }
  };

  /**
   * One PUBLISH. On Redis Cluster always on one node, the master of the
   * channel's slot (ioredis sends a keyless command to any node, and two
   * messages published on two nodes may reach subscribers in either order);
   * on plain Redis in the pipeline, after the commands issued before it.
   */
  #send(text: string): Promise<unknown> {
    const c = this.#client;
    if (c.isCluster) {
      const cluster = c as Cluster;
      const key = cluster.slots[keySlot(this.#channel)]?.[0];
      const node = cluster.nodes('master').find((n) => `${n.options.host ?? ''}:${n.options.port ?? ''}` === key);
      if (node !== undefined) return node.publish(this.#channel, text);
    }
    return this.#pipe.command('PUBLISH', '', [this.#channel, text]);
  }

  subscribe(listener: StoreListener): () => void {
    this.#listeners = [...this.#listeners, listener];
    this.#listen();
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  /** The one subscriber connection, made on the first subscribe(). */
  #listen(): void {
    if (this.#subscriber !== undefined || this.#closed) return;
    const c = this.#client;
    const sub: RedisClient = c instanceof Redis ? c.duplicate() : c.duplicate();
    this.#subscriber = sub;
    // ioredis reconnects and subscribes again on its own; the event needs a listener.
    sub.on('error', () => undefined);
    sub.on('message', (channel: string, text: string) => {
      if (channel === this.#channel) this.#dispatch(text);
    });
    // Subscribed again after a lost connection: what was published meanwhile
    // never came. Listeners re-read what they hold (StoreEvent 'resync').
    let subscribedOnce = false;
    sub.on('ready', () => {
      if (subscribedOnce) this.#deliver('*', { type: 'resync', node: '' });
      subscribedOnce = true;
    });
    sub.subscribe(this.#channel).catch(() => {
      // Closed before the subscription was made, or Redis is away: ioredis subscribes again when it reconnects.
    });
  }

  #dispatch(text: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return; // not one of ours
    }
    if (!Array.isArray(parsed)) return;
    if (typeof parsed[0] === 'string') this.#one(parsed);
    else for (const pair of parsed) this.#one(pair);
  }

  #one(pair: unknown): void {
    if (!Array.isArray(pair) || pair.length !== 2) return;
    const [sid, event]: unknown[] = pair;
    if (typeof sid !== 'string' || !isStoreEvent(event)) return;
    this.#deliver(sid, event);
  }

  #deliver(sid: string, event: StoreEvent): void {
    for (const l of this.#listeners) {
      try {
        l(sid, event);
      } catch {
        // A listener's own failure must not keep the event from the others (the server's reports its own).
      }
    }
  }

  /** Stop listening; the subscriber connection, if made, is returned for the caller to quit. */
  close(): RedisClient | undefined {
    this.#closed = true;
    this.#listeners = [];
    return this.#subscriber;
  }
}
