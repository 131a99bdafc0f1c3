/**
 * Assertions several test files share: an error answer of the HTTP
 * endpoints, and a received stream checked against what was sent.
 */
import assert from 'node:assert/strict';
import { errorCode, type RawResponse } from './server.js';

/** Assert an error answer: exact status and code, and the headers every error carries. */
export function assertError(res: RawResponse, status: number, code: string): void {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status} ${res.text}`);
  assert.equal(errorCode(res), code, `body: ${res.text}`);
  const body = JSON.parse(res.text) as { error: { message: unknown } };
  assert.equal(typeof body.error.message, 'string');
  assert.match(String(res.headers['content-type']), /^application\/json\b/);
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.equal(res.headers['content-length'], String(Buffer.byteLength(res.text)));
  assert.equal(res.headers['transfer-encoding'], undefined);
}

/** Assert `got` is exactly `expected`: every message once, in order; else say where they first differ. */
export function assertExactlyOnce(got: readonly string[], expected: readonly string[], what: string): void {
  if (got.length === expected.length && got.every((g, i) => g === expected[i])) return;
  const at = got.findIndex((g, i) => g !== expected[i]);
  const first = at === -1 ? got.length : at;
  assert.fail(`${what}: ${got.length} received, ${expected.length} expected; first difference at ${first}: ` +
    `got ${JSON.stringify(got[first]?.slice(0, 30))}, want ${JSON.stringify(expected[first]?.slice(0, 30))}`);
}
