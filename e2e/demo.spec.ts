// The demo as a first-time user meets it: `npm start` on a port that is
// taken says so in one line; the counters agree with the page; a tab closing
// reads as a normal event and the session count follows within seconds; the
// name follows the user from tab to tab.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from '@playwright/test';
import { test, expect, expectMessages, openChat, postViaForm } from './fixtures.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function note(page: Page): Promise<string> {
  return page.locator('#note').innerText();
}

test('npm start on a port in use: one line naming PORT, exit code 1', async () => {
  const taken = net.createServer();
  await new Promise<void>((ok) => taken.listen(0, '127.0.0.1', ok));
  const { port } = taken.address() as net.AddressInfo;
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'e2e', 'demo-server.ts')], {
      cwd: ROOT,
      env: { ...process.env, PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((ok) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.once('exit', (c) => {
        clearTimeout(timer);
        ok(c);
      });
    });
    expect(code).toBe(1);
    const lines = stderr.trim().split('\n');
    expect(lines, stderr).toHaveLength(1);
    expect(lines[0]).toContain(`Port ${port}`);
    expect(lines[0]).toMatch(/\bPORT=\d+ npm start\b/);
    expect(stderr).not.toMatch(/EADDRINUSE|\n\s+at /);
    expect(stdout).not.toContain('open http');
  } finally {
    await new Promise((ok) => taken.close(ok));
  }
});

test('Sent and Received count the chat messages the page shows', async ({ browser, startDemo }) => {
  const demo = await startDemo();
  const alice = await browser.newContext();
  const bob = await browser.newContext();
  try {
    const a = await alice.newPage();
    const b = await bob.newPage();
    await openChat(a, `${demo.origin}/?name=alice`);
    // Open, history asked for and presence received: still nothing to show, and the counters say so.
    await expect(a.locator('#empty')).toBeVisible();
    await a.waitForTimeout(500);
    await expect(a.locator('#sent')).toHaveText('0');
    await expect(a.locator('#received')).toHaveText('0');

    await postViaForm(a, 'one');
    await postViaForm(a, 'two');
    await expectMessages(a, ['one', 'two']);
    await expect(a.locator('#sent')).toHaveText('2');
    await expect(a.locator('#received')).toHaveText('2');
    await expect(a.locator('#empty')).toBeHidden();

    // A newcomer gets the history: it shows two messages, received two, sent none.
    await openChat(b, `${demo.origin}/?name=bob`);
    await expectMessages(b, ['one', 'two']);
    await expect(b.locator('#received')).toHaveText('2');
    await expect(b.locator('#sent')).toHaveText('0');
    await postViaForm(b, 'three');
    await expectMessages(a, ['one', 'two', 'three']);
    await expect(a.locator('#received')).toHaveText('3');
    await expect(a.locator('#sent')).toHaveText('2');
    await expect(b.locator('#sent')).toHaveText('1');
    await expect(b.locator('#received')).toHaveText('3');
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('a tab closing: the session count drops within seconds, and the other pages say so', async ({ browser, startDemo }) => {
  // The idle timeout is far away: only the page's leave can close the session that quickly.
  const demo = await startDemo({ holdline: { sessionIdleTimeoutMs: 120_000 } });
  const alice = await browser.newContext();
  const bob = await browser.newContext();
  try {
    const a = await alice.newPage();
    const b = await bob.newPage();
    await openChat(a, `${demo.origin}/?name=alice`);
    await openChat(b, `${demo.origin}/?name=bob`);
    await expect.poll(() => note(a), { timeout: 10_000 }).toMatch(/^2 sessions on the server/);
    // b's own stream says so too: its welcome (the key its leave needs) came before that, in order.
    await expect.poll(() => note(b), { timeout: 10_000 }).toMatch(/^2 sessions on the server/);
    await b.close({ runBeforeUnload: true });
    // All three, so that a failure says which step did not happen: the beacon, its key, the close.
    const left = () => {
      const s = demo.stats();
      return { leaveRequests: s.leaveRequests, sessionsLeft: s.sessionsLeft, sessions: s.sessions };
    };
    await expect.poll(left, { timeout: 5_000 }).toEqual({ leaveRequests: 1, sessionsLeft: 1, sessions: 1 });
    await expect.poll(() => note(a), { timeout: 5_000 }).toMatch(/^1 session on the server/);
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('the leading tab closing: the other tab goes on with the same session and says so; the session stays open', async ({ browser, startDemo }) => {
  const demo = await startDemo({ holdline: { sessionIdleTimeoutMs: 120_000 } });
  const tabs = await browser.newContext();
  try {
    const t1 = await tabs.newPage();
    const t2 = await tabs.newPage();
    await openChat(t1, `${demo.origin}/`);
    await openChat(t2, `${demo.origin}/`);
    await expect(t1.locator('#role')).toHaveText('leader');
    await expect(t2.locator('#role')).toHaveText('follower');
    const sid = await t1.locator('#session').getAttribute('title');
    await t1.close({ runBeforeUnload: true });
    await expect(t2.locator('#role')).toHaveText('leader', { timeout: 15_000 });
    await expect.poll(() => note(t2), { timeout: 10_000 }).toMatch(/^Another tab closed: this tab holds the session now, nothing lost\.$/);
    await expect(t2.locator('#session')).toHaveAttribute('title', sid ?? '');
    // The leaving tab did not close the session others go on with (no leave beacon), and no new one was opened.
    expect(demo.stats()).toMatchObject({ sessions: 1, sessionsOpened: 1, sessionsLeft: 0 });
    await postViaForm(t2, 'still here');
    await expectMessages(t2, ['still here']);
  } finally {
    await tabs.close();
  }
});

test("a tab's name follows the user: a second tab gets it, a change shows in the other tab", async ({ browser, startDemo }) => {
  const demo = await startDemo();
  const ctx = await browser.newContext();
  const other = await browser.newContext();
  try {
    const t1 = await ctx.newPage();
    await openChat(t1, `${demo.origin}/`);
    const name = await t1.locator('#name').inputValue();
    expect(name).toMatch(/^guest-[0-9a-f]{4}$/);

    const t2 = await ctx.newPage();
    await openChat(t2, `${demo.origin}/`);
    await expect(t2.locator('#name')).toHaveValue(name);
    await postViaForm(t2, 'from the second tab');
    await expect.poll(() => demo.history().map((m) => m.name)).toEqual([name]);

    await t1.fill('#name', 'ada');
    await t1.locator('#name').blur();
    await expect(t2.locator('#name')).toHaveValue('ada');
    const t3 = await ctx.newPage();
    await openChat(t3, `${demo.origin}/`);
    await expect(t3.locator('#name')).toHaveValue('ada');

    // Another browser is another user.
    const o = await other.newPage();
    await openChat(o, `${demo.origin}/`);
    await expect(o.locator('#name')).not.toHaveValue('ada');
    await expect(o.locator('#name')).not.toHaveValue(name);
  } finally {
    await ctx.close();
    await other.close();
  }
});
