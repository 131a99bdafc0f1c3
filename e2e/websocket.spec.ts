// The WebSocket fast path in Chromium: the demo page rides a WebSocket and
// shows it (the transport pill beside the state, and "Transport" in the
// status area), and shows it live when the WebSocket goes and comes back.
// With WebSockets blocked (a Playwright route that refuses them, or a server
// that offers none) chat works on polling and the page says so.
//
// The pages use ?share=0: one session per page on a plain HoldlineClient,
// whose `transport` and 'transport' event the page shows. (The tabs' shared
// client does not relay its leader's transport yet: see the report.)
import type { Page, WebSocketRoute } from '@playwright/test';
import { test, expect, events, expectMessages, openChat, postViaForm, states } from './fixtures.js';

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
 * Up once: ['websocket']. Known race (see the report): a poll the client sent
 * just before its hello can reach the server after it, which then closes the
 * new WebSocket (4000, "superseded by a poll"); the client goes back to
 * polling and up again, so ['websocket', 'polling', 'websocket'] happens too.
 * Nothing is lost either way; this asserts the shape and that it ends up.
 */
function expectUp(names: readonly string[]): void {
  expect(names.length % 2).toBe(1);
  expect(names.length).toBeLessThanOrEqual(3);
  names.forEach((name, i) => expect(name).toBe(i % 2 === 0 ? 'websocket' : 'polling'));
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
async function chat(a: Page, b: Page, tag: string, rounds: number, before: readonly string[] = []): Promise<string[]> {
  const sent = [...before];
  for (let i = 1; i <= rounds; i++) {
    for (const [page, who] of [[a, 'alice'], [b, 'bob']] as const) {
      const text = `${tag} ${who} ${i}`;
      await postViaForm(page, text);
      sent.push(text);
      await expectMessages(a, sent);
      await expectMessages(b, sent);
    }
  }
  return sent;
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
    const after = demo.stats().requests;
    expect(after['POST /poll'] ?? 0).toBe(before['POST /poll'] ?? 0);
    expect(after['POST /send'] ?? 0).toBe(before['POST /send'] ?? 0);
    await expectTransportShown(a, 'websocket');
    expect(await events(a, 'error')).toEqual([]);
    expect(await states(a)).toEqual(['connecting', 'open']);
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
    expect(routed).toHaveLength(1);
    const before = await switches(a);
    expectUp(before);
    expect(routed).toHaveLength(ups(before));
    await routed[routed.length - 1]?.close({ code: 1001, reason: 'cut by the test' });
    await expect.poll(async () => (await switches(a)).slice(before.length, before.length + 2)).toEqual(['polling', 'websocket']);
    await expectTransportShown(a, 'websocket');
    // The pill showed it live: polling after the cut, then the WebSocket again.
    expect((await pillTexts(a)).slice(0, 3)).toEqual(['websocket', 'polling', 'websocket']);
    const after = await switches(a);
    expect(routed).toHaveLength(ups(after));

    const all = await chat(a, b, 'after the cut', 2, first);
    expect(all).toHaveLength(6);
    expect(await events(a, 'error')).toEqual([]);
    expect(await states(a)).toEqual(['connecting', 'open']);
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
    expect(await events(a, 'error')).toEqual([]);
    expect(await states(a)).toEqual(['connecting', 'open']);
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
