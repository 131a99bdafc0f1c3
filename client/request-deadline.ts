/**
 * Deadlines for one request at a time (one lane, or one of the poll lane's
 * two slots), made cheaply: it keeps one AbortController and one timer
 * instead of allocating new ones per request (a client process with a
 * thousand clients sends thousands of polls a second). The controller is
 * replaced only once it has fired.
 *
 * Arming only notes when the request must end: the timer is left running, and
 * when it fires early (it was set for an earlier request) it waits out the
 * rest. A request thus touches no timer at all, which matters most to a send
 * after an idle gap, when every piece of code on its way costs the most.
 */
type Timer = ReturnType<typeof setTimeout>;

export class RequestDeadline {
  #ctrl = new AbortController();
  #timer: Timer | undefined;
  /** When the running timer fires (performance.now(), ms). */
  #timerAt = 0;
  /** When the request in flight must have ended (performance.now(), ms). */
  #endAt = 0;
  #linked: AbortSignal | undefined;
  #busy = false;
  readonly #fire = () => this.#ctrl.abort();
  readonly #check = () => {
    this.#timer = undefined;
    // Idle: the timer stops until the next arm().
    if (!this.#busy) return;
    const now = performance.now();
    if (now < this.#endAt) this.#start(Math.ceil(this.#endAt - now), now);
    else this.#fire();
  };

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
    const now = performance.now();
    const endAt = (this.#endAt = now + ms);
    // A timer that fires after this deadline (set for a longer one) is too late.
    if (this.#timer === undefined || this.#timerAt > endAt) this.#start(ms, now);
    return this.#ctrl.signal;
  }

  /** End the request in flight now, as if its deadline had passed (nothing when none is). */
  expire(): void {
    if (this.#busy) this.#fire();
  }

  /** The request finished: a timer that fires now finds the deadline idle. */
  disarm(): void {
    this.#busy = false;
  }

  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#linked?.removeEventListener('abort', this.#fire);
    this.#linked = undefined;
  }

  #start(ms: number, now: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = now + ms;
    this.#timer = setTimeout(this.#check, ms);
    // In Node, an armed deadline must not keep the process alive by itself.
    const timer = this.#timer as { unref?: () => void };
    timer.unref?.();
  }
}
