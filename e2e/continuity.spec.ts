// Continuity in Chromium: a page reloaded mid-stream with `resume: 'session'`
// goes on with the same session, and a page frozen (Page Lifecycle) for
// longer than the hold resumes it; nothing is lost or repeated either way.
import type { Page } from '@playwright/test';
import { test, expect, events, openChat } from './fixtures.js';

/** Post `count` messages from inside the page; each one queued is noted in sessionStorage (it survives the reload). */
function postLoop(page: Page, prefix: string, count: number, everyMs: number): Promise<void> {
  return page
    .evaluate(
      async ({ prefix, count, everyMs }) => {
        const chat = (window as unknown as { __chat: { post(text: string): Promise<string> } }).__chat;
        for (let i = 1; i <= count; i++) {
          await chat.post(`${prefix} ${i}`);
          sessionStorage.setItem('lastQueued', String(i));
          await new Promise((r) => setTimeout(r, everyMs));
        }
      },
      { prefix, count, everyMs },
    )
    .catch(() => undefined); // the page reloads under it
}

function chatSeen(page: Page): Promise<number[]> {
  return page.evaluate(() => (window as unknown as { __chatSeen: number[] }).__chatSeen.slice());
}

test('reload mid-stream with resume: session: the same session goes on, nothing lost or repeated', async ({ browser, startDemo }) => {
  test.setTimeout(60_000);
  // The whole chat is checked: the demo's history must not drop its oldest (100 by default;
  // on a loaded machine the page posts more before the reload takes effect).
  const demo = await startDemo({ historySize: 10_000 });
  const mine = await browser.newContext();
  const others = await browser.newContext();
  try {
    const page = await mine.newPage();
    const other = await others.newPage();
    const url = `${demo.origin}/?name=reloader&share=0&resume=session&transports=polling`;
    await openChat(page, url);
    await openChat(other, `${demo.origin}/?name=other&share=0`);
    const sid = await page.locator('#session').getAttribute('title');
    expect(sid).toBeTruthy();

    // Both directions flow while the page reloads.
    const fromOther = postLoop(other, 'other says', 40, 50);
    void postLoop(page, 'reloader says', 1000, 20);
    // Mid-stream: some of the page's messages are through, more are coming. Counted, not
    // timed: on a loaded machine each post's round trip takes longer.
    const queued = () => page.evaluate(() => Number(sessionStorage.getItem('lastQueued')));
    await expect.poll(queued, { timeout: 15_000 }).toBeGreaterThanOrEqual(10);
    await page.reload();
    await expect(page.locator('#state')).toHaveText('open', { timeout: 15_000 });
    await fromOther;

    // The same session, resumed: no new session, no reset.
    await expect(page.locator('#session')).toHaveAttribute('title', sid ?? '');
    expect(await events(page, 'reset')).toEqual([]);
    expect(await events(page, 'open')).toEqual([expect.objectContaining({ sessionId: sid, resumed: true })]);
    expect(demo.stats().sessionsOpened).toBe(2);

    // Page to server: every message queued before the reload arrives once, in order (re-sent only if unacknowledged).
    const lastQueued = await queued();
    await expect
      .poll(() => demo.history().filter((m) => m.text.startsWith('reloader says')).length, { timeout: 15_000 })
      .toBeGreaterThanOrEqual(lastQueued);
    const mineAtServer = demo.history().filter((m) => m.text.startsWith('reloader says')).map((m) => m.text);
    expect(mineAtServer).toEqual(Array.from({ length: mineAtServer.length }, (_, i) => `reloader says ${i + 1}`));
    expect(demo.stats().duplicatesDropped).toBe(0);

    // Server to page: every chat message once across the two lives of the page, in order.
    const total = demo.history().length;
    await expect.poll(async () => (await chatSeen(page)).length, { timeout: 15_000 }).toBeGreaterThanOrEqual(total);
    const seen = await chatSeen(page);
    expect(seen).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  } finally {
    await mine.close();
    await others.close();
  }
});

test('frozen past its poll deadline (Page Lifecycle): the same session resumes, nothing lost, no false death', async ({ browser, startDemo }) => {
  test.setTimeout(60_000);
  const demo = await startDemo(); // holds of 4 s; a poll's deadline is its hold + 5 s
  const mine = await browser.newContext();
  const others = await browser.newContext();
  try {
    const page = await mine.newPage();
    const other = await others.newPage();
    await openChat(page, `${demo.origin}/?name=sleeper&share=0&transports=polling`);
    await openChat(other, `${demo.origin}/?name=other&share=0`);
    const sid = await page.locator('#session').getAttribute('title');
    await page.evaluate(() => {
      const w = window as unknown as { __lifecycle: string[] };
      w.__lifecycle = [];
      document.addEventListener('freeze', () => w.__lifecycle.push('freeze'));
      document.addEventListener('resume', () => w.__lifecycle.push('resume'));
    });

    // Freeze it as Chrome does (Page.setWebLifecycleState). Headless Chromium
    // ignores that for a page that is visible (no freeze event, timers go on),
    // so its script is also stopped, as a frozen page's is, with the debugger.
    const cdp = await mine.newCDPSession(page);
    await cdp.send('Page.setWebLifecycleState', { state: 'frozen' });
    await cdp.send('Debugger.enable');
    await cdp.send('Debugger.pause');
    const frozenAt = Date.now();
    const posted = postLoop(other, 'while frozen', 15, 400);
    await other.waitForTimeout(11_000); // past the poll's deadline: its timer runs late on thaw
    await cdp.send('Debugger.resume');
    await cdp.send('Page.setWebLifecycleState', { state: 'active' });
    const thawedAt = Date.now();
    await posted;
    const lifecycle = await page.evaluate(() => (window as unknown as { __lifecycle: string[] }).__lifecycle);
    // Where Chromium did not freeze the page itself, tell it what Chrome tells a thawed page.
    if (!lifecycle.includes('resume')) await page.evaluate(() => document.dispatchEvent(new Event('resume')));
    expect(thawedAt - frozenAt).toBeGreaterThanOrEqual(11_000);

    const total = demo.history().length;
    expect(total).toBe(15);
    await expect.poll(async () => (await chatSeen(page)).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(total);
    expect(await chatSeen(page)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    await expect(page.locator('#session')).toHaveAttribute('title', sid ?? '');
    expect(await events(page, 'reset')).toEqual([]);
    expect(demo.stats().sessionsOpened).toBe(2);
    // The poll deadline that fired late was not taken for a death: the hold stands.
    const stats = await page.evaluate(() => (window as unknown as { __holdline: { stats: { silentDeaths?: number; holdMs: number } } }).__holdline.stats);
    expect(stats).toMatchObject({ silentDeaths: 0, holdMs: 4_000 });

    // And it goes on: a post from the thawed page reaches the server.
    await page.evaluate(() => (window as unknown as { __chat: { post(t: string): Promise<string> } }).__chat.post('awake'));
    await expect.poll(() => demo.history().map((m) => m.text).at(-1), { timeout: 10_000 }).toBe('awake');
  } finally {
    await mine.close();
    await others.close();
  }
});
