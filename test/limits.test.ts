/**
 * Server-wide bounds: one client cannot fill maxSessions (opens per client
 * per minute, keyed by address or by the application's clientKey), and the
 * bytes unacknowledged across all sessions stay under maxTotalQueuedBytes.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Session } from '../server/index.js';
import { Cleanup, errorCode, post, startServer } from './helpers/server.js';

let n = 0;
const openBody = () => JSON.stringify({ v: 1, attempt: `limits-attempt-${++n}` });

describe('server-wide limits', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it('maxOpensPerMinute: a client past its opens gets 503 too_many_sessions; other clients are not affected', async () => {
    const h = await startServer({ maxOpensPerMinute: 5, clientKey: (req) => String(req.headers['x-test-client'] ?? 'anonymous') });
    cleanup.add(() => h.close());
    const open = (client: string) => post(`${h.url}/open`, openBody(), { 'x-test-client': client });
    for (let i = 0; i < 5; i++) assert.equal((await open('greedy')).status, 200);
    const refused = await open('greedy');
    assert.equal(refused.status, 503);
    assert.equal(errorCode(refused), 'too_many_sessions');
    assert.equal((await open('polite')).status, 200, 'another client still opens');
    assert.equal(h.hl.sessionCount, 6);
  });

  it('maxOpensPerMinute keys clients by address by default', async () => {
    const h = await startServer({ maxOpensPerMinute: 2 });
    cleanup.add(() => h.close());
    assert.equal((await post(`${h.url}/open`, openBody())).status, 200);
    assert.equal((await post(`${h.url}/open`, openBody())).status, 200);
    assert.equal(errorCode(await post(`${h.url}/open`, openBody())), 'too_many_sessions');
  });

  it('maxTotalQueuedBytes: past the budget across sessions, send() rejects at once with queue_full; acks make room', async () => {
    const h = await startServer({ maxMessageBytes: 1000, maxQueuedBytes: 100_000, maxTotalQueuedBytes: 5 * (1000 + 64) });
    cleanup.add(() => h.close());
    const sessions: Session[] = [];
    h.hl.on('session', (s) => sessions.push(s));
    const a = JSON.parse((await post(`${h.url}/open`, openBody())).text) as { sid: string; token: string };
    await post(`${h.url}/open`, openBody());
    const [sa, sb] = sessions;
    assert.ok(sa && sb);
    const big = 'z'.repeat(1000);
    for (let i = 0; i < 3; i++) await sa.send(big);
    for (let i = 0; i < 2; i++) await sb.send(big);
    const refused = await sb.send(big).then(() => 'ok', (e: { code: string }) => e.code);
    assert.equal(refused, 'queue_full', 'the sixth message, on either session, is over the server budget');
    // Session A's client acknowledges its three: room again.
    const res = await post(`${h.url}/poll`, JSON.stringify({ ...a, ack: 3, hold: 0 }));
    assert.equal(res.status, 200);
    await sb.send(big);
  });
});
