/**
 * The client's `transports` option, in order of preference (PROTOCOL.md,
 * "WebSocket", "Switching"; client/transport-switcher.ts; README's option
 * table), seen from the server: every request and upgrade it gets, in order.
 *
 * - ['websocket', 'polling']: the WebSocket right after /open, no poll
 *   before it (nor after it, while it holds), no 'transport' event (the
 *   session starts where the option says).
 * - ['websocket', 'polling'] and an upgrade answered 404 (a front without
 *   WebSockets): polling at once after the one upgrade, never another
 *   upgrade this session, the session working, one 'transport' event down to
 *   polling naming the 404.
 * - ['websocket'] alone and an upgrade answered 404: never a poll; each
 *   failed WebSocket is a failed request ('reconnecting' with the 404,
 *   back-off, a new WebSocket), and the client stays in 'reconnecting',
 *   neither closing nor reporting an 'error'.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { describe, it } from 'node:test';
import type { ReconnectingEvent } from '../../client/index.js';
import { connect, exchange, expected, serve, show, sleep, waitFor, type Rig } from './helpers.js';

/**
 * What reaches the rig's server, in order: `POST <path>` per request,
 * `upgrade <path>` per upgrade. `answer404`: this listener answers every
 * upgrade 404 (the rig's server offers no WebSockets: attach() leaves
 * upgrades to other listeners once there are any).
 */
function logged(rig: Rig, answer404 = false): string[] {
  const log: string[] = [];
  const { server } = rig.h;
  server.prependListener('request', (req: IncomingMessage) => log.push(`${req.method ?? '?'} ${req.url ?? '?'}`));
  server.prependListener('upgrade', (req: IncomingMessage, socket: Duplex) => {
    log.push(`upgrade ${req.url ?? '?'}`);
    if (answer404) socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  return log;
}

const polls = (log: readonly string[]) => log.filter((l) => l.endsWith('/poll'));
const upgrades = (log: readonly string[]) => log.filter((l) => l.startsWith('upgrade '));

describe("client transports: ['websocket', 'polling'] and ['websocket']", { timeout: 60_000 }, () => {
  it("['websocket', 'polling']: the WebSocket right after the open, no poll before it (or at all while it holds)", async (t) => {
    const rig = await serve(t);
    const log = logged(rig);
    const connected = await connect(rig, { transports: ['websocket', 'polling'] });
    const { c, w, server } = connected;
    await waitFor(() => upgrades(log).length >= 1, 5_000, 'the upgrade');
    assert.deepEqual(log, ['POST /holdline/open', 'upgrade /holdline/ws'], 'the upgrade is the first thing after the open');
    await exchange(connected, 20, 'both ways');
    await sleep(100);
    assert.deepEqual(show(server.got), expected('up', 20));
    assert.deepEqual(show(w.got), expected('down', 20));
    assert.deepEqual(log, ['POST /holdline/open', 'upgrade /holdline/ws'], 'no poll and no HTTP send, ever');
    assert.equal(c.transport, 'websocket');
    assert.equal(c.stats.polls, 0);
    assert.equal(c.stats.sendRequests, 0);
    assert.deepEqual(w.switches, [], 'it started on the WebSocket: no switch');
    assert.deepEqual(w.errors, []);
  });

  it("['websocket', 'polling'] and an upgrade answered 404: polling at once after the one upgrade, which is never tried again; the session works", async (t) => {
    const rig = await serve(t, { transports: ['polling'] });
    const log = logged(rig, true);
    const connected = await connect(rig, { transports: ['websocket', 'polling'] });
    const { c, w, server } = connected;
    await exchange(connected, 20, 'both ways');
    // Several back-off delays (maxDelayMs 150 ms): no second upgrade.
    await sleep(600);
    assert.deepEqual(show(server.got), expected('up', 20));
    assert.deepEqual(show(w.got), expected('down', 20));
    assert.deepEqual(log.slice(0, 2), ['POST /holdline/open', 'upgrade /holdline/ws'], 'no poll before the upgrade failed');
    assert.equal(upgrades(log).length, 1, 'a 404 is final for the session');
    assert.ok(polls(log).length > 0 && log.indexOf(polls(log)[0] ?? '') > 1, 'then polling');
    assert.equal(c.transport, 'polling');
    assert.equal(c.state, 'open');
    assert.equal(w.switches.length, 1, JSON.stringify(w.switches));
    const [down] = w.switches;
    assert.equal(down?.transport, 'polling');
    assert.equal(down.previous, 'websocket');
    assert.equal(down.reason?.status, 404);
    assert.deepEqual(w.errors, []);
  });

  it("['websocket'] alone and an upgrade answered 404: never a poll; 'reconnecting' with the 404, back-off, a new WebSocket, again and again; no close, no 'error'", async (t) => {
    const rig = await serve(t, { transports: ['polling'] });
    const log = logged(rig, true);
    const connected = await connect(rig, { transports: ['websocket'] });
    const { c, w } = connected;
    const reconnecting: ReconnectingEvent[] = [];
    let closes = 0;
    c.on('reconnecting', (e) => reconnecting.push(e));
    c.on('close', () => closes++);
    await waitFor(() => upgrades(log).length >= 4, 10_000, () => `four upgrades: ${JSON.stringify(log)}`);
    await waitFor(() => reconnecting.length >= 3, 5_000, "three 'reconnecting'");
    assert.equal(log[0], 'POST /holdline/open');
    assert.deepEqual(polls(log), [], 'never a poll');
    assert.deepEqual(log.slice(1).filter((l) => !l.startsWith('upgrade ')), [], 'after the open, upgrades only');
    assert.equal(c.stats.polls, 0);
    assert.equal(c.state, 'reconnecting');
    assert.equal(c.transport, 'websocket');
    for (const e of reconnecting) {
      assert.equal(e.error.code, 'network_error');
      assert.equal(e.error.status, 404);
    }
    // The retry back-off: attempts counted up, delays within reconnect (20-150 ms).
    assert.deepEqual(reconnecting.slice(0, 3).map((e) => e.attempt), [1, 2, 3]);
    assert.ok(reconnecting.every((e) => e.delayMs <= 150), JSON.stringify(reconnecting.map((e) => e.delayMs)));
    assert.equal(closes, 0);
    assert.deepEqual(w.errors, []);
    assert.deepEqual(w.switches, []);
  });
});
