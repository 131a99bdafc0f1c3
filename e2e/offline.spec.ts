// One browser goes offline for 10 s while the other keeps posting: the page
// shows `reconnecting`, and once back online every missed message appears
// once, in order, on the same session.
import { test, expect, events, expectMessages, openChat, postViaForm, states, waitForState } from './fixtures.js';

test('offline for 10 s: reconnecting shown, then every missed message once, in order', async ({ browser, startDemo }) => {
  test.setTimeout(60_000);
  const demo = await startDemo();
  const away = await browser.newContext();
  const home = await browser.newContext();
  try {
    const a = await away.newPage();
    const b = await home.newPage();
    await openChat(a, `${demo.origin}/?name=away`);
    await openChat(b, `${demo.origin}/?name=home`);
    const sessionBefore = await a.locator('#session').getAttribute('title');
    await postViaForm(a, 'see you in a bit');
    await expectMessages(b, ['see you in a bit']);

    const statesBefore = (await states(a)).length;
    await away.setOffline(true);
    const offlineAt = Date.now();
    const missed: string[] = [];
    // One message from the offline side: it waits in its queue.
    await postViaForm(a, 'written while offline');
    while (Date.now() - offlineAt < 10_000) {
      const text = `while you were away ${missed.length + 1}`;
      await postViaForm(b, text);
      missed.push(text);
      await b.waitForTimeout(600);
    }
    // The page showed it (the pill follows every state change; an answer that
    // was already on its way may flip it back to open for a moment).
    await expect.poll(async () => (await states(a)).slice(statesBefore), { timeout: 5_000 }).toContain('reconnecting');
    await away.setOffline(false);

    await waitForState(a, 'open', 20_000);
    const expected = () => demo.history().map((m) => m.text);
    await expect.poll(() => expected().length, { timeout: 15_000 }).toBe(2 + missed.length);
    await expectMessages(a, expected());
    await expectMessages(b, expected());
    expect(expected().filter((t) => t.startsWith('while you were away'))).toEqual(missed);

    // The same session carried on: no reset, and the page went open -> reconnecting -> open.
    expect(await a.locator('#session').getAttribute('title')).toBe(sessionBefore);
    expect(await events(a, 'reset')).toEqual([]);
    const seen = await states(a);
    const i = seen.indexOf('reconnecting');
    expect(i).toBeGreaterThan(seen.indexOf('open'));
    expect(seen.slice(i)).toContain('open');
    console.log(`offline side states: ${seen.join(' -> ')}`);
  } finally {
    await away.close();
    await home.close();
  }
});
