/**
 * The one interface the workloads drive both libraries through. Each library
 * gets an adapter (holdline.ts, engineio.ts) that uses that library's own
 * idioms: its send, its backpressure signal, its broadcast.
 *
 * The send window is the fairness rule: a sender keeps at most `window`
 * messages queued inside the library before it waits for the library to
 * drain (Holdline: bufferedAmount, i.e. messages not yet acknowledged;
 * Engine.IO: writeBuffer, i.e. messages not yet handed to a poll).
 */
import http from 'node:http';

export const LIBS = ['holdline', 'engine.io'] as const;
export type LibName = (typeof LIBS)[number];
/**
 * Every library an adapter exists for: the two compared throughout, raw `ws`
 * (the WebSocket section's floor) and a raw held poll (`poll`, the polling
 * echo's floor).
 */
export type AnyLib = LibName | 'ws' | 'poll';
/** What carries a session: HTTP long polling (everywhere but the WebSocket section) or a WebSocket. */
export type BenchTransport = 'polling' | 'websocket';

export interface Sender {
  /**
   * Queue one message. Returns a promise when the send window is full: the
   * caller awaits it before sending more. Never throws; a failure is counted
   * in `errors`.
   */
  send(data: string): Promise<void> | undefined;
}

export interface BenchSession extends Sender {
  onMessage(fn: (data: string) => void): void;
  onClose(fn: () => void): void;
  readonly open: boolean;
}

export interface BenchServer {
  /** Origin the clients connect to (http://127.0.0.1:PORT); adapters add their path. */
  readonly url: string;
  onSession(fn: (session: BenchSession) => void): void;
  /** Queue one message to every open session; returns how many it was queued to. */
  broadcast(data: string): number;
  /**
   * Holdline only: broadcast() that also says when the library's own
   * broadcast call settles (`hl.broadcast()`'s promise: every session this
   * node owns has the message queued, committed to the store).
   */
  broadcastTimed?: (data: string) => { sessions: number; settled: Promise<void> };
  readonly sessionCount: number;
  /** The host node:http server (for instrumentation only). */
  readonly http: http.Server;
  /** Errors the library reported (not thrown) so far. */
  readonly errors: string[];
  close(): Promise<void>;
}

export interface BenchClient extends Sender {
  onMessage(fn: (data: string) => void): void;
  /** Sessions opened after the first (a new session replaced a lost one). */
  readonly newSessions: number;
  /** Times the transport failed and was retried within the same session. */
  readonly retries: number;
  readonly errors: string[];
  close(): Promise<void>;
}

/**
 * Where a Holdline server keeps its sessions: absent, its own MemoryStore
 * (the default); 'redis', a RedisStore on `url`. Servers given the same url
 * are nodes of one cluster (each a HoldlineServer in its own process).
 */
export interface StoreSpec {
  kind: 'redis';
  url: string;
  /** This node's id in the store (default: random). */
  nodeId?: string | undefined;
}

export interface AdapterOptions {
  /** Messages a sender may have queued in the library before it waits. */
  window: number;
  /** Size of one message, to turn the window into bytes where the library counts bytes. */
  payloadBytes: number;
  /**
   * Engine.IO only: pingInterval and pingTimeout, ms (default 25000 / 20000).
   * Its Node fetch transport leaves a poll whose body is cut mid-way hanging
   * (an unhandled rejection), and only the ping timeout ends the session, so
   * the loss workload shortens them to keep going.
   */
  engineIoPingMs?: number;
  /** Holdline only: the session store (see StoreSpec). Absent: the default MemoryStore. */
  store?: StoreSpec | undefined;
  /**
   * What carries the session (default 'polling'). 'websocket': Holdline's
   * client with `transports: ['websocket']`, Engine.IO with its websocket
   * transport only on both ends; raw `ws` has nothing else.
   */
  transport?: BenchTransport | undefined;
}

/** What a workload role needs to start either end of one library. */
export interface LibArgs extends AdapterOptions {
  lib: AnyLib;
}

export interface ClientOptions extends AdapterOptions {
  /**
   * What to do when the library gives up on its session: Holdline opens a
   * new one by itself; for Engine.IO the adapter opens a new socket when this
   * is true (the loss workload keeps counting across sessions).
   */
  reconnect: boolean;
}

/**
 * Listen on 127.0.0.1, port 0, with a backlog fit for thousands of clients
 * connecting at once. Timeouts stay at node's defaults (keep-alive 5 s).
 */
export async function listenLocal(server: http.Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('server has no address');
  return `http://127.0.0.1:${address.port}`;
}

export async function closeHttp(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export function errorText(e: unknown): string {
  if (e instanceof Error) return `${(e as { code?: unknown }).code ?? e.name}: ${e.message}`;
  return String(e);
}

/** Keep at most this many distinct error messages (a run can produce millions). */
export function pushError(list: string[], e: unknown): void {
  if (list.length < 20) list.push(errorText(e));
}
