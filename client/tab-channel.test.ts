// HoldlineTabClient in Node: real BroadcastChannels (Node has them), a small
// FIFO lock manager standing in for navigator.locks, and either the real
// client against a real server, or a scripted client for the cases a real
// server cannot produce on demand.
import { describe, it, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoldlineServer, type Session } from '../server/index.js';
import { HoldlineClient as NodeClient } from './index.js';
import { HoldlineTabClient, type HoldlineTabClientOptions, type TabCoreClient } from './tab-channel.js';
import { HoldlineError, TypedEmitter, payloadBytes, type CloseReason, type Payload } from '../shared/index.js';
import type { ClientEvents, ClientState, ClientStats } from './holdline-client.js';
import { isBusMessage } from './tabs/messages.js';
import { FakeLocks } from '../test/helpers/fake-locks.js';

async function waitFor(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

let channelSeq = 0;
const toClose: HoldlineTabClient[] = [];

afterEach(async () => {
  await Promise.all(toClose.splice(0).map((t) => t.close()));
});

/** A maker of tabs that share one channel and one lock manager, as the tabs of one origin do. */
function tabGroup(url: string, createClient: (url: string) => TabCoreClient, locks = new FakeLocks()): () => HoldlineTabClient {
  const channelName = `test-${process.pid}-${++channelSeq}`;
  return () => {
    const t = new HoldlineTabClient(url, { channelName, locks, createClient: (u) => createClient(u) });
    toClose.push(t);
    return t;
  };
}

/** The first element of `list`, failing the test if there is none. */
function firstOf<T>(list: readonly T[], what: string): T {
  const value = list[0];
  assert.ok(value !== undefined, `no ${what}`);
  return value;
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
    await Promise.all(toClose.splice(0).map((t) => t.close()));
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
    await waitFor('90 messages at the server', () => received.length === 90);
    for (const name of ['a', 'b', 'c']) {
      assert.deepEqual(received.filter((m) => m[0] === name), Array.from({ length: 30 }, (_, i) => `${name}${i}`));
    }
    await waitFor('every tab confirmed', () => [a, b, c].every((t) => t.bufferedAmount === 0 && t.stats.unconfirmed === 0));
    assert.deepEqual([a.stats.messagesSent, b.stats.messagesSent, c.stats.messagesSent], [30, 30, 30]);
    // The leader knows who would take its session over; a tab that closes is no longer counted.
    assert.deepEqual([a.otherTabs, b.otherTabs, c.otherTabs], [2, 0, 0]);
    await c.close();
    await waitFor('the leader forgets the closed tab', () => a.otherTabs === 1);
  });

  it('relays incoming messages to every tab once', async () => {
    const tab = tabGroup(url, createClient);
    const [a, b, c] = [tab(), tab(), tab()];
    await Promise.all([a.connect(), b.connect(), c.connect()]);
    const got = new Map<HoldlineTabClient, string[]>([[a, []], [b, []], [c, []]]);
    for (const t of [a, b, c]) t.on('message', (d: Payload) => got.get(t)?.push(String(d)));
    await b.send('echo:1');
    await c.send('echo:2');
    await waitFor('both echoes on every tab', () => [...got.values()].every((l) => l.length === 2));
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
    await waitFor('a new leader', () => b.role === 'leader' || c.role === 'leader');
    await waitFor('open again', () => b.state === 'open' && c.state === 'open');
    assert.equal(b.sessionId, first, 'the same session goes on');
    assert.equal(c.sessionId, first);
    await waitFor('everything confirmed', () => b.stats.unconfirmed === 0 && c.stats.unconfirmed === 0, 10_000);
    await waitFor('every server message on both tabs', () => [...got.values()].every((l) => l.length >= 40), 10_000).catch((e: unknown) => {
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
    await waitFor('both reset', () => resets.length === 2, 10_000);
    await waitFor('open again', () => a.state === 'open' && b.state === 'open');
    await waitFor('confirmed', () => b.stats.unconfirmed === 0, 10_000);
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

/** A client whose acks and session losses the test drives. */
class ScriptedClient extends TypedEmitter<ClientEvents> implements TabCoreClient {
  state: ClientState = 'idle';
  sessionId: string | undefined;
  /** What the "server" got, in order. */
  readonly delivered: Payload[];
  /** Handed over, not acknowledged. */
  outstanding: Payload[] = [];
  /** Larger messages are refused by send(), as HoldlineClient does past the server's maxMessageBytes. */
  readonly maxMessageBytes: number;
  #n = 0;
  /** Messages acknowledged since this client was created (what 'ack' reports). */
  #acked = 0;

  constructor(delivered: Payload[], maxMessageBytes = Infinity) {
    super();
    this.delivered = delivered;
    this.maxMessageBytes = maxMessageBytes;
  }

  get bufferedAmount(): number {
    return this.outstanding.reduce((n, p) => n + payloadBytes(p), 0);
  }

  get stats(): Readonly<ClientStats> {
    return { polls: 0, pollCuts: 0, sendRequests: 0, messagesSent: 0, messagesReceived: 0, messagesAcked: this.#acked, reconnects: 0, resets: 0, holdMs: 0, rttMs: 1 };
  }

  async connect(): Promise<void> {
    this.sessionId = `s${++this.#n}`;
    this.state = 'open';
    this.emit('open', { sessionId: this.sessionId, resumed: false });
  }

  async send(data: Payload): Promise<void> {
    const bytes = payloadBytes(data);
    if (bytes > this.maxMessageBytes) throw new HoldlineError('message_too_large', `message of ${bytes} bytes exceeds the server's maxMessageBytes`);
    this.outstanding.push(data);
  }

  /** The server received the first `n` outstanding (and, if `ack`, acknowledged them). */
  receive(n: number, ack: boolean): void {
    this.delivered.push(...this.outstanding.slice(0, n));
    if (!ack) return;
    this.outstanding = this.outstanding.slice(n);
    this.#acked += n;
    this.emit('ack', this.#acked);
  }

  /** The session is gone: the outstanding are lost (the first `received` of them had reached the server). */
  loseSession(reason: CloseReason): void {
    const lost = this.outstanding;
    this.outstanding = [];
    const previous = this.sessionId ?? '';
    this.state = 'reconnecting';
    this.emit('reconnecting', { attempt: 0, delayMs: 0, error: new HoldlineError('session_lost', 'lost') });
    this.sessionId = `s${++this.#n}`;
    this.emit('reset', { previousSessionId: previous, sessionId: this.sessionId, reason, lost });
    this.state = 'open';
    this.emit('open', { sessionId: this.sessionId, resumed: false });
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    const unacked = this.outstanding;
    this.outstanding = [];
    this.emit('close', { code: 'client_closed', message: 'closed' }, unacked);
  }
}

describe('HoldlineTabClient acknowledgement accounting (scripted client)', () => {
  it('confirms exactly what the server acknowledged; after a reset, lists the lost messages of the tab exactly', async () => {
    const delivered: Payload[] = [];
    const made: ScriptedClient[] = [];
    const tab = tabGroup('http://127.0.0.1:1/holdline', () => {
      const c = new ScriptedClient(delivered);
      made.push(c);
      return c;
    });
    const [a, b] = [tab(), tab()];
    await Promise.all([a.connect(), b.connect()]);
    assert.equal(made.length, 1);
    const core = firstOf(made, 'scripted client');
    for (const m of ['b1', '', 'b3', 'b4']) await b.send(m);
    await waitFor('4 handed over', () => core.outstanding.length === 4);

    core.receive(2, true); // 'b1' and '' acknowledged: an empty message counts like any other
    await waitFor('b1 and the empty one confirmed', () => b.stats.unconfirmed === 2);
    core.receive(1, true);
    await waitFor('b3 confirmed', () => b.stats.unconfirmed === 1);

    const lost: Payload[][] = [];
    b.on('reset', (e) => lost.push(e.lost));
    core.receive(1, false); // 'b4' reached the server, its ack did not come back
    core.loseSession({ code: 'session_unknown', message: 'gone' });
    // 'b4' went to the old session, unacknowledged: lost, and listed in b's reset (as HoldlineClient's would).
    await waitFor('the reset', () => lost.length === 1);
    assert.deepEqual(lost, [['b4']]);
    assert.equal(b.stats.unconfirmed, 0);
    await b.send('b5');
    await waitFor('sent', () => core.outstanding.length === 1);
    assert.deepEqual(core.outstanding, ['b5']);
    core.receive(1, true);
    await waitFor('all confirmed', () => b.stats.unconfirmed === 0 && b.bufferedAmount === 0);
    assert.deepEqual(delivered, ['b1', '', 'b3', 'b4', 'b5']);
  });

  it("confirms the leader's own messages the moment its client reports the ack, with no timer", async () => {
    const made: ScriptedClient[] = [];
    const a = tabGroup('http://127.0.0.1:1/holdline', () => {
      const c = new ScriptedClient([]);
      made.push(c);
      return c;
    })();
    await a.connect();
    const core = firstOf(made, 'scripted client');
    for (const m of ['a1', 'a2', 'a3']) await a.send(m);
    assert.deepEqual(core.outstanding, ['a1', 'a2', 'a3']);
    assert.equal(a.stats.unconfirmed, 3);
    core.receive(2, true);
    assert.equal(a.stats.unconfirmed, 1, 'confirmed synchronously, on the ack event');
    assert.equal(a.bufferedAmount, 2);
    core.receive(1, true);
    assert.deepEqual([a.stats.unconfirmed, a.bufferedAmount], [0, 0]);
  });

  it('a message the client refuses is reported to its tab, and the acks of the later ones still line up', async () => {
    const made: ScriptedClient[] = [];
    const tab = tabGroup('http://127.0.0.1:1/holdline', () => {
      const c = new ScriptedClient([], 5);
      made.push(c);
      return c;
    });
    const [a, b] = [tab(), tab()];
    await Promise.all([a.connect(), b.connect()]);
    const core = firstOf(made, 'scripted client');
    const errors: string[] = [];
    b.on('error', (e) => errors.push(e.code));
    for (const m of ['b1', 'too large', 'b3']) await b.send(m);
    await waitFor('the refusal', () => errors.length === 1);
    assert.deepEqual(errors, ['message_too_large']);
    assert.deepEqual(core.outstanding, ['b1', 'b3']);
    assert.equal(b.stats.unconfirmed, 2);
    core.receive(1, true);
    await waitFor('b1 confirmed', () => b.stats.unconfirmed === 1);
    core.receive(1, true); // the client's 2nd message is 'b3'
    await waitFor('b3 confirmed', () => b.stats.unconfirmed === 0 && b.bufferedAmount === 0);

    // The leader's own sends reach its client in one go, so the refusal comes
    // after a later message was handed over: that one moves up in the client's order.
    const errorsA: string[] = [];
    a.on('error', (e) => errorsA.push(e.code));
    await Promise.all(['a1', 'too large', 'a3'].map((m) => a.send(m)));
    await waitFor('the refusal', () => errorsA.length === 1);
    assert.deepEqual(core.outstanding, ['a1', 'a3']);
    core.receive(2, true);
    assert.deepEqual([a.stats.unconfirmed, a.bufferedAmount], [0, 0]);
  });

  it('without locks every tab runs its own client', async () => {
    const made: ScriptedClient[] = [];
    const mk = () => {
      const c = new ScriptedClient([]);
      made.push(c);
      return c;
    };
    const a = new HoldlineTabClient('http://127.0.0.1:1/holdline', { locks: null, createClient: mk });
    const b = new HoldlineTabClient('http://127.0.0.1:1/holdline', { locks: null, createClient: mk });
    toClose.push(a, b);
    await Promise.all([a.connect(), b.connect()]);
    assert.equal(made.length, 2);
    assert.equal(a.shared, false);
    assert.deepEqual([a.role, b.role], ['leader', 'leader']);
  });

  it('checks its options', () => {
    assert.throws(() => new HoldlineTabClient('ftp://x'), /http: or https:|absolute http/);
    assert.throws(() => new HoldlineTabClient('http://x/holdline', { channelName: '' }), /channelName/);
    // A removed option fails with a hint rather than as an unknown one.
    const legacy: object = { ackCheckMs: 10 };
    assert.throws(() => new HoldlineTabClient('http://x/holdline', legacy as HoldlineTabClientOptions), /option "ackCheckMs" was removed: .*'ack' event/);
    assert.throws(() => new HoldlineTabClient('http://x/holdline', { transports: ['polling'], nope: 1 } as HoldlineTabClientOptions), /unknown HoldlineClient option "nope"/);
    assert.throws(() => new HoldlineTabClient('http://x/holdline', { holdMs: -1 }), /holdMs/);
  });
});

describe('what travels on the channel', () => {
  it('takes the messages of known kinds with their fields, and ignores anything else', () => {
    const status = { state: 'open', sessionId: 's1', transport: 'polling', stats: {} };
    for (const m of [
      { k: 'hello', from: 't1' },
      { k: 'send', from: 't1', num: 2, base: 1, data: 'x' },
      { k: 'send', from: 't1', num: 2, base: 1, data: structuredClone(new Uint8Array([1, 2])) },
      { k: 'status', epoch: 'e', status },
      { k: 'status', epoch: 'e', status, event: { type: 'open', resumed: false } },
      { k: 'confirm', epoch: 'e', to: 't1', upTo: 3 },
      { k: 'refuse', epoch: 'e', to: 't1', num: 3, error: { code: 'message_too_large', message: 'm', status: undefined } },
      { k: 'leaving', epoch: 'e' },
    ]) {
      assert.ok(isBusMessage(m), JSON.stringify(m));
    }
    for (const m of [
      null,
      'hello',
      { k: 'hello' },
      { k: 'shout', from: 't1' },
      { k: 'toString', from: 't1' },
      { k: 'send', from: 't1', num: '2', base: 1, data: 'x' },
      { k: 'send', from: 't1', num: 2, base: 1, data: 5 },
      { k: 'confirm', epoch: 'e', to: 't1' },
      { k: 'status', epoch: 'e', status, event: 'open' },
      { k: 'msg', data: 'x' },
    ]) {
      assert.ok(!isBusMessage(m), JSON.stringify(m));
    }
  });
});
