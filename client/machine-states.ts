/**
 * The session machine's states (session-machine.ts), the transitions between
 * them, and what an operation fails with once the client is closing or
 * closed.
 *
 *                 connect()                 request fails
 *   idle ──────▶ connecting ──▶ open ◀──────────────────▶ reconnecting
 *                     │           │   request succeeds       │    ▲
 *                     │           │ close()                  │    │ session gone: back-off,
 *                     ▼           ▼                          │    │ new session + 'reset'
 *                  closed ◀── closing                        └────┘
 *                     ▲─────────────────── close frame / fatal error
 *
 * Every state change goes through the machine's #setState(), which refuses
 * (checkTransition) a transition the diagram does not have. Reactions to
 * failures come from one table, shared/reaction.ts.
 */
import { HoldlineError, type CloseReason } from '../shared/index.js';
import type { ClientState } from './events.js';
import { noteState } from './client-metrics.js';

/** The transitions #setState() allows, from each state. */
const NEXT: { readonly [S in ClientState]: readonly ClientState[] } = {
  idle: ['connecting', 'closing'],
  connecting: ['open', 'closing', 'closed'],
  open: ['reconnecting', 'closing', 'closed'],
  reconnecting: ['open', 'reconnecting', 'closing', 'closed'],
  closing: ['closed'],
  closed: [],
};

/** Throws `invalid_state` when the diagram has no transition from `state` to `next`; logs it when it has (session `sid`). */
export function checkTransition(state: ClientState, next: ClientState, sid: string | undefined): void {
  if (!NEXT[state].includes(next)) throw new HoldlineError('invalid_state', `no transition from ${state} to ${next}`);
  noteState(state, next, sid);
}

/**
 * Why `what` cannot be done on a client in `state` (closing or closed):
 * `server_closed` when the server closed the session, the fatal error's
 * code when one closed it, else `client_closed`. `reason` and `error` are
 * what the client closed with (undefined while it has not).
 */
export function closedError(what: string, state: ClientState, reason: CloseReason | undefined, error: HoldlineError | undefined): HoldlineError {
  if (state === 'closed' && reason?.code === 'server_closed') {
    return new HoldlineError('server_closed', `${what} after the server closed the session: ${reason.message}`);
  }
  const fatal = state === 'closed' && reason?.code === 'transport_error' ? error : undefined;
  if (fatal) return new HoldlineError(fatal.code, `${what} on a client closed by an error: ${fatal.message}`, { status: fatal.status, cause: fatal });
  return new HoldlineError('client_closed', `${what} on a ${state} client`);
}
