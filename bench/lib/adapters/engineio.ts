/**
 * Engine.IO 6 through the bench interface, configured for a like-for-like
 * comparison with Holdline:
 * - polling only on both ends (server `transports: ['polling']`, client
 *   `transports: [Fetch]`, `upgrade: false`);
 * - the client's fetch-based polling transport, not its default
 *   XMLHttpRequest polyfill (which costs about 1 ms per request in Node); the
 *   fetch goes through Node's global dispatcher, which keeps connections alive;
 * - HTTP compression off (`httpCompression: false`): Holdline does not
 *   compress, and on loopback gzip only costs CPU. This makes Engine.IO
 *   faster than its defaults do; EIO_BENCH_COMPRESSION=1 (run.ts
 *   --eio-compression) keeps its default compression, for the record;
 * - everything else at its defaults (pingInterval 25 s, pingTimeout 20 s,
 *   maxHttpBufferSize 1 MB).
 * Engine.IO has no broadcast: the adapter loops over its sockets, as
 * Socket.IO does.
 */
import http from 'node:http';
import { Server, type Socket as ServerSocket } from 'engine.io';
import { Fetch, NodeWebSocket, Socket as ClientSocket } from 'engine.io-client';
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

const PATH = '/engine.io/';

interface Events {
  once(event: 'drain' | 'close', fn: () => void): unknown;
  off(event: 'drain' | 'close', fn: () => void): unknown;
}

/** Resolves on the first of 'drain' and 'close' (both kinds of socket emit them), and unsubscribes. */
function drainOrClose(emitter: Events): Promise<void> {
  return new Promise<void>((resolve) => {
    const fire = () => {
      emitter.off('drain', fire);
      emitter.off('close', fire);
      resolve();
    };
    emitter.once('drain', fire);
    emitter.once('close', fire);
  });
}

class EngineIoBenchSession implements BenchSession {
  readonly #s: ServerSocket;
  readonly #window: number;
  /**
   * Messages sent since the last flush: the length of the socket's
   * writeBuffer (private in its typings), which the next poll will carry.
   */
  #queued = 0;

  constructor(s: ServerSocket, options: AdapterOptions) {
    this.#s = s;
    this.#window = options.window;
    s.on('drain', () => {
      this.#queued = 0;
    });
  }

  get open(): boolean {
    return this.#s.readyState === 'open';
  }

  send(data: string): Promise<void> | undefined {
    this.#s.send(data);
    // 'drain' fires once the buffer has been handed to a poll response.
    if (++this.#queued < this.#window) return undefined;
    return drainOrClose(this.#s);
  }

  onMessage(fn: (data: string) => void): void {
    this.#s.on('message', (d: string | Buffer) => {
      if (typeof d === 'string') fn(d);
    });
  }

  onClose(fn: () => void): void {
    this.#s.on('close', () => fn());
  }
}

export async function startEngineIoServer(options: AdapterOptions): Promise<BenchServer> {
  const ping = options.engineIoPingMs === undefined ? {} : { pingInterval: options.engineIoPingMs, pingTimeout: options.engineIoPingMs };
  const compression = process.env.EIO_BENCH_COMPRESSION === '1' ? {} : { httpCompression: false as const };
  const transports: Array<'polling' | 'websocket'> = [options.transport === 'websocket' ? 'websocket' : 'polling'];
  // perMessageDeflate is off by default in engine.io 6 (as in Holdline and the raw ws of the WebSocket section).
  const eio = new Server({ transports, allowUpgrades: false, ...compression, ...ping });
  const httpServer = http.createServer();
  eio.attach(httpServer, { path: PATH });
  const errors: string[] = [];
  eio.on('connection_error', (e: unknown) => pushError(errors, (e as { message?: unknown }).message ?? e));
  const url = await listenLocal(httpServer);
  const sockets = new Set<ServerSocket>();
  const listeners: Array<(s: BenchSession) => void> = [];
  eio.on('connection', (s: ServerSocket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    const wrapped = new EngineIoBenchSession(s, options);
    for (const fn of listeners) fn(wrapped);
  });
  return {
    url,
    errors,
    http: httpServer,
    onSession: (fn) => void listeners.push(fn),
    broadcast(data) {
      for (const s of sockets) s.send(data);
      return sockets.size;
    },
    get sessionCount() {
      return sockets.size;
    },
    async close() {
      eio.close();
      await closeHttp(httpServer);
    },
  };
}

/** Open one Engine.IO socket; resolves once the handshake is done (within 15 s). */
function openSocket(origin: string, websocket: boolean): Promise<ClientSocket> {
  // The websocket transport in Node is `ws` (NodeWebSocket), opened at once, no polling first.
  const socket = new ClientSocket(origin, { path: PATH, transports: [websocket ? NodeWebSocket : Fetch], upgrade: false });
  return new Promise<ClientSocket>((resolve, reject) => {
    const fail = (e: unknown) => {
      clearTimeout(timer);
      socket.off('open', onOpen);
      socket.close();
      reject(e instanceof Error ? e : new Error(String(e)));
    };
    const timer = setTimeout(() => fail(new Error('engine.io handshake timed out')), 15_000);
    const onOpen = () => {
      clearTimeout(timer);
      socket.off('error', fail);
      resolve(socket);
    };
    socket.once('open', onOpen);
    socket.once('error', fail);
  });
}

export async function connectEngineIoClient(origin: string, options: ClientOptions): Promise<BenchClient> {
  const errors: string[] = [];
  const messageListeners: Array<(data: string) => void> = [];
  const websocket = options.transport === 'websocket';
  let socket = await openSocket(origin, websocket);
  let newSessions = 0;
  let closing = false;
  /** Set while a replacement socket is being opened; sends wait for it. */
  let reopening: Promise<void> | undefined;

  const adopt = (s: ClientSocket) => {
    socket = s;
    s.on('message', (d: unknown) => {
      if (typeof d === 'string') for (const fn of messageListeners) fn(d);
    });
    s.on('error', (e: unknown) => pushError(errors, e));
    s.on('close', (reason: string) => {
      if (closing || !options.reconnect) return;
      pushError(errors, `session closed: ${reason}`);
      // Engine.IO drops the session on a failed poll; open a new one and go on.
      reopening = (async () => {
        for (let attempt = 0; !closing && attempt < 100; attempt++) {
          await new Promise((r) => setTimeout(r, 100));
          try {
            const next = await openSocket(origin, websocket);
            newSessions++;
            adopt(next);
            return;
          } catch (e) {
            pushError(errors, e);
          }
        }
      })().finally(() => {
        reopening = undefined;
      });
    });
  };
  adopt(socket);

  return {
    errors,
    get newSessions() {
      return newSessions;
    },
    retries: 0,
    send(data) {
      if (reopening) return reopening.then(() => void socket.send(data));
      socket.send(data);
      if (socket.writeBuffer.length < options.window) return undefined;
      // writeBuffer holds what is queued or in flight; 'drain' fires when it is empty.
      return drainOrClose(socket);
    },
    onMessage: (fn) => void messageListeners.push(fn),
    async close() {
      closing = true;
      await reopening;
      socket.close();
    },
  };
}
