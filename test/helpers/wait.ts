/**
 * Waiting in tests for a condition: looked at every few milliseconds, failing
 * with what was awaited when time runs out. (A pause is node's own:
 * `import { setTimeout as sleep } from 'node:timers/promises'`.)
 */
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Resolve once `check()` holds, looking every `everyMs`; throw after
 * `timeoutMs`, naming `what` (a function: worked out only then, with the
 * state at that moment).
 */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string | (() => string), everyMs = 10): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${typeof what === 'string' ? what : what()}`);
    await sleep(everyMs);
  }
}
