// The page on one origin, the Holdline server on another, allowed by the
// server's `allowedOrigins`. Requests are CORS-simple (text/plain POSTs, no
// custom headers), so polls cost no preflight: the server counts OPTIONS
// requests and there are none, however many polls go by.
import { test, expect, events, expectMessages, openChat, postViaForm, states } from './fixtures.js';

function optionsCount(requests: Record<string, number>): number {
  return Object.entries(requests).reduce((n, [k, v]) => (k.startsWith('OPTIONS ') ? n + v : n), 0);
}

test('cross-origin: works with allowedOrigins, and polls cost no preflight', async ({ browser, startDemo }) => {
  test.setTimeout(60_000);
  // The page's origin: http://127.0.0.1:A. Its own /holdline is not used.
  const site = await startDemo();
  // The channel's origin: http://localhost:B (another host and port).
  const api = await startDemo({ holdline: { allowedOrigins: [site.origin], pollTimeoutMs: 1_000 } });
  const channel = `http://localhost:${api.port}/holdline`;
  // transports=polling: this test counts polls (a WebSocket would carry the session instead).
  const page = (name: string) => `${site.origin}/?name=${name}&transports=polling&server=${encodeURIComponent(channel)}`;

  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  try {
    const a = await ctxA.newPage();
    const b = await ctxB.newPage();
    await openChat(a, page('a'));
    await openChat(b, page('b'));
    expect(api.stats().sessions).toBe(2);
    expect(Object.keys(site.stats().requests)).toEqual([]);
    expect(await a.evaluate(() => location.origin)).toBe(site.origin);

    const sent: string[] = [];
    for (let i = 1; i <= 3; i++) {
      await postViaForm(a, `cross-origin ${i} from a`);
      sent.push(`cross-origin ${i} from a`);
      await postViaForm(b, `cross-origin ${i} from b`);
      sent.push(`cross-origin ${i} from b`);
    }
    await expectMessages(a, sent);
    await expectMessages(b, sent);

    // Let many polls go by (1 s holds).
    const pollsAt = () => api.stats().requests['POST /poll'] ?? 0;
    const before = pollsAt();
    await expect.poll(pollsAt, { timeout: 20_000, intervals: [500] }).toBeGreaterThanOrEqual(before + 12);
    const { requests } = api.stats();
    console.log(`cross-origin requests: ${JSON.stringify(requests)}`);
    expect(requests['POST /poll']).toBeGreaterThanOrEqual(before + 12);
    expect(optionsCount(requests)).toBe(0);
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});

test('cross-origin: an origin off the allow-list gets no session', async ({ browser, startDemo }) => {
  const site = await startDemo();
  const api = await startDemo({ holdline: { allowedOrigins: ['http://allowed.example'] } });
  const ctx = await browser.newContext();
  try {
    const p = await ctx.newPage();
    await p.goto(`${site.origin}/?server=${encodeURIComponent(`http://localhost:${api.port}/holdline`)}`);
    // The refusal is readable cross-origin, so the client stops at once with the code: no retry loop.
    await expect
      .poll(async () => (await events(p, 'error')).map((e) => e.code), { timeout: 10_000 })
      .toContain('origin_not_allowed');
    await expect.poll(() => states(p), { timeout: 5_000 }).toContain('closed');
    expect(await states(p)).not.toContain('open');
    expect(api.stats().requests['POST /open']).toBe(1);
    expect(api.stats().sessionsOpened).toBe(0);
    expect(optionsCount(api.stats().requests)).toBe(0);
  } finally {
    await ctx.close();
  }
});
