/** `holdline/protocol`: the wire protocol and the reliable stream, shared by server and client. */
export * from './constants.js';
export * from './errors.js';
export * from './payload.js';
export * from './codec.js';
export * from './outbox.js';
export * from './inbox.js';
export * from './emitter.js';
export * from './send-window.js';
export * from './unsent.js';
export * from './rpc-codec.js';
export * from './rpc.js';
export * from './websocket-framing.js';
