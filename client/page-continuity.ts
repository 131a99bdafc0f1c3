/**
 * A client's life in a browser page (Page Lifecycle): nothing here costs a
 * session, and a page that comes back checks its poll at once.
 *
 * - `resume` (a frozen page thawed), `visibilitychange` to visible, and
 *   `pageshow` from the back/forward cache: the poll may have died meanwhile
 *   (a NAT or proxy forgot it while timers were stopped); it is replaced now
 *   rather than at its deadline (which, run late by a frozen or throttled
 *   timer, is not taken as a death either: see polling-transport.ts).
 * - With `resume: 'session'` (reload continuity), the session's state
 *   (session-state.ts: credential, positions, unacknowledged messages) is
 *   kept in sessionStorage on `freeze` and `pagehide`, and connect() resumes
 *   it. A page that is really going away (pagehide, not into the
 *   back/forward cache) stops its client there without ending the session
 *   (no /close), so that nothing is received, acknowledged or sent after
 *   what was stored. A stored state is used once: it is removed when read.
 *
 * Outside a browser (no `document`), nothing happens.
 */
import { loadSessionState, saveSessionState, type SessionState } from './session-state.js';

export interface PageClient {
  exportState(): SessionState | undefined;
  detach(): SessionState | undefined;
  revalidate(): void;
}

interface PageDocument {
  readonly visibilityState?: string;
  addEventListener(type: string, fn: (ev: Event) => void, options?: { capture?: boolean }): void;
  removeEventListener(type: string, fn: (ev: Event) => void, options?: { capture?: boolean }): void;
}

function pageDocument(): PageDocument | undefined {
  const d = (globalThis as { document?: PageDocument }).document;
  return d && typeof d.addEventListener === 'function' && typeof addEventListener === 'function' ? d : undefined;
}

export class PageContinuity {
  readonly #url: string;
  readonly #keep: boolean;
  readonly #client: PageClient;
  readonly #doc: PageDocument | undefined;
  readonly #onResume = () => this.#client.revalidate();
  readonly #onVisibility = () => {
    if (this.#doc?.visibilityState === 'visible') this.#client.revalidate();
    else if (this.#keep) this.#save(this.#client.exportState());
  };
  readonly #onFreeze = () => {
    if (this.#keep) this.#save(this.#client.exportState());
  };
  readonly #onPageShow = (ev: Event) => {
    if ((ev as { persisted?: boolean }).persisted === true) this.#client.revalidate();
  };
  readonly #onPageHide = (ev: Event) => {
    if (!this.#keep) return;
    // Into the back/forward cache: the page may come back as it is.
    if ((ev as { persisted?: boolean }).persisted === true) this.#save(this.#client.exportState());
    else this.#save(this.#client.detach());
  };

  constructor(url: string, keep: boolean, client: PageClient) {
    this.#url = url;
    this.#keep = keep;
    this.#client = client;
    this.#doc = pageDocument();
  }

  /** The state a connect() should resume (taken out of storage), if any. */
  take(): SessionState | undefined {
    if (!this.#keep) return undefined;
    const state = loadSessionState(this.#url);
    if (state) saveSessionState(this.#url, undefined);
    return state;
  }

  /** Listen to the page (connect() calls it). */
  attach(): void {
    const d = this.#doc;
    if (!d) return;
    d.addEventListener('resume', this.#onResume);
    d.addEventListener('freeze', this.#onFreeze);
    d.addEventListener('visibilitychange', this.#onVisibility);
    addEventListener('pageshow', this.#onPageShow);
    addEventListener('pagehide', this.#onPageHide);
  }

  /** The client closed: stop listening; nothing stays stored. */
  detach(): void {
    const d = this.#doc;
    if (!d) return;
    d.removeEventListener('resume', this.#onResume);
    d.removeEventListener('freeze', this.#onFreeze);
    d.removeEventListener('visibilitychange', this.#onVisibility);
    removeEventListener('pageshow', this.#onPageShow);
    removeEventListener('pagehide', this.#onPageHide);
  }

  /** Forget what is stored (the session ended for good). */
  forget(): void {
    if (this.#keep) saveSessionState(this.#url, undefined);
  }

  #save(state: SessionState | undefined): void {
    if (state) saveSessionState(this.#url, state);
  }
}
