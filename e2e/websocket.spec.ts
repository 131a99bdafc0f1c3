// The WebSocket fast path in Chromium: the demo page rides a WebSocket and
// shows it (the transport pill beside the state, and "Transport" in the
// status area), and shows it live when the WebSocket goes and comes back.
// With WebSockets blocked (a Playwright route that refuses them, or a server
// that offers none) chat works on polling and the page says so.
//
// Most pages use ?share=0: one session per page on a plain HoldlineClient,
// whose `transport` and 'transport' event the page shows. Two tests run the
// demo in its default mode, the tabs of a browser sharing one session
// (HoldlineTabClient): the leading tab's client carries it, and the leader
// relays its transport to every tab in the status it broadcasts
// (client/tabs/leader.ts), so each tab shows it and emits 'transport'.
import type { Page, WebSocketRoute } from '@playwright/test';
import { test, expect, events, expectMessages, openChat, postViaForm, states } from './fixtures.js';
import type { DemoServer } from './demo-server.js';

/** Start noting every text the transport pill shows, in order (window.__pillTexts). */
async function notePill(page: Page): Promise<void> {
  await page.evaluate(() => {
    const pill = document.getElementById('transport-pill');
    if (!pill) throw new Error('no #transport-pill');
    const seen = [pill.textContent ?? ''];
    (window as unknown as { __pillTexts: string[] }).__pillTexts = seen;
    new MutationObserver(() => {
      const text = pill.textContent ?? '';
      if (seen[seen.length - 1] !== text) seen.push(text);
    }).observe(pill, { childList: true, characterData: true, subtree: true });
  });
}

function pillTexts(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { __pillTexts: string[] }).__pillTexts.slice());
}

/** The transports a page's client switched to, in order (its 'transport' events). */
async function switches(page: Page): Promise<string[]> {
  return (await events(page, 'transport')).map((e) => String(e.transport));
}

/**
 * Up once: exactly ['websocket']. A race once closed the new WebSocket (4000,
 * "superseded by a poll") when a poll the client sent just before its hello
 * reached the server after it, so ['websocket', 'polling', 'websocket'] was
 * tolerated here. It can no longer happen (PROTOCOL.md, WebSocket, "Ending"):
 * - the client stops polling before it sends the hello (TransportSwitcher
 *   .opened: PollingTransport.stop, which also drops the awaited poll, so no
 *   early poll follows), and no poll leaves after it while the WebSocket is up;
 * - the hello carries the session's WebSocket count ("ws": 1 for the first),
 *   and every poll the count as it stood when the poll was sent (pending-poll.ts);
 * - the server answers a poll counted below the hello of the WebSocket carrying
 *   the session at once, empty, and leaves the WebSocket be (server/polling.ts
 *   take() asks predates() in server/websocket.ts before pollTaken(), with no
 *   await between); a poll that got there before the WebSocket attached is held,
 *   and answered when it does (carriedByWebSocket), the WebSocket staying.
 * (Only a hello without a count, from a client that keeps none, is still closed by
 * any poll, as PROTOCOL.md says; the demo's client counts.)
 * So a page that comes up switches once; anything more is a failure to look into.
 */
function expectUp(names: readonly string[]): void {
  expect(names).toEqual(['websocket']);
}

/** WebSockets that reached "ok" with the server: one per switch to 'websocket'. */
function ups(names: readonly string[]): number {
  return names.filter((n) => n === 'websocket').length;
}

async function expectTransportShown(page: Page, transport: 'polling' | 'websocket'): Promise<void> {
  await expect(page.locator('#transport-pill')).toHaveText(transport);
  await expect(page.locator('#transport-pill')).toHaveAttribute('data-transport', transport);
  await expect(page.locator('#transport')).toHaveText(transport);
}

/** Alice and Bob take turns; both pages show every message once, in order (after those `before`). */
function chat(a: Page, b: Page, tag: string, rounds: number, before: readonly string[] = []): Promise<string[]> {
  return turns([[a, 'alice'], [b, 'bob']], [], tag, rounds, before);
}

/**
 * The `posters` take turns, `rounds` times; after each post, every poster and
 * every page in `watchers` shows every message once, in order (after those `before`).
 */
