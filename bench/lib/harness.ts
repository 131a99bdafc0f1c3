/**
 * The process harness (parent side). An Agent is one child process running
 * agent.ts, compiled (plain node, no tsx: agent-bundle.ts); `call(role, args)` runs a role there and resolves with its
 * result. Every call has a deadline, every child is killed when the run ends
 * (normally, by an error, or by a signal), and a child exits by itself if
 * the parent disappears.
 *
 * Children are started through `sh -c 'ulimit -n N; exec node ...'` so that a
 * child holding thousands of sockets can have its open-files limit raised
 * (as far as the hard limit, or past it when running as root).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { agentEntry } from './agent-bundle.js';
import { cpuBegin, cpuEnd, memory, processInfo, type CpuReport, type MemoryReport, type ProcessInfo, type Role } from './roles.js';

export type AgentRequest = { type: 'call'; id: number; role: string; args: unknown };
export type AgentReply =
  | { type: 'ready'; pid: number }
  | { type: 'result'; id: number; ok: true; value: unknown }
  | { type: 'result'; id: number; ok: false; error: string };

export interface AgentOptions {
  /** For messages: 'server', 'clients', ... */
  name: string;
  /** Start node with --expose-gc (for memory figures after a full collection). */
  exposeGc?: boolean;
  /** Open-files limit to ask for. */
  nofile?: number;
  /** Extra node flags (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Deadline for the child to start. */
  startTimeoutMs?: number;
}

/** A child that did not report ready in time (Agent.spawn starts it once more). */
class StartTimeout extends Error {}

const live = new Set<Agent>();
let childNodeArgs: string[] = [];

/** Node flags for every child started from now on (e.g. --cpu-prof). */
export function setChildNodeArgs(args: string[]): void {
  childNodeArgs = [...args];
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class Agent {
  readonly name: string;
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #exited = false;
  readonly exited: Promise<void>;
  info: ProcessInfo | undefined;

  private constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.#child = child;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exited = true;
        live.delete(this);
        for (const [, p] of this.#pending) {
          clearTimeout(p.timer);
          p.reject(new Error(`bench child "${name}" exited (code ${code}, signal ${signal}) during a call`));
        }
        this.#pending.clear();
        resolve();
      });
    });
    child.on('message', (raw: unknown) => this.#onMessage(raw as AgentReply));
    child.on('error', () => undefined); // 'exit' follows
  }

  /**
   * Start a child and wait for it to be ready. A child that does not report
   * ready in time is killed and started once more (seen once in a CI run: a
   * child that never reported while every other started in about 2 s); its
   * start-up is not what any workload measures.
   */
  static async spawn(options: AgentOptions): Promise<Agent> {
    try {
      return await Agent.#spawnOnce(options);
    } catch (e) {
      if (!(e instanceof StartTimeout)) throw e;
      process.stderr.write(`[${e.message}; starting it again] `);
      return Agent.#spawnOnce(options);
    }
  }

  static async #spawnOnce(options: AgentOptions): Promise<Agent> {
    // Plain node on the compiled child entry: no tsx in a child (agent-bundle.ts).
    const entry = await agentEntry();
    const nodeArgs = [...(options.exposeGc ? ['--expose-gc'] : []), ...childNodeArgs, ...(options.nodeArgs ?? [])];
    const nofile = options.nofile ?? 65_536;
    // Raise the soft (and, as root, hard) open-files limit, then become node.
    const script = 'ulimit -n "$1" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; shift; exec "$@"';
    const child = spawn('/bin/sh', ['-c', script, 'sh', String(nofile), process.execPath, ...nodeArgs, entry], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    const agent = new Agent(options.name, child);
    live.add(agent);
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new StartTimeout(`bench child "${options.name}" did not start`)), options.startTimeoutMs ?? 20_000);
      child.on('message', (m: unknown) => {
        if ((m as AgentReply).type === 'ready') {
          clearTimeout(timer);
          resolve();
        }
      });
      void agent.exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`bench child "${options.name}" exited while starting`));
      });
    });
    try {
      await ready;
      agent.info = await agent.call(processInfo, {}, 5_000);
      if (childNodeArgs.length > 0) process.stderr.write(`[${options.name}: pid ${agent.info.pid}] `);
    } catch (e) {
      await agent.kill();
      throw e;
    }
    return agent;
  }

  #onMessage(msg: AgentReply): void {
    if (msg.type !== 'result') return;
    const p = this.#pending.get(msg.id);
    if (!p) return;
    this.#pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.ok) p.resolve(msg.value);
    else p.reject(new Error(`in bench child "${this.name}": ${msg.error}`));
  }

  /** Run `role` in the child; rejects after `timeoutMs`, or if the child dies. */
  call<A, R>(role: Role<A, R>, args: A, timeoutMs: number): Promise<R> {
    if (this.#exited) return Promise.reject(new Error(`bench child "${this.name}" has exited`));
    const id = this.#nextId++;
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`bench child "${this.name}": role ${role.name} gave no result within ${timeoutMs} ms`));
      }, timeoutMs);
      // The one unchecked step: the child ran this role, which returns R.
      this.#pending.set(id, { resolve: (v) => resolve(v as R), reject, timer });
      const msg: AgentRequest = { type: 'call', id, role: role.name, args };
      this.#child.send(msg);
    });
  }

  // Generous: a child saturated by its workload (10,000 Engine.IO clients in
  // one process, say) may answer seconds late, and that is a result, not a failure.
  cpuBegin(): Promise<null> {
    return this.call(cpuBegin, {}, 60_000);
  }

  cpuEnd(): Promise<CpuReport> {
    return this.call(cpuEnd, {}, 60_000);
  }

  memory(): Promise<MemoryReport> {
    return this.call(memory, {}, 30_000);
  }

  /** Ask the child to exit (by closing IPC), then SIGKILL it if it has not within `graceMs`. */
  async kill(graceMs = childNodeArgs.length > 0 ? 20_000 : 2_000): Promise<void> {
    if (this.#exited) return;
    try {
      this.#child.disconnect();
    } catch {
      // already disconnected
    }
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Last resort, synchronous: used on process exit. */
  killNow(): void {
    if (!this.#exited) this.#child.kill('SIGKILL');
  }
}

/** One Agent per AgentOptions, in order: `[srv, cli]` for two. */
export type AgentsFor<O extends readonly AgentOptions[]> = { readonly [K in keyof O]: Agent };

/** Run `fn` with fresh agents, one per entry of `options`, and kill them all afterwards whatever happens. */
export async function withAgents<const O extends readonly AgentOptions[], T>(options: O, fn: (agents: AgentsFor<O>) => Promise<T>): Promise<T> {
  const started = await Promise.allSettled(options.map((o) => Agent.spawn(o)));
  const agents = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  try {
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    // Every start succeeded: one agent per option, in order.
    return await fn(agents as unknown as AgentsFor<O>);
  } finally {
    await Promise.all(agents.map((a) => a.kill()));
  }
}

/** Kill every child still running: on exit and on SIGINT/SIGTERM. */
export function killAllAgents(): void {
  for (const a of live) a.killNow();
}

let hooked = false;
/** Install the exit and signal hooks that kill leftover children (idempotent). */
export function installExitHooks(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllAgents);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAllAgents();
      process.exit(130);
    });
  }
}

export type { CpuReport, MemoryReport, ProcessInfo };
