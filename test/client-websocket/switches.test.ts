/**
 * The client losing its WebSocket mid-stream against a real HoldlineServer
 * (PROTOCOL.md, "WebSocket"): exactly once and in order across forced
 * switches down to polling and up again, a proxy that kills upgraded
 * connections after the 101 (down with nothing lost, then up again once one
 * lives), and a WebSocket that goes silent (dropped after its heartbeat plus
 * grace; what was sent into it comes again on polling).
 */
import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { describe, it } from 'node:test';
import { connect, expected, message, proxied, RECONNECT, serve, show, sleep, waitFor } from './helpers.js';
import { withTimeout } from '../helpers/server.js';
import { testTls, upgradesOverTls } from '../helpers/tls.js';

describe('client on a WebSocket', { timeout: 90_000 }, () => {
  it('exactly once, in order, 20,000 messages each way (text and binary) across forced switches down and up mid-stream', async (t) => {
    const rig = await serve(t);
    // In the https run (scripts/test-https.ts) every WebSocket, the first and each one after a downgrade, is wss.
    const overTls = upgradesOverTls(rig.h.server);
    // The server-side sockets of WebSocket upgrades: destroying one is the downgrade.
    const upgraded = new Set<Duplex>();
    rig.h.server.on('upgrade', (_req, socket: Duplex) => {
      upgraded.add(socket);
      socket.on('close', () => upgraded.delete(socket));
    });
    const { c, w, server, session } = await connect(rig);

    const COUNT = 20_000;
    const CHUNK = 500;
    const KILLS = 3;
    let kills = 0;
    let upSince = 0;
    c.on('transport', (e) => {
      if (e.transport === 'websocket') upSince = Date.now();
    });
    // Each sender waits at its gates until the switcher driver has killed the WebSocket that many times.
    const gate = async (i: number) => {
      const due = Math.floor(i / (COUNT / (KILLS + 1)));
      if (i % CHUNK === 0 && due > 0) await waitFor(() => kills >= Math.min(due, KILLS), 30_000, `kill ${due}`);
    };
    const driver = (async () => {
      while (kills < KILLS) {
        await waitFor(() => c.transport === 'websocket' && Date.now() - upSince > RECONNECT.maxDelayMs + 50, 30_000, 'on a WebSocket a while');
        // Mid-stream: both sides have sent some and not all.
        await waitFor(() => server.got.length > kills * 1000 && w.got.length > kills * 1000, 30_000, 'traffic before the kill');
        for (const s of upgraded) s.destroy();
        kills++;
        await waitFor(() => c.transport === 'polling', 10_000, 'back on polling');
      }
    })();
    const up = (async () => {
      for (let i = 0; i < COUNT; i++) {
        await gate(i);
        await c.send(message('up', i));
      }
    })();
    const down = (async () => {
      for (let i = 0; i < COUNT; i++) {
        await gate(i);
        await session.send(message('down', i));
      }
    })();
    await withTimeout(Promise.all([up, down, driver]), 80_000, 'the exchange');
    await waitFor(() => server.got.length >= COUNT && w.got.length >= COUNT, 30_000, 'everything delivered');
    await waitFor(() => c.transport === 'websocket', 10_000, 'up again at the end');
    await sleep(100);
    assert.deepEqual(show(server.got), expected('up', COUNT), 'client to server: exactly once, in order');
    assert.deepEqual(show(w.got), expected('down', COUNT), 'server to client: exactly once, in order');
    assert.equal(kills, KILLS);
    assert.ok(overTls.length >= KILLS + 1 && overTls.every((tls) => tls === testTls()), `upgrades over TLS: ${JSON.stringify(overTls)} (${testTls() ? 'TLS' : 'plain'} mode)`);
    const names = w.switches.map((s) => s.transport);
    assert.ok(names.length >= 2 * KILLS + 1, `switches: ${names.join(' ')}`);
    assert.deepEqual(names.slice(0, 2 * KILLS + 1), ['websocket', 'polling', 'websocket', 'polling', 'websocket', 'polling', 'websocket']);
    assert.equal(c.stats.transportSwitches, names.length);
    assert.equal(c.stats.resets, 0);
    assert.equal(c.state, 'open');
    assert.deepEqual(w.errors, []);
  });

  it('a proxy that kills upgraded connections after the 101: down with nothing lost, then up again once it lets one live', async (t) => {
    const rig = await serve(t);
    const overTls = upgradesOverTls(rig.h.server);
    const proxy = await proxied(rig, { killAfterMs: 250, killFirst: 2 });
    const { c, w, server, session } = await connect(rig, {}, proxy);
    const COUNT = 3_000;
    // Paced so that the stream spans both kills and the last upgrade.
    const pace = (i: number) => (i % 100 === 99 ? sleep(10) : undefined);
    const up = (async () => {
      for (let i = 0; i < COUNT; i++) {
        await c.send(message('up', i));
        await pace(i);
      }
    })();
    const down = (async () => {
      for (let i = 0; i < COUNT; i++) {
        await session.send(message('down', i));
        await pace(i);
      }
    })();
    await withTimeout(Promise.all([up, down]), 60_000, 'the exchange');
    await waitFor(() => proxy.killed === 2 && proxy.upgrades >= 3 && c.transport === 'websocket', 20_000, 'two kills, then a WebSocket that lives');
    await waitFor(() => server.got.length >= COUNT && w.got.length >= COUNT, 20_000, 'everything delivered');
    await sleep(100);
    assert.deepEqual(show(server.got), expected('up', COUNT));
    assert.deepEqual(show(w.got), expected('down', COUNT));
    assert.deepEqual(w.switches.map((s) => s.transport).slice(0, 5), ['websocket', 'polling', 'websocket', 'polling', 'websocket']);
    assert.ok(overTls.length >= 3 && overTls.every((tls) => tls === testTls()), `upgrades over TLS: ${JSON.stringify(overTls)} (${testTls() ? 'TLS' : 'plain'} mode)`);
    assert.deepEqual(w.errors, []);
    assert.equal(c.state, 'open');
  });

  it('a WebSocket that goes silent (a black-holing middlebox) is dropped after its heartbeat plus grace; polling carries on', async (t) => {
    const rig = await serve(t, { pollTimeoutMs: 1_000 });
    // Forward everything, except that the first upgraded connection stops carrying anything 300 ms after the 101.
    const proxy = await proxied(rig, { muteFirstAfterMs: 300 });
    const { c, w, server, session } = await connect(rig, { reconnect: { minDelayMs: 20, maxDelayMs: 5_000 }, pollGraceMs: 500 }, proxy);
    await waitFor(() => c.transport === 'websocket', 5_000, 'up');
    await sleep(400);
    // Sent into the black hole: it must come again on polling.
    await c.send('into the void');
    await session.send('out of the void');
    const start = Date.now();
    await waitFor(() => c.transport === 'polling', 5_000, 'dropped for silence');
    const took = Date.now() - start;
    assert.ok(took < 4_000, `noticed within the heartbeat (1 s) plus grace (0.5 s), give or take: ${took} ms`);
    await waitFor(() => server.got.length >= 1 && w.got.length >= 1, 5_000, 'both delivered on polling');
    assert.deepEqual(server.got, ['into the void']);
    assert.deepEqual(w.got, ['out of the void']);
    assert.deepEqual(w.errors, []);
  });
});
