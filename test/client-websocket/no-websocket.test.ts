/**
 * When the client does not use a WebSocket, against a real HoldlineServer
 * (PROTOCOL.md, "WebSocket"): a proxy that kills every upgraded connection at
 * once (given up after 3 failures), a WebSocket path that fails its first
 * handshake with no status (one try only), transports ['polling'] (never
 * tried), and a server without WebSockets (a 404 to the upgrade). In each,
 * the session carries on on polling, both ways, with no error.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect, exchange, expected, proxied, serve, show, sleep, waitFor } from './helpers.js';
import { testTls, upgradesOverTls } from '../helpers/tls.js';

describe('client on a WebSocket', { timeout: 90_000 }, () => {
  it('a proxy that kills every upgraded connection at once: after 3 failures the session stays on polling', async (t) => {
    const rig = await serve(t);
    const overTls = upgradesOverTls(rig.h.server);
    const proxy = await proxied(rig, { killAfterMs: 0 });
    const connected = await connect(rig, {}, proxy);
    const { c, w, server } = connected;
    await waitFor(() => proxy.upgrades >= 3, 10_000, 'three upgrades');
    // Long enough for several more back-off delays (maxDelayMs 150 ms).
    await sleep(800);
    assert.equal(proxy.upgrades, 3, 'no fourth WebSocket');
    assert.deepEqual(overTls, [testTls(), testTls(), testTls()], testTls() ? 'the upgrades reached the server over TLS' : 'the upgrades came in the clear');
    assert.equal(c.transport, 'polling');
    await exchange(connected, 30, 'both ways on polling');
    assert.deepEqual(show(server.got), expected('up', 30));
    assert.deepEqual(show(w.got), expected('down', 30));
    assert.deepEqual(w.errors, []);
    assert.equal(c.state, 'open');
  });

  it('a WebSocket path that fails its first handshake with no status (as a browser sees a 404): one try only, the session stays on polling, no error', async (t) => {
    const rig = await serve(t);
    const proxy = await proxied(rig, { refuseUpgrades: true });
    const connected = await connect(rig, {}, proxy);
    const { c, w, server } = connected;
    await waitFor(() => proxy.upgradeRequests >= 1, 5_000, 'the upgrade tried');
    // Long enough for several back-off delays (maxDelayMs 150 ms): no second try.
    await sleep(800);
    assert.equal(proxy.upgradeRequests, 1, 'a path that never opened a WebSocket is not tried again this session');
    await exchange(connected, 20, 'both ways on polling');
    assert.deepEqual(show(server.got), expected('up', 20));
    assert.deepEqual(show(w.got), expected('down', 20));
    assert.equal(c.transport, 'polling');
    assert.equal(c.state, 'open');
    assert.deepEqual(w.errors, []);
    assert.deepEqual(w.switches, []);
  });

  it("transports ['polling'] never opens a WebSocket", async (t) => {
    const rig = await serve(t);
    let upgrades = 0;
    rig.h.server.on('upgrade', () => upgrades++);
    const connected = await connect(rig, { transports: ['polling'] });
    const { c, w } = connected;
    await exchange(connected, 20, 'both ways');
    await sleep(300);
    assert.equal(upgrades, 0);
    assert.equal(c.transport, 'polling');
    assert.deepEqual(w.switches, []);
    assert.ok(c.stats.polls > 0);
  });

  it("a server without WebSockets (transports ['polling'], 404 to the upgrade): the client stays on polling, no error", async (t) => {
    const rig = await serve(t, { transports: ['polling'] });
    // Counted by a proxy: another 'upgrade' listener on the server would make it leave upgrades to that one.
    const proxy = await proxied(rig, {});
    const connected = await connect(rig, {}, proxy);
    const { c, w } = connected;
    await waitFor(() => proxy.upgradeRequests >= 1, 5_000, 'the upgrade tried');
    await exchange(connected, 20, 'both ways');
    await sleep(500);
    assert.equal(proxy.upgradeRequests, 1, 'a 404 is final for the session: no retries');
    assert.equal(proxy.upgrades, 0);
    assert.equal(c.transport, 'polling');
    assert.equal(c.state, 'open');
    assert.deepEqual(w.errors, []);
    assert.deepEqual(w.switches, []);
  });
});
