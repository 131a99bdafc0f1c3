import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeliveryMarks, type Marked } from './delivery-marks.js';
import { MemoryStore } from './memory-store.js';

let opened = 0;

/** A store with an accepted inbound batch of three, and a session handle for its marks (fence 1, as opened). */
async function withInbound(store: MemoryStore): Promise<Marked> {
  const sid = `marks-${++opened}`;
  await store.create({ sid, token: 'token-of-the-test', attempt: '' }, 'node-a');
  await store.acceptInbound(sid, 1, ['a', 'b', 'c']);
  return { id: sid, fence: 1, state: 'open' };
}

test('a store in this process (markDeliveredNow) has each mark written at once, no timer', async () => {
  const store = new MemoryStore();
  const session = await withInbound(store);
  const errors: unknown[] = [];
  const marks = new DeliveryMarks(store, (e) => errors.push(e));
  marks.mark(session, 2);
  assert.equal(await store.delivered(session.id), 2, 'written in the call');
  marks.mark(session, 3);
  assert.equal(await store.delivered(session.id), 3);
  // A mark of a session gone from the store, closed meanwhile: not reported.
  await store.delete(session.id);
  marks.mark({ ...session, state: 'closed' }, 3);
  assert.deepEqual(errors, []);
});

test('a store across the network (no markDeliveredNow): marks wait for the timer, one per session, the highest; settle() writes them at once', async () => {
  class Remote extends MemoryStore {
    calls: Array<[string, number]> = [];
    override markDelivered(sid: string, seq: number, fence: number): Promise<boolean> {
      this.calls.push([sid, seq]);
      return super.markDelivered(sid, seq, fence);
    }
  }
  const store = new Remote();
  // As a networked store: only the asynchronous call.
  Object.defineProperty(store, 'markDeliveredNow', { value: undefined });
  const session = await withInbound(store);
  const marks = new DeliveryMarks(store, (e) => assert.fail(String(e)));
  marks.mark(session, 1);
  marks.mark(session, 3);
  marks.mark(session, 2);
  assert.deepEqual(store.calls, [], 'nothing written in the call');
  await sleep(20);
  assert.deepEqual(store.calls, [[session.id, 3]], 'one write, the highest');
  assert.equal(await store.delivered(session.id), 3);
  const other = await withInbound(store);
  marks.mark(other, 2);
  await marks.settle();
  assert.deepEqual(store.calls.at(-1), [other.id, 2], 'settle() writes what is due');
});
