/**
 * Requests that are not in Holdline's form: a content type other than
 * text/plain, or none (415 unsupported_content_type); a method other than
 * POST (405 method_not_allowed, with Allow); a path that is no endpoint (404
 * not_found); a protocol version other than 1 on open (400
 * unsupported_version, no session opened). Each gets its status and code,
 * while the file's healthy session keeps exchanging messages
 * (badInputSuite() in helpers.ts, checked after every case).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { attemptId, post, raw, type StartedServer } from '../helpers/server.js';
import { assertError, badInputSuite, closingChecks, json, sendBody } from './helpers.js';

describe('bad input, with a healthy session exchanging messages throughout', () => {
  let h: StartedServer;
  let base: string;
  const suite = badInputSuite((started) => ({ h, base } = started));
  const { got, open } = suite;

  it('wrong or missing content type -> 415 unsupported_content_type', async () => {
    const body = json({ v: 1, attempt: attemptId() });
    for (const type of ['application/json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/html', 'text/plainish', 'plain/text']) {
      assertError(await post(`${base}/open`, body, { 'content-type': type }), 415, 'unsupported_content_type');
    }
    assertError(await post(`${base}/open`, body, { 'content-type': undefined }), 415, 'unsupported_content_type');
    const s = await open();
    assertError(await post(`${base}/send`, sendBody(s, 1, ['x']), { 'content-type': 'application/json' }), 415, 'unsupported_content_type');
    assert.deepEqual(got(s.sid), []);
  });

  it('a method other than POST -> 405 method_not_allowed with Allow', async () => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH'] as const) {
      for (const endpoint of ['open', 'poll', 'send', 'close']) {
        const res = await raw(`${base}/${endpoint}`, { method, body: method === 'GET' ? undefined : '{}' });
        assertError(res, 405, 'method_not_allowed');
        assert.match(String(res.headers.allow), /\bPOST\b/);
      }
    }
  });

  it('an unknown path -> 404 not_found', async () => {
    const origin = new URL(base).origin;
    for (const url of [`${base}/nope`, `${base}/open/extra`, `${base}/`, base, `${base}/OPEN`, `${origin}/elsewhere`, `${origin}/hlx/open`]) {
      assertError(await post(url, '{}'), 404, 'not_found');
    }
  });

  it('a wrong protocol version on open -> 400 unsupported_version', async () => {
    const before = h.hl.sessionCount;
    for (const v of [0, 2, 99, -1]) {
      assertError(await post(`${base}/open`, json({ v, attempt: attemptId() })), 400, 'unsupported_version');
    }
    assertError(await post(`${base}/open`, json({ v: '1', attempt: attemptId() })), 400, 'malformed_request');
    assert.equal(h.hl.sessionCount, before, 'no session was opened');
  });

  closingChecks(suite);
});
