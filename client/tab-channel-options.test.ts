/**
 * HoldlineTabClient's options: without locks every tab runs its own client
 * (no sharing, every tab its own leader), and the constructor checks its
 * options (the URL, channelName, a removed option with a hint, unknown
 * options, the HoldlineClient options it passes on). The describe keeps the
 * name these tests had beside the acknowledgement accounting tests.
 */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { HoldlineTabClient, type HoldlineTabClientOptions } from './tab-channel.js';
import { closeTabs, ScriptedClient, toClose } from '../test/helpers/tabs.js';

afterEach(closeTabs);

describe('HoldlineTabClient acknowledgement accounting (scripted client)', () => {
  it('without locks every tab runs its own client', async () => {
    const made: ScriptedClient[] = [];
    const mk = () => {
      const c = new ScriptedClient([]);
      made.push(c);
      return c;
    };
    const a = new HoldlineTabClient('http://127.0.0.1:1/holdline', { locks: null, createClient: mk });
    const b = new HoldlineTabClient('http://127.0.0.1:1/holdline', { locks: null, createClient: mk });
    toClose.push(a, b);
    await Promise.all([a.connect(), b.connect()]);
    assert.equal(made.length, 2);
    assert.equal(a.shared, false);
    assert.deepEqual([a.role, b.role], ['leader', 'leader']);
  });

  it('checks its options', () => {
    assert.throws(() => new HoldlineTabClient('ftp://x'), /http: or https:|absolute http/);
    assert.throws(() => new HoldlineTabClient('http://x/holdline', { channelName: '' }), /channelName/);
    // A removed option fails with a hint rather than as an unknown one.
    const legacy: object = { ackCheckMs: 10 };
    assert.throws(() => new HoldlineTabClient('http://x/holdline', legacy as HoldlineTabClientOptions), /option "ackCheckMs" was removed: .*'ack' event/);
    assert.throws(() => new HoldlineTabClient('http://x/holdline', { transports: ['polling'], nope: 1 } as HoldlineTabClientOptions), /unknown HoldlineClient option "nope"/);
    assert.throws(() => new HoldlineTabClient('http://x/holdline', { holdMs: -1 }), /holdMs/);
  });
});
