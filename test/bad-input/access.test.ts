/**
 * Who may ask: an unknown session (404 session_unknown); a missing or wrong
 * token, also against the healthy session itself (403 bad_credential,
 * nothing injected, nothing closed); the authenticate hook refusing or
 * failing (403 unauthorized, its failure reported on the server's 'error'
 * event); an Origin not allowed (403 origin_not_allowed, readable by the
 * refused page); requests on a closed session (the close frame on poll, 410
 * session_closed on send).
 *
 * Then the closing checks every bad-input file ends with (closingChecks()
 * in helpers.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { attemptId, post, type StartedServer } from '../helpers/server.js';
import { assertError, badInputSuite, closingChecks, HOOK_ERROR, json, pollBody, sendBody } from './helpers.js';

describe('bad input, with a healthy session exchanging messages throughout', () => {
  let h: StartedServer;
  let base: string;
  const suite = badInputSuite((started) => ({ h, base } = started));
  const { got, open, healthySid, serverErrors } = suite;

  it('an unknown session -> 404 session_unknown', async () => {
    const ghost = { sid: 'AAAAAAAAAAAAAAAAAAAAA', token: 'x'.repeat(32) };
    assertError(await post(`${base}/poll`, pollBody(ghost)), 404, 'session_unknown');
    assertError(await post(`${base}/send`, sendBody(ghost, 1, ['x'])), 404, 'session_unknown');
    assertError(await post(`${base}/close`, json(ghost)), 404, 'session_unknown');
  });

  it('a missing or wrong token -> 403 bad_credential, also against the healthy session', async () => {
    const s = await open();
    const healthy = healthySid();
    for (const sid of [s.sid, healthy]) {
      const wrongs: Array<Record<string, unknown>> = [
        { sid }, // missing
        { sid, token: 'x'.repeat(32) }, // wrong, right length
        { sid, token: 'short' }, // wrong length
        { sid, token: '' },
        { sid, token: 12345 },
        { sid, token: null },
        { sid, token: sid === s.sid ? `${s.token.slice(0, -1)}!` : s.token }, // off by one; another session's token
      ];
      for (const cred of wrongs) {
        assertError(await post(`${base}/poll`, json({ ...cred, ack: 0, hold: 0 })), 403, 'bad_credential');
        assertError(await post(`${base}/send`, json({ ...cred, ack: 0, seq: 1, m: ['intruder'] })), 403, 'bad_credential');
        assertError(await post(`${base}/close`, json(cred)), 403, 'bad_credential');
      }
    }
    assert.deepEqual(got(s.sid), []);
    assert.ok(!got(healthy).includes('intruder'), 'nothing injected into the healthy session');
    assert.ok(h.hl.session(healthy), 'the healthy session was not closed');
    assert.ok(h.hl.session(s.sid), 'the raw session was not closed');
  });

  it('the authenticate hook refusing -> 403 unauthorized (false, or a rejected promise)', async () => {
    const before = h.hl.sessionCount;
    assertError(await post(`${base}/open`, json({ v: 1, attempt: attemptId() }), { 'x-test-deny': '1' }), 403, 'unauthorized');
    assertError(await post(`${base}/open`, json({ v: 1, attempt: attemptId() }), { 'x-test-throw': '1' }), 403, 'unauthorized');
    assert.equal(h.hl.sessionCount, before);
    assert.ok(
      serverErrors.some((e) => e instanceof Error && e.message === HOOK_ERROR),
      'the hook failure is reported to the application',
    );
  });

  it('a cross-origin request from an origin not allowed -> 403 origin_not_allowed', async () => {
    const res = await post(`${base}/open`, json({ v: 1, attempt: attemptId() }), { origin: 'https://evil.example' });
    assertError(res, 403, 'origin_not_allowed');
    // The refusal is readable by the refused page, so its client fails at once with the code.
    assert.equal(res.headers['access-control-allow-origin'], 'https://evil.example');
    const open = await post(`${base}/open`, json({ v: 1, attempt: attemptId() }), { origin: 'https://evil.example' });
    assert.equal(open.status, 403, 'refused, not served');
  });

  it('requests on a closed session: poll gets the close frame, send gets 410 session_closed', async () => {
    const s = await open();
    assert.equal((await post(`${base}/close`, json(s))).status, 200);
    const poll = await post(`${base}/poll`, pollBody(s));
    assert.equal(poll.status, 200);
    assert.equal((JSON.parse(poll.text) as { close?: { code: string } }).close?.code, 'client_closed');
    assertError(await post(`${base}/send`, sendBody(s, 1, ['late'])), 410, 'session_closed');
    assert.equal((await post(`${base}/close`, json(s))).status, 200, 'closing twice is fine');
    assert.deepEqual(got(s.sid), []);
  });

  closingChecks(suite);
});
