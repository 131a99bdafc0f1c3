/**
 * Holdline through the bench interface: HoldlineServer attached to a plain
 * node:http server, HoldlineClient (Node, undici). Default options except
 * the send window (maxBufferedBytes on the client).
 */
import http from 'node:http';
import { HoldlineServer } from '../../../server/index.js';
import type { Session } from '../../../server/session.js';
import { HoldlineClient } from '../../../client/index.js';
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
    this.#s.send(data).catch((e: unknown) => pushError(this.#errors, e));
    if (this.#s.bufferedAmount < this.#windowBytes) return undefined;
    // Full: wait until the client has acknowledged everything ('drain').
    return new Promise<void>((resolve) => {
      const done = () => {
        this.#s.off('drain', done);
        this.#s.off('close', done);
        resolve();
      };
      this.#s.on('drain', done);
      this.#s.on('close', done);
    });
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
  const hl = new HoldlineServer();
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
    get sessionCount() {
      return hl.sessionCount;
    },
    async close() {
      await hl.close();
      await closeHttp(httpServer);
    },
  };
}

export async function connectHoldlineClient(origin: string, options: ClientOptions): Promise<BenchClient> {
  const windowBytes = options.window * options.payloadBytes;
  const c = new HoldlineClient(origin + PATH, { maxBufferedBytes: windowBytes });
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
      // Over the window: this send waits inside the library until acks make room.
      if (c.bufferedAmount + data.length > windowBytes) return c.send(data).catch((e: unknown) => pushError(errors, e));
      c.send(data).catch((e: unknown) => pushError(errors, e));
      return undefined;
    },
    onMessage(fn) {
      c.on('message', (d) => {
        if (typeof d === 'string') fn(d);
      });
    },
    close: () => c.close(),
  };
}
