// Tabs share a channel: three tabs of one browser run one Holdline session
// (the leader's); closing the leader tab hands the SAME session over to
// another tab without losing or repeating a message either way.
import type { Page } from '@playwright/test';
import { test, expect, events, expectMessages, openChat, postViaForm, texts } from './fixtures.js';

function chatSeen(page: Page): Promise<number[]> {
  return page.evaluate(() => (window as unknown as { __chatSeen: number[] }).__chatSeen.slice());
}

function role(page: Page): Promise<string | null> {
  return page.locator('#role').textContent();
}

/** Post `count` messages from inside the page, one every `everyMs`, without waiting for the UI. */
function postLoop(page: Page, prefix: string, count: number, everyMs: number): Promise<void> {
  return page.evaluate(
    async ({ prefix, count, everyMs }) => {
      const chat = (window as unknown as { __chat: { post(text: string): Promise<string> } }).__chat;
      for (let i = 1; i <= count; i++) {
        await chat.post(`${prefix} ${i}`);
        await new Promise((r) => setTimeout(r, everyMs));
      }
    },
    { prefix, count, everyMs },
  );
}

test('three tabs share one session; closing the leader tab loses nothing', async ({ browser, startDemo }) => {
  test.setTimeout(60_000);
  const demo = await startDemo();
  const tabs = await browser.newContext();
  const elsewhere = await browser.newContext();
  try {
    const [t1, t2, t3] = [await tabs.newPage(), await tabs.newPage(), await tabs.newPage()];
    const other = await elsewhere.newPage();
    for (const t of [t1, t2, t3]) await openChat(t, `${demo.origin}/?name=tabs`);
    await openChat(other, `${demo.origin}/?name=other`);

    // One session for the three tabs (plus the other browser's).
    expect(demo.stats()).toMatchObject({ sessions: 2, sessionsOpened: 2 });
    expect(await role(t1)).toBe('leader');
    expect(await role(t2)).toBe('follower');
    expect(await role(t3)).toBe('follower');
    const shared = await t1.locator('#session').getAttribute('title');
    for (const t of [t2, t3]) await expect(t.locator('#session')).toHaveAttribute('title', shared ?? '');

    // Every tab can post and sees everything, like the other browser.
    const posts = [[t1, 'hello from tab 1'], [t2, 'hello from tab 2'], [t3, 'hello from tab 3'], [other, 'hello from elsewhere']] as const;
    const hello: string[] = posts.map(([, text]) => text);
    for (const [page, text] of posts) {
      await postViaForm(page, text);
      for (const p of [t1, t2, t3, other]) await expectMessages(p, hello.slice(0, hello.indexOf(text) + 1));
    }

    // Followers and the other browser keep posting while the leader tab closes.
    const loops = Promise.all([
      postLoop(t2, 'tab 2 says', 25, 40),
      postLoop(t3, 'tab 3 says', 25, 40),
      postLoop(other, 'elsewhere says', 10, 100),
    ]);
    await t2.waitForTimeout(300);
    await t1.close();
    await loops;

    // Another tab leads, on the SAME session: no new session, no reset.
    await expect.poll(async () => [await role(t2), await role(t3)].sort(), { timeout: 15_000 }).toEqual(['follower', 'leader']);
    await expect(t2.locator('#session')).toHaveAttribute('title', shared ?? '');
    await expect(t3.locator('#session')).toHaveAttribute('title', shared ?? '');
    expect(demo.stats().sessionsOpened).toBe(2);
    for (const t of [t2, t3]) expect(await events(t, 'reset')).toEqual([]);
    // Each remaining tab heard of the change of leader: itself, or the other.
    const selves = [...(await events(t2, 'leader')), ...(await events(t3, 'leader'))].map((e) => e.self).sort();
    expect(selves).toEqual([false, true]);

    // Nothing lost, nothing twice, each tab's messages in the order it sent them.
    const expectedCount = hello.length + 25 + 25 + 10;
    await expect.poll(() => demo.history().length, { timeout: 15_000 }).toBe(expectedCount);
    const order = demo.history().map((m) => m.text);
    expect(new Set(order).size).toBe(order.length);
    for (const [prefix, n] of [['tab 2 says', 25], ['tab 3 says', 25], ['elsewhere says', 10]] as const) {
      expect(order.filter((t) => t.startsWith(prefix))).toEqual(Array.from({ length: n }, (_, i) => `${prefix} ${i + 1}`));
    }
    for (const p of [t2, t3, other]) await expectMessages(p, order);
    // Every chat message reached each remaining tab once, in order, across the handover.
    for (const t of [t2, t3]) expect(await chatSeen(t)).toEqual(Array.from({ length: order.length }, (_, i) => i + 1));

    // And they keep chatting on the new session.
    await postViaForm(t3, 'still here');
    for (const p of [t2, t3, other]) await expectMessages(p, [...order, 'still here']);
    expect(await texts(t2)).toEqual(await texts(t3));
    // The transport repeated nothing across the handover: the demo dropped no post as seen before.
    expect(demo.stats().duplicatesDropped).toBe(0);
  } finally {
    await tabs.close();
    await elsewhere.close();
  }
});

test('two tabs: the leader closes mid-stream; the other resumes the same session, nothing lost or repeated either way', async ({ browser, startDemo }) => {
  test.setTimeout(60_000);
  const demo = await startDemo();
  const tabs = await browser.newContext();
  const elsewhere = await browser.newContext();
  try {
    const [t1, t2] = [await tabs.newPage(), await tabs.newPage()];
    const other = await elsewhere.newPage();
    for (const t of [t1, t2]) await openChat(t, `${demo.origin}/?name=pair`);
    await openChat(other, `${demo.origin}/?name=other`);
    expect(await role(t1)).toBe('leader');
    const shared = await t1.locator('#session').getAttribute('title');

    // Both directions flow while the leader tab closes.
    const loops = Promise.all([postLoop(t2, 'tab 2 says', 30, 30), postLoop(other, 'elsewhere says', 30, 40)]);
    await t2.waitForTimeout(300);
    await t1.close();
    await loops;

    await expect.poll(() => role(t2), { timeout: 15_000 }).toBe('leader');
    await expect(t2.locator('#session')).toHaveAttribute('title', shared ?? '');
    expect(demo.stats().sessionsOpened).toBe(2);
    expect(await events(t2, 'reset')).toEqual([]);
    expect(await events(t2, 'leader')).toEqual([expect.objectContaining({ self: true, sessionId: shared })]);

    await expect.poll(() => demo.history().length, { timeout: 15_000 }).toBe(60);
    const order = demo.history().map((m) => m.text);
    for (const prefix of ['tab 2 says', 'elsewhere says']) {
      expect(order.filter((t) => t.startsWith(prefix))).toEqual(Array.from({ length: 30 }, (_, i) => `${prefix} ${i + 1}`));
    }
    // The transport repeated nothing across the handover: the demo dropped no post as seen before.
    expect(demo.stats().duplicatesDropped).toBe(0);
    await expect.poll(async () => (await chatSeen(t2)).length, { timeout: 15_000 }).toBeGreaterThanOrEqual(60);
    expect(await chatSeen(t2)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
  } finally {
    await tabs.close();
    await elsewhere.close();
  }
});