async function turns(
  posters: ReadonlyArray<readonly [Page, string]>,
  watchers: readonly Page[],
  tag: string,
  rounds: number,
  before: readonly string[] = [],
): Promise<string[]> {
  const sent = [...before];
  const pages = [...posters.map(([page]) => page), ...watchers];
  for (let i = 1; i <= rounds; i++) {
    for (const [page, who] of posters) {
      const text = `${tag} ${who} ${i}`;
      await postViaForm(page, text);
      sent.push(text);
      for (const p of pages) await expectMessages(p, sent);
    }
  }
  return sent;
}

function role(page: Page): Promise<string | null> {
  return page.locator('#role').textContent();
}

/** The page's client reported no error and never left 'open'. */
async function expectCalm(page: Page): Promise<void> {
  expect(await events(page, 'error')).toEqual([]);
  expect(await states(page)).toEqual(['connecting', 'open']);
}

/** No poll and no HTTP send reached the demo server since `before` (its request counts then). */
function expectNoHttpSince(demo: DemoServer, before: Readonly<Record<string, number>>): void {
  const after = demo.stats().requests;
  expect(after['POST /poll'] ?? 0).toBe(before['POST /poll'] ?? 0);
  expect(after['POST /send'] ?? 0).toBe(before['POST /send'] ?? 0);
}

