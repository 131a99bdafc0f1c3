/**
 * The client on a WebSocket (PROTOCOL.md, "WebSocket") against a real
 * HoldlineServer, while the WebSocket holds: the move from polling after the
 * open, binary as binary frames and text as text frames (seen on the wire by
 * a byte-level tap) with no polls or HTTP sends meanwhile, stats.rttMs
 * measured on the WebSocket, and transports ['websocket']: no poll at all,
 * and a close frame that ends the client. An inbound batch is counted in
 * UTF-8 bytes against the client's cap on an answer.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HoldlineClient } from '../../client/index.js';
import { WebSocket } from 'ws';
import { decodeCompact, ENVELOPE_OVERHEAD } from '../../shared/index.js';
import { MAX_CONTROL_ANSWER_BYTES } from '../../client/limits.js';
import { collect, connect, exchange, expected, message, proxied, RECONNECT, serve, show, sleep, waitFor } from './helpers.js';
import { withTimeout } from '../helpers/server.js';
import { assertTestScheme, testTls, upgradesOverTls } from '../helpers/tls.js';

describe('client on a WebSocket', { timeout: 90_000 }, () => {
  it('moves to a WebSocket after the open; binary goes as binary frames both ways, text as text, no polls or sends meanwhile', async (t) => {
    const rig = await serve(t);
    // In the https run the proxy ends the client's TLS, reads the frames in the clear, and speaks TLS to the server.
    const overTls = upgradesOverTls(rig.h.server);
    const proxy = await proxied(rig, { record: true });
    const { c, w, server, session } = await connect(rig, {}, proxy);
    await waitFor(() => c.transport === 'websocket', 10_000, 'the client on a WebSocket');
    assert.deepEqual(w.switches, [{ transport: 'websocket', previous: 'polling' }]);
    const before = c.stats;

    const count = 60;
    for (let i = 0; i < count; i++) {
      await c.send(message('up', i));
      await session.send(message('down', i));
    }
    await waitFor(() => server.got.length === count && w.got.length === count, 10_000, 'both ways delivered');
    assert.deepEqual(show(server.got), expected('up', count));
    assert.deepEqual(show(w.got), expected('down', count));
    const after = c.stats;
    assert.equal(after.polls, before.polls, 'no poll while on the WebSocket');
    assert.equal(after.sendRequests, 0, 'no HTTP send at all');
    assert.equal(after.transportSwitches, 1);

    // On the wire: each binary message is one binary frame holding its bytes; no base64 JSON anywhere.
    await sleep(50);
    const binUp = proxy.up.frames.filter((f) => f.opcode === 2).map((f) => `bin:${f.payload.toString('hex')}`);
    const binDown = proxy.down.frames.filter((f) => f.opcode === 2).map((f) => `bin:${f.payload.toString('hex')}`);
    assert.deepEqual(binUp, expected('up', count).filter((m) => m.startsWith('bin:')));
    assert.deepEqual(binDown, expected('down', count).filter((m) => m.startsWith('bin:')));
    const texts = [...proxy.up.frames, ...proxy.down.frames].filter((f) => f.opcode === 1).map((f) => f.payload.toString('utf8'));
    // A batch of one text message is one compact frame ([ack,seq] and the text), client and server both reading them; else the text is a frame of its own.
    const messageTexts = texts.map((f) => decodeCompact(f)?.text ?? f);
    assert.ok(messageTexts.includes('up 1') && messageTexts.includes('down 1'), 'a text message is a text frame holding the text');
    assert.ok(texts.some((f) => decodeCompact(f) !== undefined), 'compact frames, both ends having said they read them');
    assert.deepEqual(texts.filter((s) => s.includes('"b"')), [], 'no base64 {"b":…} on the WebSocket');
    assert.equal(proxy.upgrades, 1);
    assertTestScheme(rig.h.url, 'the server');
    assert.deepEqual(overTls, [testTls()], testTls() ? 'the upgrade reached the server over TLS' : 'the upgrade came in the clear');
    assert.deepEqual(w.errors, []);
  });

  it('to a server whose answer to the hello does not say it reads compact frames, the client sends header frames only', async (t) => {
    // An older server: its {"ok":true,...} answer without "f". (Server and client share this process and `ws`.)
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (this: WebSocket, data: unknown, ...rest: unknown[]) {
      const older = typeof data === 'string' && data.startsWith('{"ok":true') ? data.replace(/,"f":1/, '') : data;
      return (send as (...a: unknown[]) => void).call(this, older, ...rest);
    } as typeof send;
    t.after(() => {
      WebSocket.prototype.send = send;
    });
    const rig = await serve(t);
    const proxy = await proxied(rig, { record: true });
    const connected = await connect(rig, {}, proxy);
    await waitFor(() => connected.c.transport === 'websocket', 10_000, 'the client on a WebSocket');
    await exchange(connected, 20, 'both ways delivered');
    assert.deepEqual(show(connected.server.got), expected('up', 20));
    await sleep(50);
    const up = proxy.up.frames.filter((f) => f.opcode === 1).map((f) => f.payload.toString('utf8'));
    assert.ok(up.includes('up 1'), 'a text message in a frame of its own');
    assert.deepEqual(up.filter((f) => decodeCompact(f) !== undefined), [], 'no compact frame to a server that did not say it reads them');
  });

  it('stats.rttMs is measured on the WebSocket (hello to ok, batch to its ack), with no HTTP send to time', async (t) => {
    // Not `connect`: this client has no listeners (an error goes to console.error).
    const { cleanup, h } = await serve(t);
    const server = collect(h);
    const c = new HoldlineClient(h.url, { reconnect: RECONNECT, transports: ['websocket'] });
    cleanup.add(() => c.close());
    await c.connect();
    await server.session;
    for (let i = 0; i < 10; i++) await c.send(`m ${i}`);
    await waitFor(() => server.got.length >= 10 && c.stats.messagesAcked >= 10, 10_000, 'sent and acknowledged');
    assert.equal(c.transport, 'websocket');
    assert.equal(c.stats.sendRequests, 0, 'nothing went over HTTP sends');
    assert.ok(c.stats.rttMs > 0, `rttMs measured on the WebSocket (got ${c.stats.rttMs})`);
    assert.ok(c.stats.rttMs < 10_000, `rttMs is a round trip in ms (got ${c.stats.rttMs})`);
  });

  it("transports ['websocket']: no poll after the open; a close frame ends the client as a poll's would", async (t) => {
    const rig = await serve(t);
    // In the https run (scripts/test-https.ts) the client's WebSocket is wss: its upgrade reached the server over TLS.
    const overTls = upgradesOverTls(rig.h.server);
    const connected = await connect(rig, { transports: ['websocket'] });
    const { c, w, session } = connected;
    await exchange(connected, 20, 'both ways');
    assert.deepEqual(show(w.got), expected('down', 20));
    assert.equal(c.transport, 'websocket');
    assertTestScheme(rig.h.url, 'the server');
    assert.deepEqual(overTls, [testTls()], testTls() ? "the client's one upgrade came over TLS" : "the client's one upgrade came in the clear");
    assert.equal(c.stats.polls, 0);
    assert.equal(c.stats.sendRequests, 0);
    const closed = new Promise<string>((resolve) => c.once('close', (reason) => resolve(reason.code)));
    session.close({ code: 'server_closed', message: 'bye' });
    assert.equal(await withTimeout(closed, 5_000, 'close'), 'server_closed');
    assert.equal(c.state, 'closed');
  });

  it('an inbound batch is counted in UTF-8 bytes against the cap on an answer: under it in bytes, delivered; under it in UTF-16 units and over it in bytes, it is bad_response (the reason of its transport event) and none of it is delivered', async (t) => {
    // maxBatchBytes and maxMessageBytes small: the cap is MAX_CONTROL_ANSWER_BYTES plus the envelope (client/limits.ts).
    const rig = await serve(t, { maxMessageBytes: 1_000, maxBatchBytes: 64_000 });
    const cap = MAX_CONTROL_ANSWER_BYTES + ENVELOPE_OVERHEAD;
    // A hostile server: the two messages of one batch, each a frame of its own, become 2-byte characters, each
    // frame under the cap (and ws's maxPayload) in bytes, both together under it in UTF-16 units, over it in bytes.
    const inflated = 'é'.repeat(Math.ceil(cap * 0.35));
    assert.ok(2 * inflated.length < cap && Buffer.byteLength(inflated) < cap && 2 * Buffer.byteLength(inflated) > cap);
    // And a batch under the cap in bytes that is over it at 3 bytes a character (the client's first, cheap bound).
    const fits = 'é'.repeat(Math.floor(cap * 0.2));
    assert.ok(2 * Buffer.byteLength(fits) < cap && 2 * 3 * fits.length > cap);
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (this: WebSocket, data: unknown, ...rest: unknown[]) {
      const swapped = data === 'big 1' || data === 'big 2' ? inflated : data === 'fits 1' || data === 'fits 2' ? fits : data;
      return (send as (...a: unknown[]) => void).call(this, swapped, ...rest);
    } as typeof send;
    t.after(() => {
      WebSocket.prototype.send = send;
    });
    const { c, w, session } = await connect(rig);
    await waitFor(() => c.transport === 'websocket', 10_000, 'the client on a WebSocket');
    // The turn's first send goes at once, on its own: the two after it are one batch.
    void session.send('lead 1');
    void session.send('fits 1');
    await session.send('fits 2');
    await waitFor(() => w.got.length >= 3, 10_000, 'the batch that fits delivered');
    assert.deepEqual(w.got.map((m) => m === fits), [false, true, true], 'delivered as the WebSocket brought it');
    assert.equal(w.switches.length, 1, 'still on the WebSocket');
    void session.send('lead 2');
    void session.send('big 1');
    await session.send('big 2');
    // Each WebSocket gets the inflated batch and is dropped; polling carries the messages as they are.
    await waitFor(() => w.got.length >= 6, 20_000, 'both messages delivered');
    const shown = w.got.slice(3).map((m) => (typeof m === 'string' && m.length > 20 ? `a text of ${m.length} characters` : m));
    assert.deepEqual(shown, ['lead 2', 'big 1', 'big 2']);
    const [up, down] = w.switches;
    assert.deepEqual(up, { transport: 'websocket', previous: 'polling' });
    assert.equal(down?.transport, 'polling');
    assert.equal(down.reason?.code, 'bad_response');
    assert.match(down.reason.message, /an inbound batch over \d+ bytes/);
  });
});
