import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HoldlineError } from '../shared/errors.js';
import { endpointUrl, resolveBaseUrl, resolveClientOptions, type HoldlineClientOptions } from './options.js';

/** Asserts that `fn` throws HoldlineError invalid_argument whose message matches `message`. */
function invalid(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof HoldlineError, `a HoldlineError, got ${String(e)}`);
    assert.equal(e.code, 'invalid_argument');
    assert.match(e.message, message);
    return true;
  });
}

describe('client options', () => {
  it('defaults', () => {
    const o = resolveClientOptions();
    assert.equal(o.keepAlive, true);
    assert.equal(o.holdMs, undefined);
    assert.ok(o.maxDelayMs >= o.minDelayMs);
    assert.deepEqual(o.transports, ['polling', 'websocket']);
  });

  it('a bad value throws invalid_argument naming the option', () => {
    invalid(() => resolveClientOptions({ holdMs: -1 }), /"holdMs"/);
    // A hold of 0 would make an idle client poll as fast as the server answers.
    invalid(() => resolveClientOptions({ holdMs: 0 }), /"holdMs"/);
    invalid(() => resolveClientOptions({ holdMs: 99 }), /"holdMs"/);
    invalid(() => resolveClientOptions({ pollGraceMs: 0 }), /"pollGraceMs"/);
    invalid(() => resolveClientOptions({ requestTimeoutMs: 1.5 }), /"requestTimeoutMs"/);
    invalid(() => resolveClientOptions({ reconnect: { minDelayMs: 500, maxDelayMs: 100 } }), /"reconnect.maxDelayMs"/);
    invalid(() => resolveClientOptions({ reconnect: 5 } as unknown as HoldlineClientOptions), /"reconnect"/);
    invalid(() => resolveClientOptions({ keepAlive: 'yes' } as unknown as HoldlineClientOptions), /"keepAlive"/);
    invalid(() => resolveClientOptions({ proxy: 'not a url' }), /"proxy"/);
    invalid(() => resolveClientOptions(null as unknown as HoldlineClientOptions), /must be an object/);
  });

  it('proxy: a URL, { url, username, password, domain } or { pac, ... }; anything else names the option', () => {
    assert.equal(resolveClientOptions({ proxy: 'http://p:3128' }).proxy, 'http://p:3128');
    const withFields = { url: 'http://p:3128', username: 'alice', password: 'pw', domain: 'CORP' };
    assert.deepEqual(resolveClientOptions({ proxy: withFields }).proxy, withFields);
    assert.deepEqual(resolveClientOptions({ proxy: { pac: '/etc/proxy.pac', username: 'bob' } }).proxy, { pac: '/etc/proxy.pac', username: 'bob' });
    invalid(() => resolveClientOptions({ proxy: 'socks5://p:1080' }), /"proxy".*not http: or https:/);
    invalid(() => resolveClientOptions({ proxy: { url: 'http://p', user: 'x' } as unknown as HoldlineClientOptions['proxy'] & object }), /"proxy".*unknown field "user"/);
    invalid(() => resolveClientOptions({ proxy: { url: 'http://p', password: 5 } as unknown as HoldlineClientOptions['proxy'] & object }), /"proxy".*"password" must be a string/);
    invalid(() => resolveClientOptions({ proxy: { pac: '' } }), /"proxy".*pac/);
    invalid(() => resolveClientOptions({ proxy: 42 } as unknown as HoldlineClientOptions), /"proxy"/);
  });

  it('an unknown option throws naming it', () => {
    invalid(() => resolveClientOptions({ nope: 1 } as HoldlineClientOptions), /unknown HoldlineClient option "nope"/);
    invalid(() => resolveClientOptions({ transports: ['polling'], nope: 1 } as HoldlineClientOptions), /unknown HoldlineClient option "nope"/);
  });

  it('transports: a non-empty array of polling and websocket, no repeats, in order of preference', () => {
    assert.deepEqual(resolveClientOptions({ transports: ['websocket', 'polling'] }).transports, ['websocket', 'polling']);
    assert.deepEqual(resolveClientOptions({ transports: ['polling'] }).transports, ['polling']);
    assert.deepEqual(resolveClientOptions({ transports: ['websocket'] }).transports, ['websocket']);
    invalid(() => resolveClientOptions({ transports: [] }), /option "transports" must be a non-empty array/);
    invalid(() => resolveClientOptions({ transports: ['polling', 'polling'] }), /option "transports"/);
    invalid(() => resolveClientOptions({ transports: ['sse'] } as unknown as HoldlineClientOptions), /option "transports".*"sse"/);
    invalid(() => resolveClientOptions({ transports: 'websocket' } as unknown as HoldlineClientOptions), /option "transports"/);
  });

  it('the base URL: absolute http(s), no trailing slash', () => {
    assert.equal(resolveBaseUrl('http://h:1/holdline/', 'X'), 'http://h:1/holdline');
    // A query string is kept (it goes on every request); a fragment is not.
    assert.equal(resolveBaseUrl('http://h:1/holdline/?tenant=a&x=1#top', 'X'), 'http://h:1/holdline?tenant=a&x=1');
    assert.equal(endpointUrl(resolveBaseUrl('http://h:1/holdline?tenant=a', 'X'), '/open'), 'http://h:1/holdline/open?tenant=a');
    assert.equal(endpointUrl(resolveBaseUrl('http://h:1/?t=1', 'X'), '/poll'), 'http://h:1/poll?t=1');
    assert.equal(endpointUrl(resolveBaseUrl('http://h:1/', 'X'), '/poll'), 'http://h:1/poll');
    invalid(() => resolveBaseUrl('ftp://h/x', 'X'), /X: url must be http: or https:/);
    invalid(() => resolveBaseUrl('not a url', 'X'), /X: url must be an absolute/);
  });
});
