/**
 * Node platform: every request goes through undici's dispatch API (plain
 * http, https, proxied alike) on dispatchers owned by this client (not the
 * global fetch pool: a fetch round trip costs ~0.6 ms more, and one shared
 * pool makes many clients in one process pay for each other). HTTP framing is
 * undici's job: it checks an idle socket before reusing it, and rejects the
 * malformed answers a hand-written parser would have to relearn to reject.
 *
 * A request that dies on its connection before its answer's head arrived
 * (the server or a middlebox closed or reset the socket) is sent once more at
 * once, on a fresh connection: every Holdline request is safe to repeat (seq
 * and ack de-duplicate sends, an open carries its `attempt` id, a session has
 * one poll), so the client does not back off and go `reconnecting` for a
 * keep-alive connection that was closed under it.
 *
 * An answer longer than the caller's `maxBodyBytes` (by its Content-Length,
 * or as its body streams in) is `bad_response`: the request is aborted at
 * that point, which makes undici drop the connection, so a hostile server
 * cannot make the client buffer without bound.
 *
 * Proxies (client/node/): the `proxy` option (a URL, { url, username,
 * password, domain }, or { pac }), else HTTP_PROXY / HTTPS_PROXY / NO_PROXY
 * (either case, as curl reads them). An http:// server is reached through an
 * http:// proxy with ordinary absolute-form requests (`POST http://host/path`),
 * not a CONNECT tunnel, which most proxies allow only to port 443; https://
 * and WebSockets go through CONNECT. The proxy's 407 is answered with NTLM
 * (NTLMv2, per connection), Digest or Basic, whichever it asks for (see
 * node/proxy-auth.ts).
 *
 * WebSockets: `ws`, on a connection of its own, through a CONNECT tunnel
 * where a proxy applies (a proxy that refuses CONNECT to the port makes the
 * WebSocket fail, and the client stays on polling).
 */
import type { Platform } from './platform.js';
import { UndiciRequester } from './node/requester.js';
import { NodeWebSocket } from './node/websocket.js';

export const nodePlatform: Platform = {
  name: 'node',
  createRequester: (options) => new UndiciRequester(options),
  openWebSocket: (url, handlers, options) => new NodeWebSocket(url, handlers, options),
};
