/**
 * Deadlines for one request at a time (one lane, or one of the poll lane's
 * two slots), made cheaply: it keeps one AbortController and one timer and
 * re-arms them per request instead of allocating new ones
 * (a client process with a thousand clients sends thousands of polls a
 * second). The controller is replaced only once it has fired.
 */
type Timer = ReturnType<typeof setTimeout>;

export class RequestDeadline {
  #ctrl = new AbortController();
  #timer: Timer | undefined;
  #ms = -1;
  #linked: AbortSignal | undefined;
  #busy = false;
  readonly #fire = () => this.#ctrl.abort();

  /** Armed for a request that has not finished. */
  get busy(): boolean {
    return this.#busy;
  }

  /**
   * The signal for the next request: it aborts after `ms`, or when `cancel`
   * aborts (the session ended), whichever comes first.
   */
  arm(ms: number, cancel: AbortSignal): AbortSignal {
    this.#busy = true;
    if (this.#ctrl.signal.aborted) this.#ctrl = new AbortController();
    if (this.#linked !== cancel) {
      this.#linked = cancel;
      cancel.addEventListener('abort', this.#fire, { once: true });
    }
    if (cancel.aborted) this.#fire();
    const t = this.#timer;
    if (t !== undefined && this.#ms === ms && typeof t === 'object' && typeof t.refresh === 'function') {
      t.refresh();
    } else {
      if (t !== undefined) clearTimeout(t);
      this.#timer = setTimeout(this.#fire, ms);
      this.#ms = ms;
      // In Node, an armed deadline must not keep the process alive by itself.
      const timer = this.#timer as { unref?: () => void };
      timer.unref?.();
    }
    return this.#ctrl.signal;
  }

  /** The request finished: stop the timer until the next arm(). */
  disarm(): void {
    this.#busy = false;
    // The timer is kept for refresh(); firing on an idle lane only retires its controller.
    // Where timers cannot be refreshed (browsers), clear it.
    const t = this.#timer;
    if (t !== undefined && typeof t !== 'object') {
      clearTimeout(t);
      this.#timer = undefined;
    }
  }

  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#linked?.removeEventListener('abort', this.#fire);
    this.#linked = undefined;
  }
}
