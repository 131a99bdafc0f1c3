/**
 * The session a WebSocket connection serves (websocket-connection.ts): the
 * client's first frame that proves it, and, while another node owns it,
 * looking it up again now and then, as every request over HTTP is looked
 * up: its owner gone, this node takes it over then (session-lookup.ts).
 */
import type { RawData } from 'ws';
import { COMPACT_FRAMES, wireError, type CloseReason, type HoldlineError } from '../shared/index.js';
import type { Served, SessionRegistry } from './session-registry.js';
import { isCount, parseJson } from './websocket-frames.js';

/** The first frame: `{"sid","token","ack"}`, and "ws" (a count) and "f" if any. */
export interface Hello {
  sid: string;
  token: string;
  ack: number;
  /** The client's count of its first frames for the session (PROTOCOL.md, "WebSocket"); undefined: it counts none. */
  ws: number | undefined;
  /** `"f":1`: the client reads compact frames. */
  compact: boolean;
}

/** A hello taken: the session it proved, with its ack applied, and the server's inbound ack for the answer. */
export interface HelloTaken {
  served: Served;
  hello: Hello;
  inboundAck: number;
}

function parseHello(data: RawData, isBinary: boolean): Hello {
  const o = isBinary ? undefined : (parseJson(data) as { sid?: unknown; token?: unknown; ack?: unknown; ws?: unknown; f?: unknown } | undefined);
  if (o === undefined || typeof o !== 'object' || o === null || typeof o.sid !== 'string' || typeof o.token !== 'string' || !isCount(o.ack) || (o.ws !== undefined && !isCount(o.ws))) {
    throw wireError('malformed_request', 'the first frame must be {"sid","token","ack"} (and "ws", a count, if any)');
  }
  return { sid: o.sid, token: o.token, ack: o.ack, ws: typeof o.ws === 'number' ? o.ws : undefined, compact: o[COMPACT_FRAMES] === 1 };
}

/** Take the first frame: the session it proves, its ack applied; or, for a session that closed, why. Throws (rejects) with a wire error. */
export async function takeHello(core: SessionRegistry, data: RawData, isBinary: boolean): Promise<HelloTaken | CloseReason> {
  const hello = parseHello(data, isBinary);
  let s = core.authenticateSession({ sid: hello.sid, token: hello.token });
  if (s instanceof Promise) s = await s;
  if (!s.ok) {
    if (s.closed) return s.closed;
    throw s.error;
  }
  let acked = core.applyAck(s.value, hello.ack);
  if (acked instanceof Promise) acked = await acked;
  if (!acked) throw wireError('bad_ack', `ack ${hello.ack} is past the last message sent`);
  core.seen(s.value);
  const read = await core.options.store.readOutbound(s.value.sid, 0, Number.MAX_SAFE_INTEGER);
  return { served: s.value, hello, inboundAck: read.inboundAck };
}

/**
 * Look a session owned by another node up again, as a request over HTTP
 * would be: what the connection serves now (the session owned here, if this
 * node took it over), why it closed, or the error to fail with.
 */
export async function lookAgain(core: SessionRegistry, sid: string, token: string): Promise<Served | CloseReason | HoldlineError> {
  const r = await core.authenticateSession({ sid, token });
  return r.ok ? r.value : (r.closed ?? r.error);
}
