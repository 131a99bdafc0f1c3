/** Parent-side helpers shared by the workloads. */
import type { Agent, CpuReport } from './harness.js';
import type { LibName } from './adapters/types.js';

/** The outcome of one workload for one library: its figures, or why there are none. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: string };

export type PerLib<T> = Partial<Record<LibName, Outcome<T>>>;

/** One CPU report per agent, in the agents' order. */
export type CpuFor<A extends readonly Agent[]> = { readonly [K in keyof A]: CpuReport };

/** Run `fn` with CPU accounting on every agent; the reports in the agents' order (`[srvCpu, cliCpu]`). */
export async function withCpu<const A extends readonly Agent[], T>(agents: A, fn: () => Promise<T>): Promise<{ value: T; cpu: CpuFor<A> }> {
  await Promise.all(agents.map((a) => a.cpuBegin()));
  const value = await fn();
  // Promise.all over a map keeps the order and the length: one report per agent.
  const cpu = (await Promise.all(agents.map((a) => a.cpuEnd()))) as unknown as CpuFor<A>;
  return { value, cpu };
}

/** Run `fn`, logging progress on stderr; a failure is recorded, not thrown. */
export async function attempt<T>(label: string, fn: () => Promise<T>): Promise<Outcome<T>> {
  const started = performance.now();
  process.stderr.write(`  ${label} ... `);
  try {
    const value = await fn();
    process.stderr.write(`done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
    return { ok: true, value };
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    process.stderr.write(`FAILED: ${error.split('\n')[0]}\n`);
    return { ok: false, error };
  }
}

/** Run one workload for each library in turn; a failure is recorded, not thrown. */
export async function perLib<T>(libs: readonly LibName[], label: string, fn: (lib: LibName) => Promise<T>): Promise<PerLib<T>> {
  const out: PerLib<T> = {};
  for (const lib of libs) out[lib] = await attempt(`${label} / ${lib}`, () => fn(lib));
  return out;
}

/**
 * Run `fn` `repeat` times for each library, the libraries taking turns run
 * by run (H, E, H, E, ...), so a slow spell of the machine falls on both
 * rather than on one library's runs. Every outcome, per library, in order.
 */
export async function inTurns<T, L extends string = LibName>(libs: readonly L[], repeat: number, label: string, fn: (lib: L) => Promise<T>): Promise<Map<L, Array<Outcome<T>>>> {
  const runs = new Map<L, Array<Outcome<T>>>(libs.map((lib) => [lib, []]));
  for (let r = 0; r < repeat; r++) {
    for (const lib of libs) {
      const name = repeat > 1 ? `${label} / ${lib} (run ${r + 1} of ${repeat})` : `${label} / ${lib}`;
      runs.get(lib)?.push(await attempt(name, () => fn(lib)));
    }
  }
  return runs;
}
