// A change of leader among tabs, client to server: a message the old
// leader's session already took (the server acknowledged it) must not go out
// again under a new number when its tab has not heard the confirmation, be
// that because the confirmation came after the old leader said 'leaving'
// (pagehide), or because the new leader's first posts overtook it (two
// senders on one BroadcastChannel). Real BroadcastChannels, a real client and
// server; a FIFO lock manager stands in for navigator.locks.
import { describe, it, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoldlineServer, type Session } from '../../server/index.js';
import { HoldlineClient as NodeClient } from '../index.js';
import { HoldlineTabClient, type TabBus } from '../tab-channel.js';
import { FakeLocks } from '../../test/helpers/fake-locks.js';
import { waitFor } from '../../test/helpers/wait.js';

/** A tab's BroadcastChannel that can hold back what arrives (a message overtaken by another sender's). */
class HoldingBus implements TabBus {
  onmessage: ((ev: MessageEvent) => void) | null = null;
  readonly #bc: BroadcastChannel;
  /** Held back while this says so. */
  hold: ((m: { k?: unknown }) => boolean) | undefined;
  readonly held: MessageEvent[] = [];

  constructor(name: string) {
    this.#bc = new BroadcastChannel(name);
    this.#bc.onmessage = (ev: MessageEvent) => {
      if (this.hold?.(ev.data as { k?: unknown })) this.held.push(ev);
      else this.onmessage?.(ev);
    };
  }

  /** Deliver what was held, in order, and hold nothing more. */
  flush(): void {
    this.hold = undefined;
    for (const ev of this.held.splice(0)) this.onmessage?.(ev);
  }

  postMessage(message: unknown): void {
    this.#bc.postMessage(message);
  }

  close(): void {
    this.#bc.close();
  }
}

