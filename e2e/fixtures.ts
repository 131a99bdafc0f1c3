/**
 * Shared pieces of the browser tests: the Chromium launch settings, a demo
 * server per test, and bounded helpers to read the page.
 */
import { test as base, expect, type Page } from '@playwright/test';
export { CHROMIUM_ARGS, CHROMIUM_PATH } from './chromium.js';
import { startDemoServer, type DemoServer, type DemoServerOptions } from './demo-server.js';

/** Short holds so that tests see many polls; the session outlives a 10 s outage. */
export const TEST_HOLDLINE = { pollTimeoutMs: 4_000, sessionIdleTimeoutMs: 30_000 } as const;

export interface Fixtures {
  /** Start a demo server on 127.0.0.1, port 0 unless given; stopped after the test. */
  startDemo: (options?: DemoServerOptions) => Promise<DemoServer>;
}

export const test = base.extend<Fixtures>({
  // Playwright reads a fixture's dependencies from its first parameter's destructuring: none here.
  // eslint-disable-next-line no-empty-pattern
  startDemo: async ({}, use) => {
    const started: DemoServer[] = [];
    await use(async (options = {}) => {
      const demo = await startDemoServer({
        host: '127.0.0.1',
        port: 0,
        buildBundle: false,
        ...options,
        holdline: { ...TEST_HOLDLINE, ...options.holdline },
      });
      started.push(demo);
      return demo;
    });
    await Promise.all(started.map((d) => d.stop()));
  },
});

export { expect };

/** The texts of the chat messages shown, in page order. */
export function texts(page: Page): Promise<string[]> {
  return page.$$eval('#log li.msg .text', (els) => els.map((e) => e.textContent ?? ''));
}

/** Wait (bounded) until the page's state pill shows `state`. */
export async function waitForState(page: Page, state: string, timeout = 15_000): Promise<void> {
  await expect(page.locator('#state')).toHaveText(state, { timeout });
}

/** Post through the page's form, as a person would. */
export async function postViaForm(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

/** The state transitions the page recorded (window.__states). */
export function states(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { __states: string[] }).__states.slice());
}

/** Page-recorded events of one type (window.__events). */
export function events(page: Page, type: string): Promise<Array<Record<string, unknown>>> {
  return page.evaluate(
    (t) => (window as unknown as { __events: Array<Record<string, unknown>> }).__events.filter((e) => e.type === t),
    type,
  );
}

/** Open the demo page and wait until its channel is open. */
export async function openChat(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await waitForState(page, 'open');
}

/** Assert that `page` shows exactly `expected` (each once, in this order), waiting for it (bounded). */
export async function expectMessages(page: Page, expected: readonly string[], timeout = 15_000): Promise<void> {
  await expect.poll(() => texts(page), { timeout, intervals: [100, 200, 250] }).toEqual(expected);
}
