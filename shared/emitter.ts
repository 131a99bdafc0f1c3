/**
 * A small typed event emitter that runs in browsers and Node alike
 * (node:events is not available in browsers). Listener errors are not caught:
 * they surface like any other exception thrown from application code.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- listener tuples must accept any argument list shape
type Listener = (...args: any[]) => void;
/** One listener, or two or more in order. */
type Listeners = Listener | readonly Listener[];

type Slots = Array<unknown>;

/** Index of `event` in the flat slots array, or -1. */
function find(slots: Slots | undefined, event: unknown): number {
  if (slots) for (let i = 0; i < slots.length; i += 2) if (slots[i] === event) return i;
  return -1;
}

/** The listeners of `event`, if any. */
function listenersOf(slots: Slots | undefined, event: unknown): Listeners | undefined {
  if (!slots) return undefined;
  const i = find(slots, event);
  return i < 0 ? undefined : (slots[i + 1] as Listeners);
}

/** Call one listener; report what it throws or what its promise rejects with. True when it returned a promise (an async listener, still at work). */
function guarded(fn: Listener, args: unknown[], onError: (err: unknown) => void): boolean {
  try {
    const r: unknown = fn(...args);
    if (!(r instanceof Promise)) return false;
    r.catch(onError);
    return true;
  } catch (e) {
    onError(e);
    return false;
  }
}

// The helpers above are functions rather than private methods: a class with
// private methods gives each instance a hidden brand field, 8 bytes per
// emitter (and an idle server holds an emitter per session).
export class TypedEmitter<Events extends { [K in keyof Events]: Listener }> {
  /**
   * Listeners as one flat array [event, listeners, event, listeners, ...],
   * made on the first on(), where `listeners` is the function itself while
   * an event has one: an emitter has a handful of events at most, and many
   * emitters (idle sessions) have one or two listeners in all, which a Map
   * and an array per event would cost several times over. Arrays of two or
   * more are copied on write (on/off), never on emit: emit is the hot path.
   */
  #slots: Slots | undefined;

  on<K extends keyof Events>(event: K, fn: Events[K]): this {
    const slots = this.#slots;
    const i = find(slots, event);
    if (i < 0) {
      // Copied into an array of the exact size, not push()ed: V8 grows an
      // array by 16 slots at a time, 130 bytes more per idle session.
      this.#slots = slots === undefined ? [event, fn] : slots.concat([event, fn]);
    } else if (slots) {
      const had = slots[i + 1] as Listeners;
      slots[i + 1] = typeof had === 'function' ? [had, fn] : [...had, fn];
    }
    return this;
  }

  once<K extends keyof Events>(event: K, fn: Events[K]): this {
    const wrapper = ((...args: Parameters<Events[K]>): unknown => {
      this.off(event, wrapper as Events[K]);
      // Its result goes back to the emitter: an async listener's rejection is reported (emitGuarded).
      return fn(...args);
    }) as Events[K];
    return this.on(event, wrapper);
  }

  off<K extends keyof Events>(event: K, fn: Events[K]): this {
    const slots = this.#slots;
    const i = find(slots, event);
    if (i < 0 || !slots) return this;
    const had = slots[i + 1] as Listeners;
    if (typeof had === 'function') {
      if (had === fn) slots.splice(i, 2);
      return this;
    }
    const at = had.indexOf(fn);
    if (at < 0) return this;
    const rest = [...had.slice(0, at), ...had.slice(at + 1)];
    slots[i + 1] = rest.length === 1 ? rest[0] : rest;
    return this;
  }

  /** Node-style aliases, so helpers such as `events.once()` work on Holdline emitters. */
  addListener<K extends keyof Events>(event: K, fn: Events[K]): this {
    return this.on(event, fn);
  }

  removeListener<K extends keyof Events>(event: K, fn: Events[K]): this {
    return this.off(event, fn);
  }

  /** The listeners of `event`, in order (a copy). */
  listeners<K extends keyof Events>(event: K): Events[K][] {
    const l = listenersOf(this.#slots, event);
    return l === undefined ? [] : typeof l === 'function' ? [l as Events[K]] : [...(l as Events[K][])];
  }

  listenerCount(event: keyof Events): number {
    const l = listenersOf(this.#slots, event);
    return l === undefined ? 0 : typeof l === 'function' ? 1 : l.length;
  }

  /**
   * emit() for application listeners, which are untrusted code: each listener
   * runs even when one before it throws, and a listener that throws, or
   * returns a promise that rejects (an async listener), is reported to
   * `onError` instead of reaching the caller (a loop that must go on).
   * True when a listener returned a promise: it may still be at work.
   */
  protected emitGuarded<K extends keyof Events>(onError: (err: unknown) => void, event: K, ...args: Parameters<Events[K]>): boolean {
    const l = listenersOf(this.#slots, event);
    if (l === undefined) return false;
    if (typeof l === 'function') return guarded(l, args, onError);
    let async = false;
    for (const fn of l) async = guarded(fn, args, onError) || async;
    return async;
  }

  protected emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): boolean {
    const l = listenersOf(this.#slots, event);
    if (l === undefined) return false;
    if (typeof l === 'function') l(...args);
    else for (const fn of l) fn(...args);
    return true;
  }
}
