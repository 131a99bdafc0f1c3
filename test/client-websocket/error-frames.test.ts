/**
 * Error frames on the client's WebSocket (PROTOCOL.md, "WebSocket",
 * "Ending"), against a real HoldlineServer behind a frame relay of the
 * test's own: the client's WebSocket ends at the relay, which opens one of
 * its own to the server and passes frames both ways, and can drop them or
 * put an error frame of its choosing in front of the client at a chosen
 * point (in place of the answer to the hello, or mid-stream).
 *
 * - An error code this client version does not know is `bad_response` with
 *   the code as received in `wireCode`, and gets the reaction the HTTP path
 *   gives the same error body (shared/reaction.ts, answerError): retry. On
 *   a WebSocket that is the connection going down: the session goes on on
 *   polling, nothing lost or repeated, and the client comes back up later.
 *   With transports ['websocket'] (no polling) it is a failed request:
 *   `reconnecting` with that error, then a new WebSocket.
 * - A known code whose reaction is retry (every one of them) likewise only
 *   takes the connection down: no reset, no close, no 'error'.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { describe, it } from 'node:test';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { ReconnectingEvent } from '../../client/index.js';
import { HoldlineError, type WireErrorCode } from '../../shared/index.js';
import { answerError, reactionOf, WIRE_REACTIONS } from '../../shared/reaction.js';
import { connect, expected, message, serve, show, sleep, waitFor, type Connected, type Rig } from './helpers.js';

/** One client WebSocket at the relay, and the relay's own to the server. */
interface Relayed {
  /** 1 for the first WebSocket the client opened, and so on. */
  readonly n: number;
  /** The client's WebSocket, at the relay. */
  readonly down: WebSocket;
  /** The relay's WebSocket to the server (none when the relay answered the hello itself). */
  readonly up: WebSocket | undefined;
  /** Frames are dropped both ways, counted here (a connection that is about to die, with messages in it). */
  swallow: boolean;
  readonly swallowed: { up: number; down: number };
}

/**
 * The server's WebSocket path, taken over: each WebSocket the client opens to
 * it is relayed, frame by frame (text as text, binary as binary), to the
 * server's own WebSocket endpoint, mounted at another path. `helloAnswer(n)`:
 * a frame sent instead of the server's answer to the n-th WebSocket's hello
 * (the connection then closes with 4002, as the server closes after an error
 * frame), or undefined to relay it.
 */
class FrameRelay {
  readonly conns: Relayed[] = [];
  readonly #wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  readonly #upstream: string;
  readonly #helloAnswer: (n: number) => string | undefined;

  constructor(upstream: string, helloAnswer: (n: number) => string | undefined) {
    this.#upstream = upstream;
    this.#helloAnswer = helloAnswer;
  }

  get last(): Relayed {
    const c = this.conns.at(-1);
    assert.ok(c !== undefined, 'a WebSocket at the relay');
    return c;
  }

  take(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#wss.handleUpgrade(req, socket, head, (down) => this.#relay(down));
  }

  #relay(down: WebSocket): void {
    down.on('error', () => {});
    const n = this.conns.length + 1;
    const answer = this.#helloAnswer(n);
    if (answer !== undefined) {
      this.conns.push({ n, down, up: undefined, swallow: false, swallowed: { up: 0, down: 0 } });
      down.once('message', () => {
        down.send(answer);
        down.close(4002, 'error');
      });
      return;
    }
    const up = new WebSocket(this.#upstream, { perMessageDeflate: false });
    up.on('error', () => {});
    const conn: Relayed = { n, down, up, swallow: false, swallowed: { up: 0, down: 0 } };
    this.conns.push(conn);
    const early: Array<[RawData, boolean]> = [];
    down.on('message', (data, isBinary) => {
      if (conn.swallow) {
        conn.swallowed.up++;
        return;
      }
      if (up.readyState === WebSocket.OPEN) up.send(data, { binary: isBinary });
      else early.push([data, isBinary]);
    });
    up.on('open', () => {
      for (const [data, isBinary] of early.splice(0)) up.send(data, { binary: isBinary });
    });
    up.on('message', (data, isBinary) => {
      if (conn.swallow) {
        conn.swallowed.down++;
        return;
      }
      if (down.readyState === WebSocket.OPEN) down.send(data, { binary: isBinary });
    });
    // Either end closing closes the other, with its code where one can be sent on.
    const closeOther = (other: WebSocket, code: number): void => {
      if (other.readyState === WebSocket.CLOSED || other.readyState === WebSocket.CLOSING) return;
      if (code === 1000 || (code >= 4000 && code <= 4999)) other.close(code);
      else other.terminate();
    };
    down.on('close', (code) => closeOther(up, code));
    up.on('close', (code) => closeOther(down, code));
  }

