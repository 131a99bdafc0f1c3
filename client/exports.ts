/** What both client entry points export besides HoldlineClient. */
export type {
  ClientEvents, ClientState, ClientStats, OpenEvent, ReconnectingEvent, ResetEvent, TransportEvent, TransportName,
} from './holdline-client.js';
export type { AuthData, AuthOption, HoldlineClientOptions } from './options.js';
export { HoldlineError } from '../shared/errors.js';
export type { CloseReason, CloseCode, ErrorCode } from '../shared/errors.js';
export type { Payload } from '../shared/payload.js';
