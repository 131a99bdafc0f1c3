// The server restarts (stopped, and a new one started on the same port; the
// store is in memory, so the session is gone): the page shows the reset,
// joins a new session, and keeps working.
import { test, expect, events, expectMessages, openChat, postViaForm, states, waitForState } from './fixtures.js';

test('server restart: the page shows the reset, rejoins, and keeps working', async ({ browser, startDemo }) => {
  const first = await startDemo();
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  try {
    const a = await ctxA.newPage();
    const b = await ctxB.newPage();
    await openChat(a, `${first.origin}/?name=a`);
    await openChat(b, `${first.origin}/?name=b`);
    await postViaForm(a, 'before the restart');
    await expectMessages(b, ['before the restart']);
    const oldSession = await a.locator('#session').getAttribute('title');
    const statesBefore = (await states(a)).length;

    await first.stop();
    // The pages notice at once (their held polls get the shutdown close frame).
    await expect.poll(async () => (await states(a)).slice(statesBefore), { timeout: 5_000 }).toContain('reconnecting');
    // Down for a moment: the pages' attempts to open a new session are refused.
    await a.waitForTimeout(1_000);
    const second = await startDemo({ port: first.port });
    expect(second.port).toBe(first.port);

    await waitForState(a, 'open', 20_000);
    await waitForState(b, 'open', 20_000);
    await expect(a.locator('#session')).not.toHaveAttribute('title', oldSession ?? '');
    const resets = await events(a, 'reset');
    expect(resets).toHaveLength(1);
    expect(resets[0]).toMatchObject({ previousSessionId: oldSession, code: 'server_shutdown' });
    await expect(a.locator('#note')).toContainText('The server restarted: new session');
    await expect.poll(() => second.stats().sessions, { timeout: 10_000 }).toBe(2);

    // Still working, both ways. The old message stays on the page (the new
    // server has no history); new ones follow it, each once.
    await postViaForm(a, 'after the restart, from a');
    await postViaForm(b, 'after the restart, from b');
    const after = ['after the restart, from a', 'after the restart, from b'];
    await expect.poll(() => second.history().map((m) => m.text), { timeout: 10_000 }).toEqual(after);
    await expectMessages(a, ['before the restart', ...after]);
    await expectMessages(b, ['before the restart', ...after]);
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});
