/**
 * Roles: the named operations a bench child process can run on the parent's
 * request (start a server, connect clients, send N messages, ...). A workload
 * file defines its roles with defineRole(); the parent calls them through an
 * Agent (harness.ts), which sends the role's name and arguments over IPC; the
 * child (agent.ts) looks the role up here and runs it.
 *
 * Arguments and results cross a process boundary as JSON: keep them plain.
 */
import { loadHoldline } from './holdline-dist.js';
import { cpuPercent, round } from './stats.js';

export interface Role<A, R> {
  readonly name: string;
  readonly run: (args: A) => Promise<R> | R;
}

type AnyRun = (args: unknown) => Promise<unknown>;
const registry = new Map<string, AnyRun>();

export function defineRole<A, R>(name: string, run: (args: A) => Promise<R> | R): Role<A, R> {
  if (registry.has(name)) throw new Error(`bench role "${name}" is defined twice`);
  // The one unchecked step: the parent sent the arguments this role declares.
  registry.set(name, async (args) => run(args as A));
  return { name, run };
}

export function findRole(name: string): AnyRun | undefined {
  return registry.get(name);
}

/**
 * The state an earlier role set up in this child (its server, its client,
 * its session); throws when the parent called the roles out of order.
 */
export function started<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is not set up in this bench child: a role was called out of order`);
  return value;
}

// ---- roles every child has: CPU and memory accounting ----

let cpuStart: { usage: NodeJS.CpuUsage; at: number } | undefined;

/** Start a CPU measurement window in this process. */
export const cpuBegin = defineRole<Record<string, never>, null>('cpu.begin', () => {
  cpuStart = { usage: process.cpuUsage(), at: performance.now() };
  return null;
});

export interface CpuReport {
  /** CPU time over the window as percent of one core (may exceed 100 with worker threads). */
  cpuPct: number;
  wallMs: number;
}

/** End the window opened by cpu.begin. */
export const cpuEnd = defineRole<Record<string, never>, CpuReport>('cpu.end', () => {
  if (!cpuStart) throw new Error('cpu.end without cpu.begin');
  const wallMs = performance.now() - cpuStart.at;
  const cpuPct = round(cpuPercent(process.cpuUsage(cpuStart.usage), wallMs), 1);
  cpuStart = undefined;
  return { cpuPct, wallMs: round(wallMs, 1) };
});

export interface MemoryReport {
  rss: number;
  heapUsed: number;
  /** false when the process was started without --expose-gc (figures include garbage). */
  afterGc: boolean;
}

/** Memory after a full collection (run the child with exposeGc for that). */
export const memory = defineRole<Record<string, never>, MemoryReport>('memory', async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    // Several rounds, with turns of the event loop between, so that weak
    // references and finalizers queued by one round are collected by the next.
    for (let i = 0; i < 4; i++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, afterGc: gc !== undefined };
});

export interface ProcessInfo {
  pid: number;
  nofile: number | undefined;
  /** The Holdline entry points this process loaded (dist/, checked by holdline-dist.ts). */
  library: { server: string; client: string };
}

/** Facts about the child: pid, its open-files limit, the Holdline it runs. */
export const processInfo = defineRole<Record<string, never>, ProcessInfo>('process.info', async () => {
  const { readFile } = await import('node:fs/promises');
  let nofile: number | undefined;
  try {
    const limits = await readFile('/proc/self/limits', 'utf8');
    const m = /^Max open files\s+(\d+)/m.exec(limits);
    nofile = m ? Number(m[1]) : undefined;
  } catch {
    nofile = undefined;
  }
  return { pid: process.pid, nofile, library: (await loadHoldline()).library };
});
