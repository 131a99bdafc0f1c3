/** Digest answers against RFC 7616's own example (section 3.9.1), SHA-256 and MD5. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authParams, DigestSession, parseDigestChallenge } from './digest.js';

const CHALLENGE =
  'realm="http-auth@example.org", qop="auth, auth-int", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"';
const CNONCE = 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ';

function answer(algorithm: string): Map<string, string> {
  const c = parseDigestChallenge(`algorithm=${algorithm}, ${CHALLENGE}`);
  assert.ok(c);
  const value = new DigestSession(c, 'Mufasa', 'Circle of Life', CNONCE).authorization('GET', '/dir/index.html');
  assert.match(value, /^Digest /);
  return authParams(value.slice(7));
}

test('RFC 7616 3.9.1: SHA-256', () => {
  const p = answer('SHA-256');
  assert.equal(p.get('response'), '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1');
  assert.equal(p.get('nc'), '00000001');
  assert.equal(p.get('qop'), 'auth');
  assert.equal(p.get('opaque'), 'FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS');
});

test('RFC 7616 3.9.1: MD5', () => {
  assert.equal(answer('MD5').get('response'), '8ca523f5e9506fed4657c9700eebdbec');
});

test('challenges it cannot answer are told apart; stale is read', () => {
  assert.equal(parseDigestChallenge('realm="r", nonce="n", qop="auth-int"'), undefined, 'auth-int only');
  assert.equal(parseDigestChallenge('realm="r", nonce="n", algorithm=SHA-512-256'), undefined, 'unknown algorithm');
  assert.equal(parseDigestChallenge('nonce="n"'), undefined, 'no realm');
  assert.equal(parseDigestChallenge('realm="r", nonce="n", qop="auth", stale=true')?.stale, true);
});

test('the nonce count goes up request by request', () => {
  const c = parseDigestChallenge(CHALLENGE);
  assert.ok(c);
  const s = new DigestSession(c, 'u', 'p');
  const ncs = [1, 2, 3].map(() => authParams(s.authorization('POST', 'http://h/x').slice(7)).get('nc'));
  assert.deepEqual(ncs, ['00000001', '00000002', '00000003']);
});
