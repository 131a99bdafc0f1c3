/**
 * The application's failure semantics on the server: a send() promise
 * nobody awaits never becomes an unhandled rejection (it used to crash the
 * process), a listener that throws or an async listener that rejects is
 * reported through 'error' and delivery goes on, and what was sent but never
 * acknowledged, waiting sends included, is in the close event's `unacked`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Session } from '../server/index.js';
import type { CloseReason, Payload } from '../shared/index.js';
import { Cleanup, Condition, openRaw, post, startServer } from './helpers/server.js';

/** Every unhandled rejection in this process while the tests run. */
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

const json = (o: unknown) => JSON.stringify(o);

async function open(url: string): Promise<{ sid: string; token: string }> {
  const res = await post(`${url}/open`, json({ v: 1, attempt: `app-failures-${Math.random().toString(36).slice(2, 12)}` }));
  assert.equal(res.status, 200, res.text);
  return JSON.parse(res.text) as { sid: string; token: string };
}

/** Let pending timers and microtasks run, so that a rejection nobody handled would be seen. */
const settle = () => new Promise((r) => setTimeout(r, 50));

describe('application failure semantics (server)', () => {
  const cleanup = new Cleanup();
  before(() => process.on('unhandledRejection', onUnhandled));
  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    await cleanup.run();
  });

  it('the README pattern: an ignored send() in a listener, then close() in the same batch, rejects nothing unhandled and reports the message as unacked', async () => {
    const h = await startServer();
    cleanup.add(() => h.close());
    const closed = new Promise<[CloseReason, Payload[]]>((resolve) => {
      h.hl.on('session', (session) => {
        session.on('message', (m) => {
          if (m === 'close-me') session.close();
          else void session.send(`echo: ${String(m)}`); // the promise is ignored, as the README shows
        });
        session.on('close', (reason, unacked) => resolve([reason, unacked]));
      });
    });
    const s = await open(h.url);
    const res = await post(`${h.url}/send`, json({ sid: s.sid, token: s.token, ack: 0, seq: 1, m: ['x', 'close-me'] }));
    assert.equal(res.status, 200);
    const [reason, unacked] = await closed;
    assert.equal(reason.code, 'server_closed');
    assert.deepEqual(unacked, ['echo: x'], 'sent before close(), never delivered: reported');
    await settle();
    assert.deepEqual(unhandled, []);
  });

  it('ignored send()s to a client that never acks: queue_full and the close are no unhandled rejections; waiting sends are in unacked', async () => {
    const h = await startServer({ maxMessageBytes: 1000, maxQueuedBytes: 4 * (1000 + 64), sendTimeoutMs: 100 });
    cleanup.add(() => h.close());
    const sessionP = new Promise<Session>((resolve) => h.hl.once('session', resolve));
    await open(h.url);
    const session = await sessionP;
    const closed = new Promise<Payload[]>((resolve) => session.once('close', (_r, unacked) => resolve(unacked)));
    // Four fit; four more wait and time out (queue_full); four more wait, then another maxQueuedBytes is refused at once.
    for (let i = 0; i < 8; i++) void session.send('a'.repeat(999) + String(i % 10));
    await new Promise((r) => setTimeout(r, 250));
    const late: Promise<unknown>[] = [];
    for (let i = 0; i < 5; i++) late.push(session.send(`w${i}`).then(() => 'ok', (e: { code: string }) => e.code));
    void session.send('ignored, and waiting at close');
    session.close();
    const unacked = await closed;
    assert.equal(unacked.length, 4 + 5 + 1, 'the four queued and the six still waiting');
    assert.deepEqual(await Promise.all(late), ['session_closed', 'session_closed', 'session_closed', 'session_closed', 'session_closed']);
    await settle();
    assert.deepEqual(unhandled, []);
  });

  it('waiting send()s are bounded: past another maxQueuedBytes waiting, send() rejects at once with queue_full', async () => {
    const h = await startServer({ maxMessageBytes: 1000, maxQueuedBytes: 2 * (1000 + 64), sendTimeoutMs: 60_000 });
    cleanup.add(() => h.close());
    const sessionP = new Promise<Session>((resolve) => h.hl.once('session', resolve));
    await open(h.url);
    const session = await sessionP;
    const big = 'b'.repeat(1000);
    await session.send(big);
    await session.send(big);
    const waiting = [session.send(big), session.send(big)].map((p) => p.then(() => 'ok', (e: { code: string }) => e.code));
    const refused = await session.send(big).then(() => 'ok', (e: { code: string }) => e.code);
    assert.equal(refused, 'queue_full');
    session.close();
    assert.deepEqual(await Promise.all(waiting), ['session_closed', 'session_closed']);
  });

  it('a listener that throws, and an async listener that rejects, are reported through error; delivery goes on', async () => {
    const h = await startServer();
    cleanup.add(() => h.close());
    const errors: unknown[] = [];
    const got: Payload[] = [];
    const changed = new Condition();
    h.hl.on('error', (e) => {
      errors.push(e);
      changed.notify();
    });
    h.hl.on('session', (session) => {
      session.on('message', (m) => {
        if (m === 'throw') throw new Error('listener bug');
      });
      session.on('message', async (m) => {
        await Promise.resolve();
        if (m === 'reject') throw new Error('async listener bug');
      });
      session.on('message', (m) => {
        got.push(m);
        changed.notify();
      });
    });
    const s = await open(h.url);
    const res = await post(`${h.url}/send`, json({ sid: s.sid, token: s.token, ack: 0, seq: 1, m: ['throw', 'reject', 'after'] }));
    assert.equal(res.status, 200);
    await changed.until(() => got.length === 3 && errors.length === 2, 5_000, () => `${got.length} delivered, ${errors.length} errors`);
    assert.deepEqual(got, ['throw', 'reject', 'after'], 'every listener ran for every message');
    assert.deepEqual(
      errors.map((e) => (e as Error).message),
      ['listener bug', 'async listener bug'],
    );
    await settle();
    assert.deepEqual(unhandled, []);
  });
});

describe('secrets', () => {
  it('printing a server Session never shows its token', async (t) => {
    const { inspect } = await import('node:util');
    const h = await startServer();
    t.after(() => h.close());
    const sessionP = new Promise<Session>((resolve) => h.hl.once('session', resolve));
    const s = await openRaw(h.url);
    const session = await sessionP;
    const printed = [inspect(session, { depth: 5, showHidden: true }), JSON.stringify(session), String(session)].join('\n');
    assert.ok(printed.includes(s.sid), 'the id is shown');
    assert.ok(!printed.includes(s.token), 'the token is not');
  });
});
