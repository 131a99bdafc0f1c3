// Early polls in Chromium: a burst of large batches from the server reaches a
// page's client exactly once, in order, and the page sends early polls (a poll
// with "from", sent on reading a large answer's Holdline-Next header) along the
// way. The page's fetch is wrapped to see the poll bodies it sends.
import { test, expect } from './fixtures.js';

test('a large burst arrives once, in order, with early polls from the page', async ({ page, startDemo }) => {
  test.setTimeout(60_000);
  const demo = await startDemo();
  // Any same-origin document will do: the chat page would open a client of its own.
  await page.goto(`${demo.origin}/stats`);
  const sid = await page.evaluate(async (url) => {
    const w = window as unknown as { __got: string[]; __fromPolls: number; __polls: number };
    w.__got = [];
    w.__fromPolls = 0;
    w.__polls = 0;
    const realFetch = window.fetch.bind(window);
    window.fetch = (input: RequestInfo | URL, init?: RequestInit) => {
      if (String(input).endsWith('/poll') && typeof init?.body === 'string') {
        w.__polls++;
        if (init.body.includes('"from":')) w.__fromPolls++;
      }
      return realFetch(input, init);
    };
    const lib = (await import('/lib/holdline.js' as string)) as typeof import('../client/browser.js');
    // Polling only: this test is about polls (on a WebSocket the burst would come as frames).
    const c = new lib.HoldlineClient(url, { transports: ['polling'] });
    // Only the burst: the demo server greets each session with its chat history first.
    c.on('message', (m) => {
      if (typeof m === 'string' && /^\d{6}:/.test(m)) w.__got.push(m);
    });
    await c.connect();
    const id = c.sessionId;
    if (id === undefined) throw new Error('connect() resolved with no session id');
    return id;
  }, demo.channelUrl);
  const session = demo.holdline.session(sid);
  if (session === undefined) throw new Error('the page\'s session is not on the server');
  const expected = Array.from({ length: 3000 }, (_, i) => `${String(i).padStart(6, '0')}:${'p'.repeat(93)}`); // 100 bytes each
  // In bursts of 500 (50 KB: answers carry Holdline-Next), each sent once the last one is written.
  for (let i = 0; i < expected.length; i += 500) {
    await Promise.all(expected.slice(i, i + 500).map((m) => session.send(m)));
  }
  await expect
    .poll(() => page.evaluate(() => (window as unknown as { __got: string[] }).__got.length), { timeout: 30_000 })
    .toBe(expected.length);
  const got = await page.evaluate(() => (window as unknown as { __got: string[] }).__got);
  expect(got).toEqual(expected);
  const { fromPolls, polls } = await page.evaluate(() => {
    const w = window as unknown as { __fromPolls: number; __polls: number };
    return { fromPolls: w.__fromPolls, polls: w.__polls };
  });
  console.log(`page polls: ${polls}, early (with from): ${fromPolls}`);
  expect(fromPolls, 'the page sent early polls').toBeGreaterThan(0);
});