  close(): void {
    for (const c of this.conns) {
      c.down.terminate();
      c.up?.terminate();
    }
    this.#wss.close();
  }
}

/**
 * The rig's server with its WebSocket path relayed: the client's upgrades to
 * <base>/ws go to a FrameRelay, whose own go to the same HoldlineServer's
 * endpoint mounted at /upstream/ws. Closed after the test.
 */
function relayed(rig: Rig, helloAnswer: (n: number) => string | undefined = () => undefined): FrameRelay {
  const { server, hl, url } = rig.h;
  const base = new URL(url);
  const relay = new FrameRelay(`ws://${base.host}/upstream/ws`, helloAnswer);
  const upstream = hl.upgradeHandler({ path: '/upstream' });
  // attach()'s upgrade listener goes: this one decides.
  server.removeAllListeners('upgrade');
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (req.url === `${base.pathname}/ws`) return relay.take(req, socket, head);
    if (!upstream(req, socket, head)) socket.destroy();
  });
  rig.cleanup.add(() => relay.close());
  return relay;
}

const errorFrame = (code: string, text: string) => JSON.stringify({ error: { code, message: text } });

/** What the HTTP path makes of the same error body (as an answer to a poll): code, wireCode, reaction. */
function overHttp(body: string): { code: string; wireCode: string | undefined; reaction: string } {
  const e = answerError(400, body);
  return { code: e.code, wireCode: e.wireCode, reaction: reactionOf(e.code) };
}

/** Every known wire code whose reaction is 'retry'. */
const RETRY_CODES = (Object.keys(WIRE_REACTIONS) as WireErrorCode[]).filter((c) => WIRE_REACTIONS[c] === 'retry');

/**
 * On the WebSocket with `count` messages delivered each way; then the
 * WebSocket's frames are dropped both ways while `count` more are sent each
 * way (into it, and lost with it), the error frame comes, and `count` more
 * are sent each way on whatever carries the session next. Every message must
 * arrive exactly once, in order.
 */
async function errorMidStream(connected: Connected, relay: FrameRelay, frame: string, count: number): Promise<void> {
  const { c, w, server, session } = connected;
  await waitFor(() => c.transport === 'websocket', 10_000, 'the client on a WebSocket');
  for (let i = 0; i < count; i++) {
    await c.send(message('up', i));
    await session.send(message('down', i));
  }
  await waitFor(() => server.got.length === count && w.got.length === count, 10_000, 'the first messages delivered on the WebSocket');
  const conn = relay.last;
  conn.swallow = true;
  for (let i = count; i < 2 * count; i++) {
    await c.send(message('up', i));
    await session.send(message('down', i));
  }
  // Written into the WebSocket, both ways, and dropped there.
  await waitFor(() => conn.swallowed.up > 0 && conn.swallowed.down > 0, 10_000, 'messages in the WebSocket both ways');
  assert.equal(c.transport, 'websocket', 'still on the WebSocket before the error frame');
  conn.down.send(frame);
  conn.down.close(4002, 'error');
  await waitFor(() => c.transport === 'polling', 10_000, 'down to polling');
  for (let i = 2 * count; i < 3 * count; i++) {
    await c.send(message('up', i));
    await session.send(message('down', i));
  }
  await waitFor(() => server.got.length >= 3 * count && w.got.length >= 3 * count, 10_000, 'everything delivered');
  await sleep(50);
  assert.deepEqual(show(server.got), expected('up', 3 * count), 'client to server: exactly once, in order');
  assert.deepEqual(show(w.got), expected('down', 3 * count), 'server to client: exactly once, in order');
}

/** The client's 'reconnecting', 'reset' and 'close' events (none of them is what a retry on a WebSocket does). */
function others(connected: Connected): { reconnecting: ReconnectingEvent[]; resets: number; closes: number } {
  const noted = { reconnecting: [] as ReconnectingEvent[], resets: 0, closes: 0 };
  connected.c.on('reconnecting', (e) => noted.reconnecting.push(e));
  connected.c.on('reset', () => noted.resets++);
  connected.c.on('close', () => noted.closes++);
  return noted;
}

/** A retry on a WebSocket: the same session goes on, open, with nothing reported beyond the switch. */
function wentOn(connected: Connected, sid: string | undefined, noted: ReturnType<typeof others>): void {
  const { c, w } = connected;
  assert.equal(c.sessionId, sid);
  assert.equal(c.state, 'open');
  assert.equal(c.stats.resets, 0);
  assert.deepEqual(noted, { reconnecting: [], resets: 0, closes: 0 });
  assert.deepEqual(w.errors, []);
}

