/**
 * HoldlineTabClient with the real client against a real server on 127.0.0.1,
 * tabs sharing one BroadcastChannel and a FIFO lock manager standing in for
 * navigator.locks: several tabs share one session and one client, every
 * message goes out once, in order per tab, and is confirmed; incoming
 * messages reach every tab once; when the leader closes mid-flight another
 * tab resumes the same session, exactly once both ways; a tab taking over
 * while open emits 'reconnecting' before 'leader'; a server restart resets the
 * shared session for every tab and lists what was lost exactly.
 */
import { describe, it, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoldlineServer, type Session } from '../server/index.js';
import { HoldlineClient as NodeClient } from './index.js';
import type { HoldlineTabClient } from './tab-channel.js';
import type { Payload } from '../shared/index.js';
import { FakeLocks } from '../test/helpers/fake-locks.js';
import { closeTabs, tabGroup } from '../test/helpers/tabs.js';
import { waitFor } from '../test/helpers/wait.js';

afterEach(closeTabs);

/** FakeLocks whose holder can crash: its lock goes to the next in line, as a browser frees a crashed tab's. */
class CrashableLocks extends FakeLocks {
  readonly #held: Array<() => void> = [];

  override request(name: string, options: { signal?: AbortSignal }, callback: (lock: unknown) => Promise<void>): Promise<unknown> {
    return super.request(name, options, (lock) => new Promise<void>((resolve, reject) => {
      this.#held.push(resolve);
      callback(lock).then(resolve, reject);
    }));
  }

  crashHolder(): void {
    this.#held.shift()?.();
  }
}

