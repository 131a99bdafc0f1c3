/**
 * What travels on the tabs' BroadcastChannel: isBusMessage takes the messages
 * of known kinds with their fields (hello, send, status, confirm, refuse,
 * leaving) and ignores anything else.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isBusMessage } from './tabs/messages.js';

describe('what travels on the channel', () => {
  it('takes the messages of known kinds with their fields, and ignores anything else', () => {
    const status = { state: 'open', sessionId: 's1', transport: 'polling', stats: {} };
    for (const m of [
      { k: 'hello', from: 't1' },
      { k: 'send', from: 't1', num: 2, base: 1, data: 'x' },
      { k: 'send', from: 't1', num: 2, base: 1, data: structuredClone(new Uint8Array([1, 2])) },
      { k: 'status', epoch: 'e', status },
      { k: 'status', epoch: 'e', status, event: { type: 'open', resumed: false } },
      { k: 'confirm', epoch: 'e', to: 't1', upTo: 3 },
      { k: 'refuse', epoch: 'e', to: 't1', num: 3, error: { code: 'message_too_large', message: 'm', status: undefined } },
      { k: 'leaving', epoch: 'e' },
    ]) {
      assert.ok(isBusMessage(m), JSON.stringify(m));
    }
    for (const m of [
      null,
      'hello',
      { k: 'hello' },
      { k: 'shout', from: 't1' },
      { k: 'toString', from: 't1' },
      { k: 'send', from: 't1', num: '2', base: 1, data: 'x' },
      { k: 'send', from: 't1', num: 2, base: 1, data: 5 },
      { k: 'confirm', epoch: 'e', to: 't1' },
      { k: 'status', epoch: 'e', status, event: 'open' },
      { k: 'msg', data: 'x' },
    ]) {
      assert.ok(!isBusMessage(m), JSON.stringify(m));
    }
  });
});
