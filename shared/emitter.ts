/**
 * A small typed event emitter that runs in browsers and Node alike
 * (node:events is not available in browsers). Listener errors are not caught:
 * they surface like any other exception thrown from application code.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- listener tuples must accept any argument list shape
type Listener = (...args: any[]) => void;

export class TypedEmitter<Events extends { [K in keyof Events]: Listener }> {
  /** Made on the first on(): many emitters (idle sessions) never get a listener for most events. */
  #map: Map<keyof Events, Listener[]> | undefined;

  get #listeners(): Map<keyof Events, Listener[]> {
    return (this.#map ??= new Map());
  }

  // Listener arrays are copied on write (on/off), never on emit: emit is the hot path.
  on<K extends keyof Events>(event: K, fn: Events[K]): this {
    const list = this.#listeners.get(event);
    this.#listeners.set(event, list ? [...list, fn] : [fn]);
    return this;
  }

  once<K extends keyof Events>(event: K, fn: Events[K]): this {
    const wrapper = ((...args: Parameters<Events[K]>) => {
      this.off(event, wrapper as Events[K]);
      fn(...args);
    }) as Events[K];
    return this.on(event, wrapper);
  }

  off<K extends keyof Events>(event: K, fn: Events[K]): this {
    const list = this.#listeners.get(event);
    if (!list) return this;
    const i = list.indexOf(fn);
    if (i < 0) return this;
    if (list.length === 1) this.#listeners.delete(event);
    else this.#listeners.set(event, [...list.slice(0, i), ...list.slice(i + 1)]);
    return this;
  }

  /** Node-style aliases, so helpers such as `events.once()` work on Holdline emitters. */
  addListener<K extends keyof Events>(event: K, fn: Events[K]): this {
    return this.on(event, fn);
  }

  removeListener<K extends keyof Events>(event: K, fn: Events[K]): this {
    return this.off(event, fn);
  }

  listenerCount(event: keyof Events): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  protected emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): boolean {
    const list = this.#map?.get(event);
    if (!list) return false;
    if (list.length === 1) list[0](...args);
    else for (const fn of list) fn(...args);
    return true;
  }
}
