/**
 * The htpasswd hashes the squid harness writes for basic_ncsa_auth
 * (htpasswd.ts): APR1 and MD5-crypt, identical to what `openssl passwd`
 * computes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { md5Crypt } from './htpasswd.js';

describe('htpasswd', () => {
  it('computes APR1 hashes identical to `openssl passwd -apr1`', () => {
    assert.equal(md5Crypt('secret', 'abcdefgh'), '$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/');
    assert.equal(md5Crypt('x', 'salt', '$1$'), '$1$salt$9GHNWvCB1UrDZjPi7uags0');
  });
});
