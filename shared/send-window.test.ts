import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { SendWindow } from './send-window.js';
import { HoldlineError } from './errors.js';

/** Let queued promise callbacks run (fake timers do not touch microtasks). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

interface Tracked {
  promise: Promise<void>;
  state: () => 'pending' | 'resolved' | 'rejected';
  error: () => unknown;
}

/** acquire() whose admission appends `label` to `order`, with its outcome observable. */
function acquire(w: SendWindow, bytes: number, label: string, order: string[]): Tracked {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  let error: unknown;
  const promise = w.acquire(bytes, () => {
    order.push(label);
    return Promise.resolve();
  });
  promise.then(
    () => {
      state = 'resolved';
    },
    (e: unknown) => {
      state = 'rejected';
      error = e;
    },
  );
  return { promise, state: () => state, error: () => error };
}

describe('SendWindow', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  it('admits at once, synchronously, while there is room', async () => {
    const w = new SendWindow(100, 1000);
    const order: string[] = [];
    const a = acquire(w, 60, 'a', order);
    assert.deepEqual(order, ['a'], 'admit ran synchronously');
    const b = acquire(w, 40, 'b', order);
    assert.deepEqual(order, ['a', 'b']);
    assert.equal(w.buffered, 100);
    assert.equal(w.waiting, 0);
    await settle();
    assert.equal(a.state(), 'resolved');
    assert.equal(b.state(), 'resolved');
  });

  it('a send that does not fit waits; release admits waiters in FIFO order', async () => {
    const w = new SendWindow(100, 1000);
    const order: string[] = [];
    acquire(w, 90, 'a', order);
    const b = acquire(w, 50, 'b', order);
    // c would fit on its own (90 + 5 <= 100), but must not overtake b.
    const c = acquire(w, 5, 'c', order);
    const d = acquire(w, 40, 'd', order);
    assert.deepEqual(order, ['a']);
    assert.equal(w.waiting, 3);
    await settle();
    assert.equal(b.state(), 'pending');
    assert.equal(c.state(), 'pending');

    w.release(30); // buffered 60: b (50) does not fit yet, so nobody moves
    await settle();
    assert.deepEqual(order, ['a']);
    assert.equal(c.state(), 'pending', 'c stays behind b');

    w.release(60); // buffered 0: b (50) and c (5) fit, d (40) does too (95)
    assert.deepEqual(order, ['a', 'b', 'c', 'd']);
    await settle();
    assert.equal(b.state(), 'resolved');
    assert.equal(c.state(), 'resolved');
    assert.equal(d.state(), 'resolved');
    assert.equal(w.buffered, 95);
    assert.equal(w.waiting, 0);
  });

  it('release admits only as many as fit, and the rest keep their order', async () => {
    const w = new SendWindow(100, 1000);
    const order: string[] = [];
    acquire(w, 100, 'a', order);
    for (const l of ['b', 'c', 'd']) acquire(w, 40, l, order);
    w.release(100);
    assert.deepEqual(order, ['a', 'b', 'c']);
    assert.equal(w.waiting, 1);
    w.release(40);
    assert.deepEqual(order, ['a', 'b', 'c', 'd']);
  });

  it('a new send queues behind earlier waiters even when it would fit', () => {
    const w = new SendWindow(100, 1000);
    const order: string[] = [];
    acquire(w, 80, 'a', order);
    acquire(w, 30, 'b', order);
    acquire(w, 1, 'c', order);
    assert.deepEqual(order, ['a']);
    assert.equal(w.waiting, 2);
  });

  it('a waiter rejects with queue_full after timeoutMs, and is never admitted later', async () => {
    const w = new SendWindow(10, 1000);
    const order: string[] = [];
    acquire(w, 10, 'a', order);
    const b = acquire(w, 5, 'b', order);
    mock.timers.tick(999);
    await settle();
    assert.equal(b.state(), 'pending');
    mock.timers.tick(1);
    await settle();
    assert.equal(b.state(), 'rejected');
    const err = b.error();
    assert.ok(err instanceof HoldlineError);
    assert.equal(err.code, 'queue_full');
    assert.equal(w.waiting, 0);
    w.release(10);
    assert.deepEqual(order, ['a'], 'a timed-out send is not admitted afterwards');
    assert.equal(w.buffered, 0);
  });

  it('each waiter has its own deadline, counted from its own acquire()', async () => {
    const w = new SendWindow(10, 1000);
    const order: string[] = [];
    acquire(w, 10, 'a', order);
    const b = acquire(w, 5, 'b', order);
    mock.timers.tick(500);
    const c = acquire(w, 5, 'c', order);
    mock.timers.tick(500);
    await settle();
    assert.equal(b.state(), 'rejected');
    assert.equal(c.state(), 'pending');
    w.release(10);
    await settle();
    assert.deepEqual(order, ['a', 'c']);
    assert.equal(c.state(), 'resolved');
  });

  it('when the head waiter times out, the waiter behind it is admitted if it fits', async () => {
    // a holds 8 of 10. b (5) waits; c (1) would fit but waits behind b.
    // Once b gives up, c is first in line and fits: it must not wait for an ack that may never come.
    const w = new SendWindow(10, 1000);
    const order: string[] = [];
    acquire(w, 8, 'a', order);
    const b = acquire(w, 5, 'b', order);
    mock.timers.tick(100);
    const c = acquire(w, 1, 'c', order);
    mock.timers.tick(900);
    await settle();
    assert.equal(b.state(), 'rejected');
    assert.deepEqual(order, ['a', 'c'], 'c is admitted as soon as b leaves the queue');
    assert.equal(c.state(), 'resolved');
  });

  it('timeoutMs 0 rejects at once when the send does not fit', async () => {
    const w = new SendWindow(10, 0);
    const order: string[] = [];
    acquire(w, 10, 'a', order);
    const b = acquire(w, 1, 'b', order);
    await settle();
    assert.equal(b.state(), 'rejected');
    assert.equal((b.error() as HoldlineError).code, 'queue_full');
    assert.equal(w.waiting, 0);
  });

  it('fail() rejects every waiter with the given error and forgets the accounting', async () => {
    const w = new SendWindow(10, 1000);
    const order: string[] = [];
    acquire(w, 10, 'a', order);
    const waiters = ['b', 'c', 'd'].map((l) => acquire(w, 5, l, order));
    const gone = new HoldlineError('session_closed', 'gone');
    w.fail(gone);
    await settle();
    for (const t of waiters) {
      assert.equal(t.state(), 'rejected');
      assert.equal(t.error(), gone);
    }
    assert.equal(w.waiting, 0);
    assert.equal(w.buffered, 0);
    // Their timers were cleared: nothing fires later.
    mock.timers.tick(10_000);
    await settle();
    assert.deepEqual(order, ['a']);
  });

  it('an admission callback that rejects rejects that send', async () => {
    const w = new SendWindow(10, 1000);
    acquire(w, 10, 'a', []);
    const boom = new Error('store down');
    const p = w.acquire(5, () => Promise.reject(boom));
    w.release(10);
    await assert.rejects(p, boom);
  });

  it('release never drives buffered below zero', () => {
    const w = new SendWindow(10, 1000);
    acquire(w, 4, 'a', []);
    w.release(100);
    assert.equal(w.buffered, 0);
    const order: string[] = [];
    acquire(w, 10, 'b', order);
    assert.deepEqual(order, ['b'], 'the full window is available again');
  });
});
