/**
 * A cluster of Holdline nodes, each a process of its own
 * (test/fixtures/cluster-node.ts), on one Redis, for
 * test/redis-cluster*.test.ts.
 *
 * - The wire between this process and a node: its config (JSON in an env
 *   variable), the reports it prints on stdout (one JSON object a line), the
 *   commands it takes over IPC. Both sides import the types from here.
 * - The messages the tests send: numbered, text for even numbers and binary
 *   for odd ones; server-to-client messages also carry a generation (which
 *   sending of message i this is: an application on a new owner may send
 *   again what the dead owner had not committed). `messageKey` names a
 *   payload (text or binary) for comparing.
 * - `Cluster`: starts nodes, collects what every node reports (sessions,
 *   messages with their redelivered flag, closes, errors), sends commands,
 *   kills (SIGKILL) or closes (graceful) a node, and stops every process it
 *   started, even after a failure.
 * To restart Redis where the nodes look for it: test/middlebox/redis.ts's
 * startRedis({ port }).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { onProcessExit } from '../middlebox/process.js';
import type { Payload } from '../../shared/index.js';
import { Condition } from './server.js';

// ---- messages ----

/** Client-to-server message i: `u<i>` for even i, else 6 bytes: 'u', i (4 bytes), 0xff. */
export function upMessage(i: number): Payload {
  if (i % 2 === 0) return `u${i}`;
  const b = new Uint8Array(6);
  b[0] = 0x75;
  new DataView(b.buffer).setUint32(1, i);
  b[5] = 0xff;
  return b;
}

/** Server-to-client message i, sent the `gen`-th time: `d<i>.<gen>` for even i, else 7 bytes: 'd', i (4 bytes), gen, 0. */
export function downMessage(i: number, gen: number): Payload {
  if (i % 2 === 0) return `d${i}.${gen}`;
  const b = new Uint8Array(7);
  b[0] = 0x64;
  new DataView(b.buffer).setUint32(1, i);
  b[5] = gen & 0xff;
  b[6] = 0;
  return b;
}

/** A payload's name for comparing: `t:<text>` or `b:<hex>`. */
export function messageKey(p: Payload): string {
  return typeof p === 'string' ? `t:${p}` : `b:${Buffer.from(p).toString('hex')}`;
}

/** The number and generation of a server-to-client message's key, or undefined for any other key. */
export function parseDown(key: string): { i: number; gen: number } | undefined {
  const text = /^t:d(\d+)\.(\d+)$/.exec(key);
  if (text) return { i: Number(text[1]), gen: Number(text[2]) };
  const bin = /^b:64([0-9a-f]{8})([0-9a-f]{2})00$/.exec(key);
  if (bin) return { i: parseInt(bin[1] ?? '', 16), gen: parseInt(bin[2] ?? '', 16) };
  return undefined;
}

// ---- the wire to a node process ----

export interface NodeConfig {
  /** 0: any free port. */
  port: number;
  nodeId: string;
  redisUrl: string;
  keyPrefix: string;
  /** RedisStore ttlMs. */
  ttlMs: number;
  ownerLeaseMs: number;
  pollTimeoutMs: number;
  sessionIdleTimeoutMs: number;
}

export type NodeCommand =
  /** Send downMessage(i, gen) for i in [from, from + count) to session sid: owned here, or (remote) through hl.remote(sid). */
  | { cmd: 'send'; id: number; sid: string; from: number; count: number; gen: number; remote: boolean }
  /** hl.remote(sid).close(): the owner closes it (server_closed). */
  | { cmd: 'closeSession'; id: number; sid: string }
  /** Requests served per endpoint, and sessions owned. */
  | { cmd: 'stats'; id: number }
  /** hl.close() (hand the sessions over), close the http server and the store, exit. */
  | { cmd: 'close'; id: number };

export type NodeReport =
  | { ev: 'ready'; nodeId: string; port: number; pid: number }
  | { ev: 'session'; sid: string; resumed: boolean; t: number }
  | { ev: 'message'; sid: string; key: string; redelivered: boolean; t: number }
  | { ev: 'close'; sid: string; code: string; unacked: string[]; t: number }
  | { ev: 'error'; code: string; message: string }
  | { ev: 'done'; id: number; ok: boolean; code?: string; message?: string; requests?: Record<string, number>; sessions?: number };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