describe('a change of leader among tabs: nothing the old session took goes out again under a new number', () => {
  const received: string[] = [];
  /** The server's side of the newest session. */
  let serverSide: Session | undefined;
  const hl = new HoldlineServer({ pollTimeoutMs: 1_000 });
  hl.on('session', (s) => {
    serverSide = s;
    s.on('message', (d) => received.push(String(d)));
  });
  const server = http.createServer();
  hl.attach(server, { path: '/holdline' });
  let url = '';
  let channelSeq = 0;
  const toClose: HoldlineTabClient[] = [];

  /** A tab of one group (same channel, same locks); its bus is returned with it. */
  function tabGroup(): () => { tab: HoldlineTabClient; bus: () => HoldingBus } {
    const channelName = `handover-${process.pid}-${++channelSeq}`;
    const locks = new FakeLocks();
    return () => {
      let bus: HoldingBus | undefined;
      const tab = new HoldlineTabClient(url, {
        channelName,
        locks,
        createBus: (name) => (bus = new HoldingBus(name)),
        createClient: (u, o) => new NodeClient(u, { ...o, reconnect: { minDelayMs: 20, maxDelayMs: 200 } }),
      });
      toClose.push(tab);
      return {
        tab,
        bus: () => {
          assert.ok(bus, 'the tab has a bus once connecting');
          return bus;
        },
      };
    };
  }

  afterEach(async () => {
    await Promise.all(toClose.splice(0).map((t) => t.close()));
  });

  after(async () => {
    await hl.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  async function listen(): Promise<void> {
    if (!server.listening) await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/holdline`;
  }

  /** `n` tabs of one new group, connected in order (the first leads; the second is next in line for the lock). */
  async function openTabs(n: number): Promise<{ tab: HoldlineTabClient; bus: () => HoldingBus }[]> {
    await listen();
    const make = tabGroup();
    const tabs = [];
    for (let i = 0; i < n; i++) {
      const t = make();
      await t.tab.connect();
      tabs.push(t);
    }
    return tabs;
  }

  /** `tab` sends `last` once everything settled; the server has each message of `expected` once. */
  /** `sender` sends b1 and b2; once the server has both and `leader` their ack, the leader's tab closes. */
  async function sendTwoThenLeave(sender: HoldlineTabClient, leader: HoldlineTabClient): Promise<void> {
    await sender.send('b1');
    await sender.send('b2');
    await waitFor(() => received.includes('b1') && received.includes('b2'), 5_000, 'b1 and b2 at the server');
    await waitFor(() => leader.stats.messagesAcked >= 2, 5_000, "the leader's ack of both");
    await sleep(50);
    await leader.close();
  }

  async function sendLast(tab: HoldlineTabClient, last: string, expected: string[]): Promise<void> {
    await tab.send(last);
    await waitFor(() => received.includes(last), 5_000, `${last} at the server`);
    await waitFor(() => tab.stats.unconfirmed === 0, 10_000, 'everything confirmed');
    await sleep(100);
    assert.deepEqual(received, expected, 'each message once at the server');
  }

  /** A tab of `make`'s group whose page (the EventTarget returned) alone can fire pagehide at it, connected. */
  async function tabWithPage(make: ReturnType<typeof tabGroup>): Promise<{ tab: HoldlineTabClient; page: EventTarget }> {
    // A window for this tab only while it connects (where it listens for pagehide).
    const page = new EventTarget();
    const g = globalThis as { addEventListener?: unknown; removeEventListener?: unknown };
    g.addEventListener = page.addEventListener.bind(page);
    g.removeEventListener = page.removeEventListener.bind(page);
    const tab = make().tab;
    const connected = tab.connect();
    delete g.addEventListener;
    delete g.removeEventListener;
    await connected;
    return { tab, page };
  }

  it("the leading tab's page goes into the back/forward cache (pagehide): another tab leads the same session at once; back, the tab follows and can lead again", async () => {
    await listen();
    const make = tabGroup();
    const { tab: a, page } = await tabWithPage(make);
    const b = make().tab;
    await b.connect();
    assert.deepEqual([a.role, b.role], ['leader', 'follower']);
    const session = a.sessionId;
    await b.send('b1');
    await waitFor(() => b.stats.unconfirmed === 0, 5_000, 'b1 confirmed');

    received.length = 0;
    const hide = new Event('pagehide');
    Object.defineProperty(hide, 'persisted', { value: true });
    page.dispatchEvent(hide);
    assert.equal(a.role, 'follower', 'a leads no more');
    await b.send('b2');
    await waitFor(() => b.role === 'leader' && b.state === 'open', 5_000, 'b leads');
    assert.equal(b.sessionId, session, 'the same session goes on');
    // a is back: it follows b (which knows of it), and its messages go out through b.
    await waitFor(() => b.otherTabs === 1, 5_000, 'b knows a shares its session');
    await a.send('a1');
    await waitFor(() => a.stats.unconfirmed === 0 && b.stats.unconfirmed === 0, 5_000, 'a1 and b2 confirmed');
    await b.close();
    await waitFor(() => a.role === 'leader' && a.state === 'open', 5_000, 'a leads again');
    assert.equal(a.sessionId, session, 'still the same session');
    await sendLast(a, 'a2', ['b2', 'a1', 'a2']);
  });

  it("the leading tab's page goes away mid-stream (pagehide): it says 'leaving' last, so the next leader resumes with nothing lost or repeated either way", async () => {
    await listen();
    const make = tabGroup();
    const { tab: a, page } = await tabWithPage(make);
    const tb = make();
    const b = tb.tab;
    await b.connect();
    assert.deepEqual([a.role, b.role], ['leader', 'follower']);
    const session = a.sessionId;
    const server = serverSide;
    assert.ok(server && server.id === session);
    const got: string[] = [];
    b.on('message', (d) => got.push(String(d)));
    received.length = 0;

    // Both directions flow while the leading tab's page goes away.
    const s2c = (async () => {
      for (let i = 1; i <= 60; i++) {
        await server.send(`s${i}`);
        await sleep(4);
      }
    })();
    const c2s = (async () => {
      for (let i = 1; i <= 30; i++) {
        await b.send(`b${i}`);
        await sleep(8);
      }
    })();
    await sleep(80);
    // Whatever the old leader posts after 'leaving' reaches b too late: b takes the lock first
    // (in a browser, the lock's release and the channel are separate paths).
    let left = false;
    tb.bus().hold = (m) => left || ((left = m.k === 'leaving'), false);
    page.dispatchEvent(new Event('pagehide'));
    await sleep(120);
    await a.close();

    await waitFor(() => b.role === 'leader' && b.state === 'open', 5_000, 'b leads');
    assert.equal(b.sessionId, session, 'the same session goes on');
    await Promise.all([s2c, c2s]);
    const all = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);
    await waitFor(() => got.length >= 60 && received.length >= 30, 10_000, () => `all 60 at b (${got.length}) and 30 at the server (${received.length})`);
    await sleep(100);
    assert.deepEqual(got, all('s', 60), 'server to tabs: each message once, in order');
    assert.deepEqual(received, all('b', 30), 'tabs to server: each message once, in order');
  });

  it("the new leader's first posts overtake the old leader's confirmation: it does not take the message as new", async () => {
    const [ta, tc, tb] = await openTabs(3);
    const [a, c, b] = [ta, tc, tb].map((t) => t?.tab);
    assert.ok(a && c && b && tb);
    assert.deepEqual([a.role, c.role, b.role], ['leader', 'follower', 'follower']);
    const session = a.sessionId;

    received.length = 0;
    // What a posts next reaches b late (after c's first posts).
    const bus = tb.bus();
    bus.hold = (m) => m.k === 'confirm' || m.k === 'acked';
    await b.send('b1');
    await waitFor(() => received.includes('b1'), 5_000, 'b1 at the server');
    await waitFor(() => bus.held.some((ev) => (ev.data as { k: string }).k === 'confirm'), 5_000, "a's confirmation of b1, held");
    await a.close();
    await waitFor(() => c.role === 'leader' && c.state === 'open', 5_000, 'c leads');
    await waitFor(() => b.state === 'open', 5_000, 'b follows c');
    await sleep(100); // b re-sent b1 to c
    bus.flush();
    assert.equal(c.sessionId, session, 'the same session goes on');

    await waitFor(() => b.stats.unconfirmed === 0, 10_000, 'b1 confirmed');
    await sendLast(c, 'c1', ['b1', 'c1']);
  });

  it('a new leader that cannot resume (its mirror has a hole) opens a new session: what the old one took is lost, never sent again', async () => {
    const [ta, tb] = await openTabs(2);
    const [a, b] = [ta?.tab, tb?.tab];
    assert.ok(a && b && tb);
    assert.deepEqual([a.role, b.role], ['leader', 'follower']);
    const session = a.sessionId;
    const resets: { previous: string | undefined; lost: unknown[] }[] = [];
    b.on('reset', (e) => resets.push({ previous: e.previousSessionId, lost: e.lost }));

    received.length = 0;
    // b's mirror misses where its first message went (a hole), and b hears no confirmation.
    const bus = tb.bus();
    bus.hold = (m) => (m.k === 'out' && (m as { num?: unknown }).num === 1) || m.k === 'confirm' || m.k === 'acked';
    await sendTwoThenLeave(b, a);

    await waitFor(() => b.role === 'leader' && b.state === 'open' && b.sessionId !== session, 10_000, 'b leads a new session');
    await waitFor(() => resets.length === 1, 5_000, 'the reset');
    assert.deepEqual(resets, [{ previous: session, lost: ['b1', 'b2'] }], 'the old session took them: lost with it, as far as b knows');
    await sendLast(b, 'b3', ['b1', 'b2', 'b3']);
  });

  it("... and tells the other tabs so: a follower's messages the old session took are lost, never sent again", async () => {
    const [ta, tc, tb] = await openTabs(3);
    const [a, c, b] = [ta?.tab, tc?.tab, tb?.tab];
    assert.ok(a && c && b && tc && tb);
    assert.deepEqual([a.role, c.role, b.role], ['leader', 'follower', 'follower']);
    const session = a.sessionId;
    const lostB: unknown[][] = [];
    b.on('reset', (e) => lostB.push(e.lost));

    received.length = 0;
    // c's mirror misses where b's first message went (a hole); b hears no confirmation.
    tc.bus().hold = (m) => (m.k === 'out' && (m as { num?: unknown }).num === 1) || m.k === 'acked';
    tb.bus().hold = (m) => m.k === 'confirm' || m.k === 'acked';
    await sendTwoThenLeave(b, a);

    await waitFor(() => c.role === 'leader' && c.state === 'open' && c.sessionId !== session, 10_000, 'c leads a new session');
    await waitFor(() => b.state === 'open' && b.sessionId === c.sessionId, 10_000, 'b on it');
    assert.deepEqual(lostB, [['b1', 'b2']], "b's reset lists what the old session took");
    tb.bus().hold = undefined; // the new leader's confirmations reach b (the old ones stay lost)
    await sendLast(b, 'b3', ['b1', 'b2', 'b3']);
  });
});
