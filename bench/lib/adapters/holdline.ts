/**
 * Holdline through the bench interface: HoldlineServer attached to a plain
 * node:http server, HoldlineClient (Node, undici), default options. Both come
 * from the shipped build, dist/ (see ../holdline-dist.ts).
 *
 * The send window (HOLDLINE_BENCH_WINDOW, set by run.ts from --holdline-window):
 * - 'unsent' (default): a sender waits while `window` messages are queued and
 *   not yet written to the network (queuedAmount), until 'flush'. That is what
 *   Engine.IO's writeBuffer and 'drain' count: like for like. Acknowledgements
 *   stay on; unacknowledged messages are kept for re-sending as always.
 * - 'unacked': a sender waits while `window` messages are unacknowledged
 *   (bufferedAmount), until 'drain' (server) or acks make room (client).
 */
import http from 'node:http';
import { loadHoldline, loadRedisStore, type Session } from '../holdline-dist.js';
import {
  closeHttp,
  listenLocal,
  pushError,
  type AdapterOptions,
  type BenchClient,
  type BenchServer,
  type BenchSession,
  type ClientOptions,
} from './types.js';

const PATH = '/holdline';
/** The client's transports in every bench process: polling only (see README "Like for like"). */
export const POLLING_ONLY = ['polling'] as const;
/** The WebSocket section's clients: the WebSocket alone (see README "WebSocket"). */
export const WEBSOCKET_ONLY = ['websocket'] as const;
const MODE = process.env.HOLDLINE_BENCH_WINDOW === 'unacked' ? 'unacked' : 'unsent';

/** Resolves on the first of `event` and 'close' on a Holdline emitter. */
function whenEither(on: (e: 'flush' | 'drain' | 'close', fn: () => void) => void, off: (e: 'flush' | 'drain' | 'close', fn: () => void) => void, event: 'flush' | 'drain'): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      off(event, done);
      off('close', done);
      resolve();
    };
    on(event, done);
    on('close', done);
  });
}

class HoldlineBenchSession implements BenchSession {
  readonly #s: Session;
  readonly #windowBytes: number;
  readonly #errors: string[];

  constructor(s: Session, options: AdapterOptions, errors: string[]) {
    this.#s = s;
    this.#windowBytes = options.window * options.payloadBytes;
    this.#errors = errors;
  }

  get open(): boolean {
    return this.#s.state === 'open';
  }

  send(data: string): Promise<void> | undefined {
    const s = this.#s;
    s.send(data).catch((e: unknown) => pushError(this.#errors, e));
    const queued = MODE === 'unsent' ? s.queuedAmount : s.bufferedAmount;
    if (queued < this.#windowBytes) return undefined;
    return whenEither((e, fn) => s.on(e, fn), (e, fn) => s.off(e, fn), MODE === 'unsent' ? 'flush' : 'drain');
  }

  onMessage(fn: (data: string) => void): void {
    this.#s.on('message', (d) => {
      if (typeof d === 'string') fn(d);
    });
  }

  onClose(fn: () => void): void {
    this.#s.on('close', () => fn());
  }
}

export async function startHoldlineServer(options: AdapterOptions): Promise<BenchServer> {
  const { HoldlineServer } = await loadHoldline();
  // A Redis store (options.store) is this server's to close: HoldlineServer leaves a store it was given open.
  const store = options.store ? new (await loadRedisStore())({ url: options.store.url }) : undefined;
  // Every bench client opens from 127.0.0.1: lift the per-client open limit (10,000 a minute) above the fan-out's 10,000 sessions.
  const limits = { maxOpensPerMinute: 1_000_000 };
  const hl = new HoldlineServer(store ? { ...limits, store, ...(options.store?.nodeId === undefined ? {} : { nodeId: options.store.nodeId }) } : limits);
  const httpServer = http.createServer();
  hl.attach(httpServer, { path: PATH });
  const errors: string[] = [];
  hl.on('error', (e) => pushError(errors, e));
  const url = await listenLocal(httpServer);
  const listeners: Array<(s: BenchSession) => void> = [];
  hl.on('session', (s) => {
    const wrapped = new HoldlineBenchSession(s, options, errors);
    for (const fn of listeners) fn(wrapped);
  });
  return {
    url,
    errors,
    http: httpServer,
    onSession: (fn) => void listeners.push(fn),
    broadcast(data) {
      const n = hl.sessionCount;
      hl.broadcast(data).catch((e: unknown) => pushError(errors, e));
      return n;
    },
    broadcastTimed(data) {
      const sessions = hl.sessionCount;
      const settled = hl.broadcast(data).then(
        () => undefined,
        (e: unknown) => pushError(errors, e),
      );
      return { sessions, settled };
    },
    get sessionCount() {
      return hl.sessionCount;
    },
    async close() {
      await hl.close();
      await closeHttp(httpServer);
      await store?.close();
    },
  };
}

export async function connectHoldlineClient(origin: string, options: ClientOptions): Promise<BenchClient> {
  const { HoldlineClient } = await loadHoldline();
  const windowBytes = options.window * options.payloadBytes;
  // 'unacked': the library's own window (maxBufferedBytes) makes send() wait for acks.
  // Polling only, as Engine.IO here (no WebSocket upgrade): like for like; the
  // WebSocket section asks for the WebSocket alone (as Engine.IO's there).
  const transports = options.transport === 'websocket' ? WEBSOCKET_ONLY : POLLING_ONLY;
  const c = new HoldlineClient(origin + PATH, { transports, ...(MODE === 'unacked' ? { maxBufferedBytes: windowBytes } : {}) });
  const errors: string[] = [];
  c.on('error', (e) => pushError(errors, e));
  await c.connect();
  return {
    errors,
    get newSessions() {
      return c.stats.resets;
    },
    get retries() {
      return c.stats.reconnects;
    },
    send(data) {
      if (MODE === 'unacked') {
        // Over the window: this send waits inside the library until acks make room.
        if (c.bufferedAmount + data.length > windowBytes) return c.send(data).catch((e: unknown) => pushError(errors, e));
        c.send(data).catch((e: unknown) => pushError(errors, e));
        return undefined;
      }
      c.send(data).catch((e: unknown) => pushError(errors, e));
      if (c.queuedAmount < windowBytes) return undefined;
      // The client has no 'drain' event; only 'flush' and 'close' are asked for here.
      return whenEither((e, fn) => e !== 'drain' && c.on(e, fn), (e, fn) => e !== 'drain' && c.off(e, fn), 'flush');
    },
    onMessage(fn) {
      c.on('message', (d) => {
        if (typeof d === 'string') fn(d);
      });
    },
    close: () => c.close(),
  };
}