export function parseNodeConfig(text: string | undefined): NodeConfig {
  const v: unknown = JSON.parse(text ?? 'null');
  if (!isObject(v)) throw new TypeError('HOLDLINE_CLUSTER_NODE must hold the node config as JSON');
  const num = (k: string): number => {
    const x = v[k];
    if (typeof x !== 'number' || !Number.isInteger(x)) throw new TypeError(`node config: ${k} must be an integer`);
    return x;
  };
  const str = (k: string): string => {
    const x = v[k];
    if (typeof x !== 'string') throw new TypeError(`node config: ${k} must be a string`);
    return x;
  };
  return {
    port: num('port'),
    nodeId: str('nodeId'),
    redisUrl: str('redisUrl'),
    keyPrefix: str('keyPrefix'),
    ttlMs: num('ttlMs'),
    ownerLeaseMs: num('ownerLeaseMs'),
    pollTimeoutMs: num('pollTimeoutMs'),
    sessionIdleTimeoutMs: num('sessionIdleTimeoutMs'),
  };
}

export function isNodeCommand(v: unknown): v is NodeCommand {
  if (!isObject(v) || typeof v.id !== 'number') return false;
  switch (v.cmd) {
    case 'send':
      return typeof v.sid === 'string' && typeof v.from === 'number' && typeof v.count === 'number' && typeof v.gen === 'number' && typeof v.remote === 'boolean';
    case 'closeSession':
      return typeof v.sid === 'string';
    case 'stats':
    case 'close':
      return true;
    default:
      return false;
  }
}

function isNodeReport(v: unknown): v is NodeReport {
  return isObject(v) && typeof v.ev === 'string';
}

// ---- the cluster, as the test process sees it ----

const FIXTURE = fileURLToPath(new URL('../fixtures/cluster-node.ts', import.meta.url));
const START_TIMEOUT_MS = 30_000;
const COMMAND_TIMEOUT_MS = 60_000;

/** What a node reported, with the node it came from. */
export interface SessionSeen {
  node: string;
  sid: string;
  resumed: boolean;
  t: number;
}
export interface MessageSeen {
  node: string;
  sid: string;
  key: string;
  redelivered: boolean;
  t: number;
}
export interface CloseSeen {
  node: string;
  sid: string;
  code: string;
  unacked: string[];
}

type DoneReport = Extract<NodeReport, { ev: 'done' }>;
type CommandBody = NodeCommand extends infer C ? (C extends NodeCommand ? Omit<C, 'id'> : never) : never;

export class NodeProcess {
  readonly nodeId: string;
  readonly child: ChildProcess;
  port = 0;
  pid = 0;
  readonly #cluster: Cluster;
  readonly #waiting = new Map<number, (r: DoneReport) => void>();
  #nextId = 1;
  #stderr = '';
  /** Settles once the process has exited and its stdout and stderr are read to the end. */
  readonly closed: Promise<void>;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly #unregister: () => void;