test('the demo runs on a WebSocket and the page shows it; no polls while chatting on it', async ({ browser, startDemo }) => {
  const demo = await startDemo();
  const alice = await browser.newContext();
  const bob = await browser.newContext();
  try {
    const a = await alice.newPage();
    const b = await bob.newPage();
    await openChat(a, `${demo.origin}/?name=alice&share=0`);
    await openChat(b, `${demo.origin}/?name=bob&share=0`);
    await expectTransportShown(a, 'websocket');
    await expectTransportShown(b, 'websocket');
    expect((await events(a, 'transport'))[0]).toEqual(expect.objectContaining({ transport: 'websocket', previous: 'polling' }));
    const [namesA, namesB] = [await switches(a), await switches(b)];
    expectUp(namesA);
    expectUp(namesB);
    // Every WebSocket the pages had up reached the demo server (and no other did).
    await expect.poll(() => demo.stats().webSockets).toBe(ups(namesA) + ups(namesB));

    const before = demo.stats().requests;
    await chat(a, b, 'on a websocket', 3);
    expectNoHttpSince(demo, before);
    await expectTransportShown(a, 'websocket');
    await expectCalm(a);
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('the page shows the transport live: the WebSocket cut (polling shown), then back (websocket shown); chat goes on', async ({ browser, startDemo }) => {
  const demo = await startDemo();
  const alice = await browser.newContext();
  const bob = await browser.newContext();
  try {
    const a = await alice.newPage();
    // Alice's WebSockets pass through a route that forwards both ways and can cut them.
    const routed: WebSocketRoute[] = [];
    await a.routeWebSocket(/\/holdline\/ws$/, (ws) => {
      routed.push(ws);
      ws.connectToServer();
    });
    const b = await bob.newPage();
    await openChat(a, `${demo.origin}/?name=alice&share=0`);
    await openChat(b, `${demo.origin}/?name=bob&share=0`);
    await expectTransportShown(a, 'websocket');
    await notePill(a);
    const first = await chat(a, b, 'first', 1);

    // Cut it, as a middlebox would: the page's side closes without Holdline's close frame.
    expectUp(await switches(a));
    expect(routed).toHaveLength(1);
    await routed[0]?.close({ code: 1001, reason: 'cut by the test' });
    // Back to polling at once, then up again on a second WebSocket (whose hello no late poll closes either: see expectUp).
    await expect.poll(() => switches(a)).toEqual(['websocket', 'polling', 'websocket']);
    await expectTransportShown(a, 'websocket');
    // The pill showed it live: polling after the cut, then the WebSocket again.
    expect(await pillTexts(a)).toEqual(['websocket', 'polling', 'websocket']);
    expect(routed).toHaveLength(2);

    const all = await chat(a, b, 'after the cut', 2, first);
    expect(all).toHaveLength(6);
    await expectCalm(a);
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('WebSockets blocked by a route: chat works on polling and the page shows polling', async ({ browser, startDemo }) => {
  const demo = await startDemo();
  const alice = await browser.newContext();
  const bob = await browser.newContext();
  try {
    const a = await alice.newPage();
    // Every WebSocket of this page is refused: closed at once, never reaching the server.
    let refused = 0;
    await a.routeWebSocket(/\/holdline\/ws$/, (ws) => {
      refused++;
      void ws.close({ code: 1008, reason: 'blocked by the test' });
    });
    const b = await bob.newPage();
    await openChat(a, `${demo.origin}/?name=alice&share=0`);
    await openChat(b, `${demo.origin}/?name=bob&share=0`);
    await expectTransportShown(a, 'polling');
    await expectTransportShown(b, 'websocket');
    await notePill(a);

    const polls = demo.stats().requests['POST /poll'] ?? 0;
    await chat(a, b, 'blocked', 3);
    expect(demo.stats().requests['POST /poll'] ?? 0).toBeGreaterThan(polls);
    // The client tried, gave up after its failures (3), and stays on polling without a word to the app.
    await expect.poll(() => refused).toBeGreaterThanOrEqual(1);
    expect(refused).toBeLessThanOrEqual(3);
    await expectTransportShown(a, 'polling');
    expect(await pillTexts(a)).toEqual(['polling']);
    expect(await events(a, 'transport')).toEqual([]);
    await expectCalm(a);
    // Only bob's WebSockets reached the server.
    const namesB = await switches(b);
    expectUp(namesB);
    expect(demo.stats().webSockets).toBe(ups(namesB));
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('a server that offers no WebSockets (404 to the upgrade): chat works on polling and the page shows polling', async ({ browser, startDemo }) => {
  const demo = await startDemo({ holdline: { transports: ['polling'] } });
  const alice = await browser.newContext();
  const bob = await browser.newContext();
  try {
    const a = await alice.newPage();
    const b = await bob.newPage();
    await openChat(a, `${demo.origin}/?name=alice&share=0`);
    await openChat(b, `${demo.origin}/?name=bob&share=0`);
    await chat(a, b, 'no websockets', 2);
    await expectTransportShown(a, 'polling');
    await expectTransportShown(b, 'polling');
    // A browser's WebSocket does not tell the 404 from any other failure. A path whose first
    // handshake fails is not tried again: one upgrade per page, then polling for the session.
    await expect.poll(() => demo.stats().upgradesRefused, { timeout: 15_000 }).toBe(2);
    // Well past the client's back-off (250 ms doubling: the three tries it used to make took about a second).
    await a.waitForTimeout(4_000);
    expect(demo.stats().upgradesRefused).toBe(2);
    expect(demo.stats().webSockets).toBe(0);
    expect(await events(a, 'transport')).toEqual([]);
    expect(await events(a, 'error')).toEqual([]);
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('the default demo (tabs share one session) runs on a WebSocket, and every tab shows it; chat works both ways', async ({ browser, startDemo }) => {
  const demo = await startDemo();
  const tabs = await browser.newContext();
  const elsewhere = await browser.newContext();
  try {
    // No ?share=0: HoldlineTabClient, the first tab leading.
    const t1 = await tabs.newPage();
    await openChat(t1, `${demo.origin}/?name=alice`);
    expect(await role(t1)).toBe('leader');
    await expectTransportShown(t1, 'websocket');
    expect(await events(t1, 'transport')).toEqual([expect.objectContaining({ transport: 'websocket', previous: 'polling' })]);
    await notePill(t1);

    // A second tab of the same browser follows on the same session and shows the leader's transport.
    const t2 = await tabs.newPage();
    await openChat(t2, `${demo.origin}/?name=alice`);
    expect(await role(t2)).toBe('follower');
    const shared = await t1.locator('#session').getAttribute('title');
    expect(shared).toMatch(/\S/);
    await expect(t2.locator('#session')).toHaveAttribute('title', shared ?? '');
    await expectTransportShown(t2, 'websocket');
    expect(await events(t2, 'transport')).toEqual([expect.objectContaining({ transport: 'websocket', previous: 'polling' })]);
    await notePill(t2);

    // Another browser, in the default mode too.
    const b = await elsewhere.newPage();
    await openChat(b, `${demo.origin}/?name=bob`);
    expect(await role(b)).toBe('leader');
    await expectTransportShown(b, 'websocket');

    // Two sessions (the tabs share one); a WebSocket each, the leaders': the follower opened none.
    expect(demo.stats()).toMatchObject({ sessions: 2, sessionsOpened: 2 });
    expectUp(await switches(t1));
    expectUp(await switches(b));
    await expect.poll(() => demo.stats().webSockets).toBe(2);

    // Both ways between the tabs, and with the other browser; no poll or send while on the WebSocket.
    const before = demo.stats().requests;
    const sent = await turns([[t1, 'leader'], [t2, 'follower']], [b], 'shared tabs', 2);
    const all = await turns([[t2, 'follower'], [b, 'bob']], [t1], 'follower and bob', 2, sent);
    expect(all).toHaveLength(8);
    expectNoHttpSince(demo, before);
    expect(demo.stats()).toMatchObject({ duplicatesDropped: 0, webSockets: 2 });

    // Still on the WebSocket, shown on both tabs throughout; no error, no change of state.
    for (const t of [t1, t2]) {
      await expectTransportShown(t, 'websocket');
      expect(await pillTexts(t)).toEqual(['websocket']);
      expectUp(await switches(t));
      await expectCalm(t);
    }
  } finally {
    await tabs.close();
    await elsewhere.close();
  }
});

test('the default demo (tabs share one session) with WebSockets blocked by a route: every tab stays on polling and shows it; chat works', async ({ browser, startDemo }) => {
  const demo = await startDemo();
  const tabs = await browser.newContext();
  const elsewhere = await browser.newContext();
  try {
    // Every WebSocket of this browser (whichever tab leads) is refused: closed at once, never reaching the server.
    let refused = 0;
    await tabs.routeWebSocket(/\/holdline\/ws$/, (ws) => {
      refused++;
      void ws.close({ code: 1008, reason: 'blocked by the test' });
    });
    const t1 = await tabs.newPage();
    await openChat(t1, `${demo.origin}/?name=alice`);
    expect(await role(t1)).toBe('leader');
    const t2 = await tabs.newPage();
    await openChat(t2, `${demo.origin}/?name=alice`);
    expect(await role(t2)).toBe('follower');
    const shared = await t1.locator('#session').getAttribute('title');
    expect(shared).toMatch(/\S/);
    await expect(t2.locator('#session')).toHaveAttribute('title', shared ?? '');
    const b = await elsewhere.newPage();
    await openChat(b, `${demo.origin}/?name=bob`);
    await expectTransportShown(t1, 'polling');
    await expectTransportShown(t2, 'polling');
    await expectTransportShown(b, 'websocket');
    await notePill(t1);
    await notePill(t2);

    const polls = demo.stats().requests['POST /poll'] ?? 0;
    const sent = await turns([[t1, 'leader'], [t2, 'follower']], [b], 'blocked tabs', 2);
    const all = await turns([[t2, 'follower'], [b, 'bob']], [t1], 'blocked follower and bob', 2, sent);
    expect(all).toHaveLength(8);
    // The shared session rode polls (what reached the tabs came on them).
    expect(demo.stats().requests['POST /poll'] ?? 0).toBeGreaterThan(polls);
    expect(demo.stats()).toMatchObject({ sessions: 2, sessionsOpened: 2, duplicatesDropped: 0 });
    // The leader's client tried, gave up after its failures (3), and stays on polling without a word to the app.
    await expect.poll(() => refused).toBeGreaterThanOrEqual(1);
    expect(refused).toBeLessThanOrEqual(3);
    for (const t of [t1, t2]) {
      await expectTransportShown(t, 'polling');
      expect(await pillTexts(t)).toEqual(['polling']);
      expect(await events(t, 'transport')).toEqual([]);
      await expectCalm(t);
    }
    // Only the other browser's WebSocket reached the server.
    expectUp(await switches(b));
    expect(demo.stats().webSockets).toBe(1);
  } finally {
    await tabs.close();
    await elsewhere.close();
  }
});