describe('HoldlineTabClient with the real client and server', () => {
  const received: string[] = [];
  const sessions: Session[] = [];
  const hl = new HoldlineServer({ pollTimeoutMs: 1_000 });
  hl.on('session', (s) => {
    sessions.push(s);
    s.on('message', (d) => {
      received.push(String(d));
      if (String(d).startsWith('echo:')) void s.send(`echoed ${String(d)}`);
    });
  });
  const server = http.createServer();
  hl.attach(server, { path: '/holdline' });
  let url = '';
  const clients: NodeClient[] = [];
  const createClient = (u: string) => {
    const c = new NodeClient(u, { reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
    clients.push(c);
    return c;
  };

  after(async () => {
    await closeTabs();
    await hl.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('three tabs open one session; every message arrives once, in order per tab, and is confirmed', async () => {
    if (!server.listening) await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/holdline`;
    const before = sessions.length;
    const clientsBefore = clients.length;
    const tab = tabGroup(url, createClient);
    const [a, b, c] = [tab(), tab(), tab()];
    await Promise.all([a.connect(), b.connect(), c.connect()]);
    assert.equal(sessions.length - before, 1, 'one session for three tabs');
    assert.equal(clients.length - clientsBefore, 1, 'one client for three tabs');
    assert.deepEqual([a.role, b.role, c.role], ['leader', 'follower', 'follower']);
    assert.equal(b.sessionId, a.sessionId);
    assert.equal(c.sessionId, a.sessionId);

    received.length = 0;
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 30; i++) for (const [name, t] of [['a', a], ['b', b], ['c', c]] as const) sends.push(t.send(`${name}${i}`));
    await Promise.all(sends);
    await waitFor(() => received.length === 90, 5_000, '90 messages at the server');
    for (const name of ['a', 'b', 'c']) {
      assert.deepEqual(received.filter((m) => m[0] === name), Array.from({ length: 30 }, (_, i) => `${name}${i}`));
    }
    await waitFor(() => [a, b, c].every((t) => t.bufferedAmount === 0 && t.stats.unconfirmed === 0), 5_000, 'every tab confirmed');
    assert.deepEqual([a.stats.messagesSent, b.stats.messagesSent, c.stats.messagesSent], [30, 30, 30]);
    // The leader knows who would take its session over; a tab that closes is no longer counted.
    assert.deepEqual([a.otherTabs, b.otherTabs, c.otherTabs], [2, 0, 0]);
    await c.close();
    await waitFor(() => a.otherTabs === 1, 5_000, 'the leader forgets the closed tab');
  });

  it('relays incoming messages to every tab once', async () => {
    const tab = tabGroup(url, createClient);
    const [a, b, c] = [tab(), tab(), tab()];
    await Promise.all([a.connect(), b.connect(), c.connect()]);
    const got = new Map<HoldlineTabClient, string[]>([[a, []], [b, []], [c, []]]);
    for (const t of [a, b, c]) t.on('message', (d: Payload) => got.get(t)?.push(String(d)));
    await b.send('echo:1');
    await c.send('echo:2');
    await waitFor(() => [...got.values()].every((l) => l.length === 2), 5_000, 'both echoes on every tab');
    await sleep(50);
    for (const l of got.values()) assert.deepEqual(l.sort(), ['echoed echo:1', 'echoed echo:2']);
    assert.equal(a.stats.messagesReceived, 2);
  });

  it('the leader closing mid-flight: another tab resumes the SAME session, exactly once both ways', async () => {
    const tab = tabGroup(url, createClient);
    const [a, b, c] = [tab(), tab(), tab()];
    await Promise.all([a.connect(), b.connect(), c.connect()]);
    const first = a.sessionId;
    const session = sessions[sessions.length - 1];
    assert.ok(session !== undefined && session.id === first);
    let sessionClosed = false;
    session.on('close', () => (sessionClosed = true));
    const resets: string[] = [];
    const leaders: string[] = [];
    const got = new Map<HoldlineTabClient, string[]>([[b, []], [c, []]]);
    for (const t of [b, c]) {
      t.on('reset', (e) => resets.push(`${e.previousSessionId}->${e.sessionId}:${e.lost.length}`));
      t.on('leader', (e) => leaders.push(`${e.self ? 'self' : 'other'}:${e.sessionId ?? '?'}`));
      t.on('message', (d: Payload) => got.get(t)?.push(String(d)));
    }
    received.length = 0;
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      sends.push(b.send(`b${i}`), c.send(`c${i}`));
      void session.send(`down${i}`).catch(() => undefined);
      if (i === 10) void a.close();
      if (i % 5 === 0) await sleep(5);
    }
    await Promise.all(sends);
    await waitFor(() => b.role === 'leader' || c.role === 'leader', 5_000, 'a new leader');
    await waitFor(() => b.state === 'open' && c.state === 'open', 5_000, 'open again');
    assert.equal(b.sessionId, first, 'the same session goes on');
    assert.equal(c.sessionId, first);
    await waitFor(() => b.stats.unconfirmed === 0 && c.stats.unconfirmed === 0, 10_000, 'everything confirmed');
    await waitFor(() => [...got.values()].every((l) => l.length >= 40), 10_000, 'every server message on both tabs').catch((e: unknown) => {
      throw new Error(`${String(e)}: ${JSON.stringify([...got.values()])} (leader: ${b.role === 'leader' ? 'b' : 'c'})`);
    });
    await sleep(100);
    for (const name of ['b', 'c']) {
      // Exactly once, in order: the server's dedupe drops what the new leader sent again.
      assert.deepEqual(received.filter((m) => m[0] === name), Array.from({ length: 40 }, (_, i) => `${name}${i}`));
    }
    for (const l of got.values()) assert.deepEqual(l, Array.from({ length: 40 }, (_, i) => `down${i}`));
    assert.deepEqual(resets, [], 'no reset');
    assert.equal(sessionClosed, false, 'the server session was never closed');
    assert.ok(leaders.length >= 2 && leaders.every((l) => l.endsWith(`:${first ?? ''}`)), leaders.join(', '));
  });

  it("a tab that takes over while open emits 'reconnecting' before 'leader', so a page showing the latest event ends on the leader", async () => {
    // The browser frees a crashed tab's lock without a word on the channel: b takes over while still open.
    const locks = new CrashableLocks();
    const tab = tabGroup(url, createClient, locks);
    const [a, b] = [tab(), tab()];
    await Promise.all([a.connect(), b.connect()]);
    assert.equal(a.role, 'leader');
    const events: string[] = [];
    b.on('reconnecting', () => events.push('reconnecting'));
    b.on('leader', (e) => events.push(e.self ? 'leader:self' : 'leader:other'));
    locks.crashHolder();
    await waitFor(() => b.role === 'leader', 5_000, 'b takes over');
    assert.deepEqual(events, ['reconnecting', 'leader:self']);
  });

  it('a server restart resets the shared session; every tab hears of it, and what is lost is listed exactly', async () => {
    const tab = tabGroup(url, createClient);
    const [a, b] = [tab(), tab()];
    await Promise.all([a.connect(), b.connect()]);
    const first = a.sessionId;
    const resets: Array<[string, string]> = [];
    const lostB: Payload[] = [];
    for (const t of [a, b]) t.on('reset', (e) => resets.push([e.previousSessionId, e.reason.code]));
    b.on('reset', (e) => lostB.push(...e.lost));
    // The session disappears under the client (as after a restart with an in-memory store).
    sessions.find((s) => s.id === first)?.close({ code: 'server_shutdown', message: 'restart' });
    received.length = 0;
    for (let i = 0; i < 10; i++) await b.send(`b${i}`);
    await waitFor(() => resets.length === 2, 10_000, 'both reset');
    await waitFor(() => a.state === 'open' && b.state === 'open', 5_000, 'open again');
    await waitFor(() => b.stats.unconfirmed === 0, 10_000, 'confirmed');
    // Each message either reached the new session once or is listed lost (handed to the old one, never acknowledged).
    assert.deepEqual([...lostB.map(String), ...received].sort(), Array.from({ length: 10 }, (_, i) => `b${i}`).sort());
    assert.deepEqual(received, Array.from({ length: 10 }, (_, i) => `b${i}`).slice(lostB.length));
    // The poll hears 'server_shutdown', or a send hears 'session_unknown' first.
    assert.equal(resets.length, 2);
    const [resetA, resetB] = resets;
    assert.ok(resetA !== undefined && resetB !== undefined);
    assert.deepEqual(resetA, resetB);
    assert.equal(resetA[0], first);
    assert.match(resetA[1], /^(server_shutdown|session_unknown)$/);
    assert.notEqual(a.sessionId, first);
  });
});