  constructor(cluster: Cluster, config: NodeConfig) {
    this.#cluster = cluster;
    this.nodeId = config.nodeId;
    this.child = fork(FIXTURE, [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, HOLDLINE_CLUSTER_NODE: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const child = this.child;
    this.#unregister = onProcessExit(() => child.kill('SIGKILL'));
    this.closed = once(child, 'close').then(([code, signal]: unknown[]) => {
      this.#exit = { code: typeof code === 'number' ? code : null, signal: typeof signal === 'string' ? (signal as NodeJS.Signals) : null };
      this.#unregister();
      for (const w of this.#waiting.values()) w({ ev: 'done', id: 0, ok: false, code: 'exited', message: `${this.nodeId} exited` });
      this.#waiting.clear();
      cluster.changed.notify();
    });
    let partial = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line !== '') this.#onLine(line);
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-16_384);
    });
  }

  get exited(): boolean {
    return this.#exit !== undefined;
  }

  get exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.#exit;
  }

  get stderr(): string {
    return this.#stderr;
  }

  #onLine(line: string): void {
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch {
      this.#stderr += `\n(stdout) ${line}`;
      return;
    }
    if (!isNodeReport(r)) return;
    const c = this.#cluster;
    switch (r.ev) {
      case 'ready':
        this.port = r.port;
        this.pid = r.pid;
        break;
      case 'session':
        c.sessions.push({ node: this.nodeId, sid: r.sid, resumed: r.resumed, t: r.t });
        break;
      case 'message':
        c.messages.push({ node: this.nodeId, sid: r.sid, key: r.key, redelivered: r.redelivered, t: r.t });
        break;
      case 'close':
        c.closes.push({ node: this.nodeId, sid: r.sid, code: r.code, unacked: r.unacked });
        break;
      case 'error':
        c.errors.push({ node: this.nodeId, code: r.code, message: r.message });
        break;
      case 'done': {
        const w = this.#waiting.get(r.id);
        this.#waiting.delete(r.id);
        w?.(r);
        break;
      }
    }
    c.changed.notify();
  }

  /** Resolves once the node listens. */
  async ready(): Promise<void> {
    await this.#cluster.changed
      .until(() => this.port !== 0 || this.exited, START_TIMEOUT_MS, () => `${this.nodeId} to start`)
      .catch((e: unknown) => {
        throw new Error(`${String(e)}\nstderr:\n${this.#stderr}`);
      });
    if (this.port === 0) throw new Error(`${this.nodeId} exited while starting\nstderr:\n${this.#stderr}`);
  }

  /** Runs a command; resolves with the node's answer (ok false when it failed, or the node exited). */
  command(body: CommandBody): Promise<DoneReport> {
    const id = this.#nextId++;
    if (this.exited || !this.child.connected) return Promise.resolve({ ev: 'done', id, ok: false, code: 'exited', message: `${this.nodeId} is not running` });
    return new Promise<DoneReport>((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        resolve({ ev: 'done', id, ok: false, code: 'timeout', message: `${this.nodeId}: ${body.cmd} got no answer in ${COMMAND_TIMEOUT_MS} ms` });
      }, COMMAND_TIMEOUT_MS);
      this.#waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.child.send({ ...body, id }, (err) => {
        if (err === null) return;
        clearTimeout(timer);
        this.#waiting.delete(id);
        resolve({ ev: 'done', id, ok: false, code: 'ipc', message: err.message });
      });
    });
  }

  /** SIGKILL; resolves once the process is gone and everything it printed is read. */
  async kill(): Promise<void> {
    if (!this.exited) this.child.kill('SIGKILL');
    await this.closed;
  }

  /** Graceful: hl.close() hands the sessions over, then the process exits. SIGKILL if it does not within the bound. */
  async close(timeoutMs = 20_000): Promise<void> {
    if (this.exited) return;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      await this.command({ cmd: 'close' });
      await this.closed;
    } finally {
      clearTimeout(timer);
    }
  }
}

export interface ClusterOptions {
  redisUrl: string;
  keyPrefix: string;
  ttlMs?: number;
  ownerLeaseMs?: number;
  pollTimeoutMs?: number;
  sessionIdleTimeoutMs?: number;
}

export class Cluster {
  readonly options: Required<ClusterOptions>;
  /** Every node process started, in order. */
  readonly processes: NodeProcess[] = [];
  readonly sessions: SessionSeen[] = [];
  readonly messages: MessageSeen[] = [];
  readonly closes: CloseSeen[] = [];
  readonly errors: Array<{ node: string; code: string; message: string }> = [];
  /** Notified on every report and every exit. */
  readonly changed = new Condition();

  constructor(options: ClusterOptions) {
    this.options = {
      ttlMs: 60_000,
      ownerLeaseMs: 1_000,
      pollTimeoutMs: 1_000,
      sessionIdleTimeoutMs: 5_000,
      ...options,
    };
  }

  /** Starts a node process (port 0: a free one) and resolves once it listens. */
  async start(nodeId: string, port = 0): Promise<NodeProcess> {
    const o = this.options;
    const node = new NodeProcess(this, {
      port,
      nodeId,
      redisUrl: o.redisUrl,
      keyPrefix: o.keyPrefix,
      ttlMs: o.ttlMs,
      ownerLeaseMs: o.ownerLeaseMs,
      pollTimeoutMs: o.pollTimeoutMs,
      sessionIdleTimeoutMs: o.sessionIdleTimeoutMs,
    });
    this.processes.push(node);
    await node.ready();
    return node;
  }

  /** The node process listening on `port` now (the latest started there). */
  byPort(port: number): NodeProcess | undefined {
    return [...this.processes].reverse().find((p) => p.port === port);
  }

  byId(nodeId: string): NodeProcess | undefined {
    return [...this.processes].reverse().find((p) => p.nodeId === nodeId);
  }

  /** Messages reported for session `sid`, from every node, in the order they were delivered (report time). */
  delivered(sid: string): MessageSeen[] {
    return this.messages.filter((m) => m.sid === sid).sort((a, b) => a.t - b.t);
  }

  /** SIGKILL every process still running and wait for all of them. */
  async stop(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.kill()));
  }
}
