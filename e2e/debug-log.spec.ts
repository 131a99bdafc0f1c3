// Debug logging in the browser bundle: off by default (nothing on the
// console), on with localStorage.debug = 'holdline:*' (the `debug` package's
// browser convention), and never a payload in what it prints.
import { test, expect } from './fixtures.js';

test('the bundle logs to the console only when localStorage.debug enables it, and never a payload', async ({ page, startDemo }) => {
  test.setTimeout(60_000);
  const demo = await startDemo();
  const consoleLines: string[] = [];
  page.on('console', (m) => consoleLines.push(m.text()));
  await page.goto(`${demo.origin}/stats`);
  const run = (url: string) =>
    page.evaluate(async (u) => {
      const lib = (await import('/lib/holdline.js' as string)) as typeof import('../client/browser.js');
      const c = new lib.HoldlineClient(u, { transports: ['polling'] });
      await c.connect();
      await c.send('PAYLOAD-never-in-the-log');
      await c.close();
      return c.stats.messagesSent;
    }, url);

  expect(await run(demo.channelUrl)).toBe(1);
  expect(consoleLines.filter((l) => l.includes('holdline:'))).toEqual([]);

  await page.evaluate(() => localStorage.setItem('debug', 'holdline:*'));
  await page.reload();
  expect(await run(demo.channelUrl)).toBe(1);
  const logged = consoleLines.filter((l) => l.includes('holdline:client'));
  // Chromium reports the unformatted arguments: '%choldline:client %c%s -> %s%s%c ... connecting open  (session …)'.
  expect(logged.some((l) => /connecting open +\(session /.test(l))).toBe(true);
  expect(logged.some((l) => /closed: .*client_closed/.test(l))).toBe(true);
  expect(consoleLines.some((l) => l.includes('PAYLOAD-never-in-the-log'))).toBe(false);
});
