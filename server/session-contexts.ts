/**
 * The sessions' contexts (SessionContext, server/session-host.ts): a
 * session's node and who opened it. The sessions that follow one another
 * from one address with no hook data share one object (clients behind one
 * NAT or proxy, or every client behind a reverse proxy without
 * `trustProxy`): an idle server would keep one per session otherwise.
 */
import type { SessionContext, SessionHost, SessionIdentity } from './session-host.js';

export class SessionContexts {
  readonly #host: SessionHost;
  /** The last one made for a session with no hook data. */
  #last: SessionContext | undefined;

  constructor(host: SessionHost) {
    this.#host = host;
  }

  /** The context of a session of `identity`: the last one, when the address is the same and there is no hook data. */
  of(identity: SessionIdentity): SessionContext {
    const { data, remoteAddress } = identity;
    if (data !== undefined) return { host: this.#host, data, remoteAddress };
    const last = this.#last;
    if (last !== undefined && last.remoteAddress === remoteAddress) return last;
    return (this.#last = Object.freeze({ host: this.#host, data: undefined, remoteAddress }));
  }
}
