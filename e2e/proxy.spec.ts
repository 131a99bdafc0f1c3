// The page behind a real forward proxy: Chromium sends everything, loopback
// included, through squid. Chat works, and squid's access log shows the polls
// (held ones too) passed through it. squid's read_timeout answers a poll held
// longer than it with 504, so the server's hold stays below it.
import { chromium } from '@playwright/test';
import { startSquid, type SquidProxy } from '../test/middlebox/squid.js';
import { CHROMIUM_ARGS, CHROMIUM_PATH, TEST_HOLDLINE, test, expect, expectMessages, openChat, postViaForm } from './fixtures.js';

const READ_TIMEOUT_SEC = 10;

test('behind squid: chat works and the polls pass through the proxy', async ({ startDemo }) => {
  test.setTimeout(60_000);
  expect(TEST_HOLDLINE.pollTimeoutMs).toBeLessThan(READ_TIMEOUT_SEC * 1000);
  let squid: SquidProxy | undefined;
  const demo = await startDemo();
  try {
    squid = await startSquid({ readTimeoutSec: READ_TIMEOUT_SEC });
    const browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      // <-loopback>: do not bypass the proxy for loopback (Chromium does by default).
      args: [...CHROMIUM_ARGS, `--proxy-server=${squid.url}`, '--proxy-bypass-list=<-loopback>'],
    });
    try {
      const a = await (await browser.newContext()).newPage();
      const b = await (await browser.newContext()).newPage();
      await openChat(a, `${demo.origin}/?name=a`);
      await openChat(b, `${demo.origin}/?name=b`);
      const sent: string[] = [];
      for (let i = 1; i <= 3; i++) {
        await postViaForm(a, `through the proxy ${i} from a`);
        sent.push(`through the proxy ${i} from a`);
        await expectMessages(b, sent);
        await postViaForm(b, `through the proxy ${i} from b`);
        sent.push(`through the proxy ${i} from b`);
        await expectMessages(a, sent);
      }
      // Let a few polls be held to the end of their hold and answered empty.
      const poll = `${demo.origin}/holdline/poll`;
      const held = await squid.waitForAccessEntry(
        (e) => e.method === 'POST' && e.url === poll && e.httpStatus === 200 && e.elapsedMs >= TEST_HOLDLINE.pollTimeoutMs - 500,
        TEST_HOLDLINE.pollTimeoutMs * 3,
      );
      expect(held.hierarchy).toBe('HIER_DIRECT');
      await expectMessages(a, sent);
      await expectMessages(b, sent);
      expect(demo.stats().sessions).toBe(2);
    } finally {
      await browser.close();
    }
    const log = await squid.accessLog();
    const count = (path: string) => log.filter((e) => e.method === 'POST' && e.url === `${demo.origin}/holdline${path}` && e.httpStatus === 200).length;
    // The page itself came through squid (squid logs URLs without their query).
    expect(log.some((e) => e.method === 'GET' && e.url === `${demo.origin}/?` && e.httpStatus === 200)).toBe(true);
    expect(log.some((e) => e.method === 'GET' && e.url === `${demo.origin}/lib/holdline-tabs.js` && e.httpStatus === 200)).toBe(true);
    expect(count('/open')).toBe(2);
    expect(count('/send')).toBeGreaterThanOrEqual(2);
    expect(count('/poll')).toBeGreaterThanOrEqual(6);
    // Every poll the server answered went through squid, none was cut.
    expect(log.filter((e) => e.httpStatus === 504)).toEqual([]);
    expect(count('/poll')).toBeLessThanOrEqual(demo.stats().requests['POST /poll'] ?? 0);
    // Chromium's own background requests (autofill, accounts, updates) reach
    // squid too; its loopback-only rules refuse them without a connection.
    const elsewhere = log.filter((e) => !e.url.startsWith('http://127.0.0.1:'));
    for (const e of elsewhere) expect(e, e.raw).toMatchObject({ squidStatus: 'TCP_DENIED', hierarchy: 'HIER_NONE', peer: null });
    console.log(`squid passed ${count('/poll')} polls, ${count('/send')} sends; server saw ${demo.stats().requests['POST /poll']} polls`);
  } finally {
    await squid?.stop();
  }
});
