// Two browsers (two contexts: separate storage, so separate sessions) chat
// both ways; every message shows once, in order, on both. Also renders the
// screenshots the README shows.
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, expect, expectMessages, openChat, postViaForm, texts } from './fixtures.js';

// The README's screenshots: written to docs/ when UPDATE_SCREENSHOTS=1 (then commit them),
// else to test-results/ so that an ordinary test run leaves the work tree clean.
const DOCS = process.env.UPDATE_SCREENSHOTS === '1' ? join(dirname(fileURLToPath(import.meta.url)), '..', 'docs') : join(process.cwd(), 'test-results', 'screenshots');

test('two browsers chat both ways: every message once, in order, on both', async ({ browser, startDemo }) => {
  const demo = await startDemo();
  const alice = await browser.newContext();
  const bob = await browser.newContext();
  try {
    const a = await alice.newPage();
    const b = await bob.newPage();
    await openChat(a, `${demo.origin}/?name=alice`);
    await openChat(b, `${demo.origin}/?name=bob`);
    expect(demo.stats().sessions).toBe(2);

    // Turn by turn: a fixed order both pages must show.
    const turns: string[] = [];
    for (let i = 1; i <= 3; i++) {
      for (const [page, who] of [[a, 'alice'], [b, 'bob']] as const) {
        const text = `${who} turn ${i}`;
        await postViaForm(page, text);
        turns.push(text);
        await expectMessages(a, turns);
        await expectMessages(b, turns);
      }
    }

    // All at once from both sides: the server's order, the same on both pages,
    // each sender's messages in the order sent.
    const burstA = Array.from({ length: 10 }, (_, i) => `a burst ${i}`);
    const burstB = Array.from({ length: 10 }, (_, i) => `b burst ${i}`);
    await Promise.all([
      (async () => { for (const t of burstA) await postViaForm(a, t); })(),
      (async () => { for (const t of burstB) await postViaForm(b, t); })(),
    ]);
    const serverOrder = () => demo.history().map((m) => m.text);
    await expect.poll(() => serverOrder().length, { timeout: 10_000 }).toBe(turns.length + 20);
    const expected = serverOrder();
    await expectMessages(a, expected);
    await expectMessages(b, expected);
    expect(expected.filter((t) => t.startsWith('a burst'))).toEqual(burstA);
    expect(expected.filter((t) => t.startsWith('b burst'))).toEqual(burstB);
    expect(new Set(expected).size).toBe(expected.length);

    // The page shows its numbers live.
    // What carries the session, as the client says (polling, or a WebSocket where one gets through).
    const transport = await a.evaluate(() => (window as unknown as { __holdline: { transport: string } }).__holdline.transport);
    expect(['polling', 'websocket']).toContain(transport);
    await expect(a.locator('#transport')).toHaveText(transport);
    await expect(a.locator('#transport-pill')).toHaveText(transport);
    await expect(a.locator('#session')).toHaveText(/^[A-Za-z0-9_-]{8}$/);
    await expect(a.locator('#sent')).not.toHaveText('0');
    await expect(a.locator('#received')).not.toHaveText('0');
    await expect(a.locator('#rtt')).toHaveText(/^\d+ ms$/);
    expect(await texts(a)).toEqual(await texts(b));
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('screenshots of the demo page (docs/demo.png, docs/demo-narrow.png)', async ({ browser, startDemo }) => {
  const demo = await startDemo();
  await mkdir(DOCS, { recursive: true });
  const wide = await browser.newContext({ viewport: { width: 900, height: 640 }, deviceScaleFactor: 1 });
  const other = await browser.newContext();
  try {
    const page = await wide.newPage();
    const friend = await other.newPage();
    await openChat(page, `${demo.origin}/?name=Ada`);
    await openChat(friend, `${demo.origin}/?name=Grace`);
    const script: Array<[typeof page, string]> = [
      [friend, 'Morning! Is the channel up behind the office proxy?'],
      [page, 'Yes: plain HTTP long polls, so it goes wherever browsing goes.'],
      [friend, 'And if my laptop drops off the Wi-Fi for a bit?'],
      [page, 'The session waits for you. Missed messages arrive once, in order.'],
      [friend, 'Nice. Opening a few more tabs now.'],
      [page, 'They share one session: one poll for all of them.'],
    ];
    const shown: string[] = [];
    for (const [p, text] of script) {
      await postViaForm(p, text);
      shown.push(text);
      await expectMessages(page, shown);
    }
    await expect(page.locator('#rtt')).toHaveText(/^\d+ ms$/);
    await page.locator('#text').blur();
    await page.screenshot({ path: join(DOCS, 'demo.png') });

    const narrow = await wide.newPage();
    await narrow.setViewportSize({ width: 390, height: 760 });
    await openChat(narrow, `${demo.origin}/?name=Ada`);
    await expectMessages(narrow, shown);
    // Nothing sticks out sideways on a phone-sized screen.
    const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await narrow.screenshot({ path: join(DOCS, 'demo-narrow.png') });
  } finally {
    await wide.close();
    await other.close();
  }
});
