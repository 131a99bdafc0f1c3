/** `holdline/server` */
export { HoldlineServer } from './holdline-server.js';
export type { AttachOptions, BroadcastResult, HoldlineServerEvents, RequestHandler } from './holdline-server.js';
export type { HoldlineServerOptions, AuthenticateHook } from './options.js';
export { Session } from './session.js';
export type { MessageInfo, SessionEvents, SessionState } from './session.js';
export { MemoryStore } from './memory-store.js';
export { RemoteSession } from './remote-session.js';
export type { SessionHandle } from './remote-session.js';
export { NODE_HEADER } from './http-handler.js';
export type * from './store.js';
export { HoldlineError, WIRE_ERRORS } from '../shared/errors.js';
export type { CloseReason, CloseCode, ErrorCode } from '../shared/errors.js';
export type { Payload } from '../shared/payload.js';
export type { PollCutAges, ServerMetricsSnapshot } from './metrics.js';
