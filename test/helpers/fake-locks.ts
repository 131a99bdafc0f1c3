/**
 * navigator.locks for tab tests in Node (client/tab-channel-*.test.ts,
 * client/tabs/handover.test.ts): exclusive mode only, FIFO per name.
 */
import type { TabLockManager } from '../../client/tab-channel.js';

export class FakeLocks implements TabLockManager {
  readonly #tails = new Map<string, Promise<void>>();

  request(name: string, options: { signal?: AbortSignal }, callback: (lock: unknown) => Promise<void>): Promise<unknown> {
    const prev = this.#tails.get(name) ?? Promise.resolve();
    let releaseNext!: () => void;
    const mine = new Promise<void>((r) => {
      releaseNext = r;
    });
    this.#tails.set(name, prev.then(() => mine));
    return prev.then(async () => {
      try {
        if (options.signal?.aborted) throw new Error('AbortError');
        return await callback({ name });
      } finally {
        releaseNext();
      }
    });
  }
}