describe('client on a WebSocket: error frames', { timeout: 60_000 }, () => {
  it('an error code this version does not know, mid-stream: bad_response with the code in wireCode, the HTTP reaction (retry): down to polling, nothing lost, up again later', async (t) => {
    const rig = await serve(t);
    const relay = relayed(rig);
    const connected = await connect(rig);
    const { c, w } = connected;
    const noted = others(connected);
    const sid = c.sessionId;
    const frame = errorFrame('brand_new_code', 'a code from a newer server');
    // The reference: the HTTP path's answer to the same body.
    const http = overHttp(frame);
    assert.deepEqual(http, { code: 'bad_response', wireCode: 'brand_new_code', reaction: 'retry' });

    await errorMidStream(connected, relay, frame, 10);

    const down = w.switches.find((s) => s.transport === 'polling');
    assert.ok(down !== undefined, `a move down: ${JSON.stringify(w.switches)}`);
    assert.equal(down.previous, 'websocket');
    const reason = down.reason;
    assert.ok(reason instanceof HoldlineError, 'the move down names the error frame');
    assert.equal(reason.code, http.code);
    assert.equal(reason.wireCode, http.wireCode);
    assert.equal(reactionOf(reason.code), http.reaction);
    assert.match(reason.message, /brand_new_code/);
    assert.match(reason.message, /a code from a newer server/);
    wentOn(connected, sid, noted);
    // Not a reason to stay off WebSockets: a new one after the back-off, and it carries the session.
    await waitFor(() => c.transport === 'websocket', 10_000, 'up again on a new WebSocket');
    assert.equal(relay.conns.length, 2);
    await connected.session.send('after');
    await waitFor(() => w.got.length === 31, 5_000, 'a message on the new WebSocket');
    assert.equal(w.got[30], 'after');
  });

  it("an unknown code in answer to the hello, with transports ['websocket']: a failed request as over HTTP ('reconnecting' with bad_response and the wireCode), then a new WebSocket; never a poll", async (t) => {
    const rig = await serve(t);
    const frame = errorFrame('brand_new_code', 'not now');
    // The first WebSocket's hello gets the error frame; the next ones are relayed.
    const relay = relayed(rig, (n) => (n === 1 ? frame : undefined));
    const reconnecting: ReconnectingEvent[] = [];
    const connected = await connect(rig, { transports: ['websocket'] });
    const { c, w, session } = connected;
    c.on('reconnecting', (e) => reconnecting.push(e));
    await waitFor(() => relay.conns.length >= 2 && c.state === 'open', 10_000, 'a second WebSocket, the client open again');
    await waitFor(() => reconnecting.length >= 1, 5_000, "'reconnecting'");
    assert.equal(reconnecting.length, 1, 'one failed request');
    const e = reconnecting[0]?.error;
    const http = overHttp(frame);
    assert.ok(e instanceof HoldlineError);
    assert.equal(e.code, http.code);
    assert.equal(e.wireCode, 'brand_new_code');
    assert.equal(reactionOf(e.code), 'retry');
    assert.match(e.message, /brand_new_code.*not now/);
    await c.send('up 0');
    await session.send('down 0');
    await waitFor(() => connected.server.got.length === 1 && w.got.length === 1, 5_000, 'both ways on the second WebSocket');
    assert.equal(c.transport, 'websocket');
    assert.equal(c.stats.polls, 0, 'never a poll');
    assert.equal(c.stats.resets, 0);
    assert.deepEqual(w.errors, []);
  });

  for (const code of RETRY_CODES) {
    it(`a known code whose reaction is retry (${code}), mid-stream: only the connection goes; the session goes on on polling with nothing lost`, async (t) => {
      const rig = await serve(t);
      const relay = relayed(rig);
      const connected = await connect(rig);
      const { c, w } = connected;
      const noted = others(connected);
      const sid = c.sessionId;
      await errorMidStream(connected, relay, errorFrame(code, `the server says ${code}`), 5);
      const down = w.switches.find((s) => s.transport === 'polling');
      assert.ok(down?.reason instanceof HoldlineError, `a move down naming the error: ${JSON.stringify(w.switches)}`);
      assert.equal(down.reason.code, code);
      assert.equal(down.reason.wireCode, undefined);
      assert.equal(down.reason.message, `the server says ${code}`);
      wentOn(connected, sid, noted);
      await waitFor(() => c.transport === 'websocket', 10_000, 'up again on a new WebSocket');
    });
  }

  it('there are retry codes to test above', () => {
    assert.ok(RETRY_CODES.includes('internal_error') && RETRY_CODES.includes('server_closing'), RETRY_CODES.join(', '));
  });
});
