/**
 * Raw `ws` through the bench interface: the floor of the WebSocket section.
 * A WebSocketServer on the node:http server (path /ws), one text frame per
 * message, nothing else: no session, no numbering, no acknowledgements, no
 * heartbeats. Compression off (`perMessageDeflate: false`) on both ends, as
 * in Holdline and Engine.IO.
 *
 * The send window counts what Engine.IO's writeBuffer and Holdline's
 * queuedAmount count: messages handed to the library and not yet written to
 * the socket (ws calls a send's callback once its frame is written). A sender
 * waits while `window` are unwritten.
 */
import http from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import { closeHttp, listenLocal, pushError, type AdapterOptions, type BenchClient, type BenchServer, type BenchSession, type ClientOptions } from './types.js';

const PATH = '/ws';

/** One end of a connection with the send window (both ends send alike). */
class WindowedSender {
  readonly #ws: WebSocket;
  readonly #window: number;
  readonly #errors: string[];
  /** Sends whose frame is not yet written to the socket. */
  #unwritten = 0;
  #waiters: Array<() => void> = [];
  readonly #written = (e?: Error | null): void => {
    if (e) pushError(this.#errors, e);
    this.#unwritten--;
    if (this.#unwritten < this.#window && this.#waiters.length > 0) {
      const w = this.#waiters;
      this.#waiters = [];
      for (const fn of w) fn();
    }
  };

  constructor(ws: WebSocket, window: number, errors: string[]) {
    this.#ws = ws;
    this.#window = window;
    this.#errors = errors;
    ws.on('close', () => {
      const w = this.#waiters;
      this.#waiters = [];
      for (const fn of w) fn();
    });
  }

  send(data: string): Promise<void> | undefined {
    if (this.#ws.readyState !== WebSocket.OPEN) {
      pushError(this.#errors, new Error('ws: send on a closed connection'));
      return undefined;
    }
    this.#unwritten++;
    this.#ws.send(data, { binary: false }, this.#written);
    if (this.#unwritten < this.#window) return undefined;
    return new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
}

function onText(ws: WebSocket, fn: (data: string) => void): void {
  ws.on('message', (d, isBinary) => {
    if (!isBinary) fn(Array.isArray(d) ? Buffer.concat(d).toString() : Buffer.from(d as Buffer).toString());
  });
}

export async function startRawWsServer(options: AdapterOptions): Promise<BenchServer> {
  const httpServer = http.createServer();
  const wss = new WebSocketServer({ server: httpServer, path: PATH, perMessageDeflate: false });
  const errors: string[] = [];
  const listeners: Array<(s: BenchSession) => void> = [];
  const open = new Set<WebSocket>();
  wss.on('connection', (ws) => {
    open.add(ws);
    ws.on('error', (e) => pushError(errors, e));
    ws.on('close', () => open.delete(ws));
    const sender = new WindowedSender(ws, options.window, errors);
    const session: BenchSession = {
      send: (data) => sender.send(data),
      onMessage: (fn) => onText(ws, fn),
      onClose: (fn) => void ws.on('close', () => fn()),
      get open() {
        return ws.readyState === WebSocket.OPEN;
      },
    };
    for (const fn of listeners) fn(session);
  });
  const url = await listenLocal(httpServer);
  return {
    url,
    errors,
    http: httpServer,
    onSession: (fn) => void listeners.push(fn),
    broadcast(data) {
      for (const ws of open) ws.send(data);
      return open.size;
    },
    get sessionCount() {
      return open.size;
    },
    async close() {
      for (const ws of open) ws.terminate();
      wss.close();
      await closeHttp(httpServer);
    },
  };
}

export async function connectRawWsClient(origin: string, options: ClientOptions): Promise<BenchClient> {
  const ws = new WebSocket(origin.replace(/^http/, 'ws') + PATH, { perMessageDeflate: false });
  const errors: string[] = [];
  ws.on('error', (e) => pushError(errors, e));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('ws: not open within 15 s')), 15_000);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  const sender = new WindowedSender(ws, options.window, errors);
  return {
    errors,
    newSessions: 0,
    retries: 0,
    send: (data) => sender.send(data),
    onMessage: (fn) => onText(ws, fn),
    close: async () => {
      ws.close();
      await Promise.resolve();
    },
  };
}
