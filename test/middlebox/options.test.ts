/**
 * The options of the middlebox harnesses (squid.ts, nginx.ts) are validated
 * before any daemon starts, and the error names the option; nginx upstreams
 * must be loopback, so nothing leaves the machine.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startNginx } from './nginx.js';
import { startSquid } from './squid.js';

describe('middlebox options', () => {
  it('are validated before anything starts, naming the option', async () => {
    await assert.rejects(startSquid({ readTimeoutSec: 0 }), { name: 'TypeError', message: /options\.readTimeoutSec/ });
    await assert.rejects(startSquid({ auth: { user: 'a:b', password: 'x' } }), { name: 'TypeError', message: /options\.auth\.user/ });
    await assert.rejects(startNginx({ upstreams: [] }), { name: 'TypeError', message: /options\.upstreams/ });
    // Upstreams must be loopback: nothing leaves the machine.
    await assert.rejects(startNginx({ upstreams: [{ host: '192.0.2.1', port: 80 }] }), {
      name: 'TypeError',
      message: /options\.upstreams\[0\]\.host/,
    });
    await assert.rejects(startNginx({ upstreams: [{ host: '127.0.0.1', port: 80 }], locationPath: '/x; return 200' }), {
      name: 'TypeError',
      message: /options\.locationPath/,
    });
  });
});
