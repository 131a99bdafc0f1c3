import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HoldlineServer, MemoryStore, type HoldlineServerOptions } from './index.js';
import { DEFAULTS, HoldlineError } from '../shared/index.js';

/** Build options from untyped values, as a JavaScript caller could. */
const opts = (o: Record<string, unknown>) => o as HoldlineServerOptions;

/** Assert that constructing a HoldlineServer with `o` throws a HoldlineError `invalid_argument` naming `name`. */
function assertBad(o: Record<string, unknown>, name: string): void {
  assert.throws(
    () => new HoldlineServer(opts(o)),
    (e: unknown) => {
      assert.ok(e instanceof HoldlineError && e.code === 'invalid_argument', `${JSON.stringify(o)} should throw invalid_argument, got ${String(e)}`);
      assert.ok(e.message.includes(`"${name}"`), `message names "${name}": ${e.message}`);
      return true;
    },
    `${JSON.stringify(o)} should throw`,
  );
}

const INT_OPTIONS = ['pollTimeoutMs', 'sessionIdleTimeoutMs', 'maxMessageBytes', 'maxBatchBytes', 'maxQueuedBytes', 'maxSessions', 'sendTimeoutMs'];

describe('HoldlineServer options', () => {
  it('defaults when nothing is given', () => {
    const hl = new HoldlineServer();
    assert.equal(hl.options.pollTimeoutMs, DEFAULTS.pollTimeoutMs);
    assert.equal(hl.options.sessionIdleTimeoutMs, DEFAULTS.sessionIdleTimeoutMs);
    assert.equal(hl.options.maxMessageBytes, DEFAULTS.maxMessageBytes);
    assert.equal(hl.options.maxBatchBytes, DEFAULTS.maxBatchBytes);
    assert.equal(hl.options.maxQueuedBytes, DEFAULTS.maxQueuedBytes);
    assert.equal(hl.options.maxSessions, DEFAULTS.maxSessions);
    assert.equal(hl.options.sendTimeoutMs, DEFAULTS.sendTimeoutMs);
    assert.equal(hl.options.sharedStore, false);
    assert.equal(hl.options.ownerLeaseMs, 10_000);
    assert.ok(hl.options.store instanceof MemoryStore);
    assert.equal(hl.options.authenticate, undefined);
    assert.equal(hl.options.allowedOrigins, undefined);
  });

  it('keeps valid values', () => {
    const store = new MemoryStore();
    const authenticate = () => true;
    const hl = new HoldlineServer({
      pollTimeoutMs: 100, sessionIdleTimeoutMs: 10, maxMessageBytes: 1, maxBatchBytes: 300, maxQueuedBytes: 1,
      maxSessions: 1, sendTimeoutMs: 0, store, authenticate, allowedOrigins: ['https://a.example'],
      nodeId: 'node-a', ownerLeaseMs: 300,
    });
    assert.equal(hl.options.nodeId, 'node-a');
    assert.equal(hl.nodeId, 'node-a');
    assert.equal(hl.options.ownerLeaseMs, 300);
    assert.equal(hl.options.sharedStore, true);
    assert.equal(hl.options.pollTimeoutMs, 100);
    assert.equal(hl.options.sessionIdleTimeoutMs, 10);
    assert.equal(hl.options.maxBatchBytes, 300);
    assert.equal(hl.options.store, store);
    assert.equal(hl.options.authenticate, authenticate);
    const origins = hl.options.allowedOrigins;
    assert.ok(origins instanceof Set && origins.has('https://a.example'));
    assert.equal(new HoldlineServer({ allowedOrigins: '*' }).options.allowedOrigins, '*');
  });

  for (const name of INT_OPTIONS) {
    it(`"${name}" must be a safe integer in range: invalid_argument naming it`, () => {
      for (const bad of [-1, 1.5, Number.NaN, Infinity, -Infinity, 2 ** 53, '1000', null, true, {}, [1]]) {
        assertBad({ [name]: bad }, name);
      }
    });
  }

  it('lower bounds: sendTimeoutMs may be 0; pollTimeoutMs at least 100 ms (an idle client must not spin); the others at least 1', () => {
    assert.doesNotThrow(() => new HoldlineServer({ pollTimeoutMs: 100 }));
    for (const bad of [0, 1, 99]) assertBad({ pollTimeoutMs: bad }, 'pollTimeoutMs');
    assert.doesNotThrow(() => new HoldlineServer({ sendTimeoutMs: 0 }));
    for (const name of ['maxMessageBytes', 'maxBatchBytes', 'maxQueuedBytes', 'maxSessions', 'sessionIdleTimeoutMs']) {
      assertBad({ [name]: 0 }, name);
    }
    assertBad({ sessionIdleTimeoutMs: 9 }, 'sessionIdleTimeoutMs');
  });

  it('maxBatchBytes must hold one base64-encoded message of maxMessageBytes: invalid_argument naming it', () => {
    // 3000 bytes -> 4000 base64 characters + envelope: a 4096-byte batch is too small.
    assertBad({ maxMessageBytes: 3000, maxBatchBytes: 4096 }, 'maxBatchBytes');
    assert.doesNotThrow(() => new HoldlineServer({ maxMessageBytes: 3000, maxBatchBytes: 8192 }));
    // Raising maxMessageBytes past what the default batch holds names the batch option too.
    assertBad({ maxMessageBytes: 4 * 1024 * 1024 }, 'maxBatchBytes');
  });

  it('maxQueuedBytes below maxMessageBytes: invalid_argument naming it', () => {
    assertBad({ maxMessageBytes: 1000, maxQueuedBytes: 999 }, 'maxQueuedBytes');
    assert.doesNotThrow(() => new HoldlineServer({ maxMessageBytes: 1000, maxQueuedBytes: 1000 }));
  });

  it('"transports": polling and websocket, polling always among them; default both', () => {
    assert.deepEqual(new HoldlineServer().options.transports, ['polling', 'websocket']);
    assert.deepEqual(new HoldlineServer({ transports: ['polling'] }).options.transports, ['polling']);
    for (const bad of [[], ['websocket'], ['polling', 'carrier-pigeon'], 'polling', 1, {}]) assertBad({ transports: bad }, 'transports');
  });

  it('"nodeId" must be 1-64 safe characters', () => {
    for (const bad of ['', 'a b', 'x'.repeat(65), 1, {}]) assertBad({ nodeId: bad }, 'nodeId');
  });

  it('"store" must implement SessionStore', () => {
    for (const bad of [{}, 'memory', 1, { enqueue: 1 }, true]) assertBad({ store: bad }, 'store');
  });

  it('"authenticate" must be a function', () => {
    for (const bad of ['yes', true, 1, {}, null]) assertBad({ authenticate: bad }, 'authenticate');
  });

  it('"allowedOrigins" must be "*" or an array of strings', () => {
    for (const bad of ['https://a.example', 'all', [1], ['https://a.example', null], {}, true, null]) {
      assertBad({ allowedOrigins: bad }, 'allowedOrigins');
    }
  });

  it('null is refused like any other wrong type, for every option', () => {
    // null is not "use the default": a caller passing null has a bug to hear about.
    for (const name of [...INT_OPTIONS, 'bodyTimeoutMs', 'writeTimeoutMs', 'transports', 'maxTotalQueuedBytes', 'maxOpensPerMinute', 'clientKey', 'nodeHeader', 'nodeId', 'trustProxy', 'store', 'authenticate', 'allowedOrigins']) {
      assertBad({ [name]: null }, name);
    }
  });

  it('an unknown option throws invalid_argument naming it', () => {
    for (const name of ['pollTimeout', 'maxMessageSize', 'path', 'cors', 'PollTimeoutMs']) {
      assertBad({ [name]: 1 }, name);
    }
    assertBad({ maxSessions: 10, idleTimeoutMs: undefined }, 'idleTimeoutMs');
  });

  it('options that are not an object throw invalid_argument', () => {
    for (const bad of [null, 1, 'x', true]) {
      assert.throws(() => new HoldlineServer(bad as unknown as HoldlineServerOptions), { code: 'invalid_argument' });
    }
  });

  it('messages name the value and its type', () => {
    assert.throws(() => new HoldlineServer(opts({ maxSessions: '10' })), (e: unknown) => {
      assert.ok(e instanceof HoldlineError && e.code === 'invalid_argument');
      assert.match(e.message, /"10"/);
      assert.match(e.message, /string/);
      return true;
    });
  });
});
