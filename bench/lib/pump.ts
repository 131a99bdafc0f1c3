/** Sending N messages through a library's send window, with a deadline. */
import type { Sender } from './adapters/index.js';

/**
 * Send `count` messages made by `make(i)`, waiting whenever the sender's
 * window is full. Throws when `deadline` (performance.now()) passes.
 * Returns how many were handed to the library.
 */
export async function pump(sender: Sender, count: number, make: (i: number) => string, deadline: number, from = 0): Promise<number> {
  for (let i = from; i < count; i++) {
    const wait = sender.send(make(i));
    if (wait) {
      await wait;
      if (performance.now() > deadline) throw new Error(`sending timed out after ${i + 1} of ${count} messages`);
    }
  }
  return count - from;
}

/** Resolve when `done()` is true, checking every `everyMs`; reject at `deadline`. */
export async function until(done: () => boolean, deadline: number, what: string, everyMs = 5): Promise<void> {
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
