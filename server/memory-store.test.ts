import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeEntry } from '../shared/index.js';
import { MemoryStore } from './memory-store.js';

describe('MemoryStore', () => {
  it('keeps token and attempt from create() through a session\'s first messages', async () => {
    const store = new MemoryStore();
    await store.create({ sid: 'sid-0000001', token: 'tok-1', attempt: 'attempt-001' });
    assert.deepEqual(await store.get('sid-0000001'), { sid: 'sid-0000001', token: 'tok-1', attempt: 'attempt-001' });
    // Reads of a session that has sent and received nothing.
    assert.equal(await store.pendingOutbound('sid-0000001'), 0);
    assert.deepEqual(await store.ackOutbound('sid-0000001', 0), { result: 'stale', bufferedBytes: 0, lastSeq: 0 });
    assert.deepEqual(await store.readOutbound('sid-0000001', 1000), { seq: 1, count: 0, m: '[]', wireBytes: 2, inboundAck: 0 });
    // First messages each way.
    assert.deepEqual(await store.enqueue('sid-0000001', [encodeEntry('a'), encodeEntry('bc')]), { lastSeq: 2, bufferedBytes: 3 });
    assert.deepEqual(await store.acceptInbound('sid-0000001', 1, 1), { ok: true, skip: 0, ack: 1 });
    assert.deepEqual(await store.get('sid-0000001'), { sid: 'sid-0000001', token: 'tok-1', attempt: 'attempt-001' });
    assert.equal((await store.findByAttempt('attempt-001'))?.token, 'tok-1');
    assert.deepEqual(await store.readOutbound('sid-0000001', 1000), { seq: 1, count: 2, m: '["a","bc"]', wireBytes: 10, inboundAck: 1 });
    await store.forgetAttempt('sid-0000001');
    assert.equal(await store.findByAttempt('attempt-001'), undefined);
    assert.deepEqual(await store.get('sid-0000001'), { sid: 'sid-0000001', token: 'tok-1', attempt: '' });
  });

  it('delete() returns the unacknowledged messages, none for a session that sent none, and forgets the session', async () => {
    const store = new MemoryStore();
    await store.create({ sid: 'sid-idle-01', token: 't', attempt: '' });
    await store.create({ sid: 'sid-busy-01', token: 't', attempt: '' });
    await store.enqueue('sid-busy-01', [encodeEntry('x'), encodeEntry('y')]);
    await store.ackOutbound('sid-busy-01', 1);
    assert.deepEqual(await store.delete('sid-idle-01'), []);
    assert.deepEqual((await store.delete('sid-busy-01')).map((e) => e.wire), ['y']);
    assert.equal(await store.get('sid-busy-01'), undefined);
    assert.equal(await store.count(), 0);
    await assert.rejects(store.readOutbound('sid-busy-01', 100), { code: 'session_unknown' });
  });
});
