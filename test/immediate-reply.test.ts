/**
 * An application's immediate reply to a message that came in a send: with a
 * store that reads at once (MemoryStore's readOutboundNow), the held poll is
 * answered as the delivery returns, before the rest of the turn's work; a
 * listener that sends twice, or an async one that awaits each send, still
 * has them all in one answer; a store without
 * readOutboundNow answers at the end of the turn, with the same result on the
 * wire. Raw HTTP, so that each poll answer is seen as it is.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MemoryStore, type Session } from '../server/index.js';
import { Cleanup, openRaw, post, startServer, withTimeout, type RawResponse, type RawSession } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

interface Batch {
  ack: number;
  seq: number;
  m: unknown[];
}

/** The same store with the optional readOutboundNow taken away: what a networked store looks like to the node. */
function readsAwaited(): MemoryStore {
  const store = new MemoryStore();
  Reflect.defineProperty(store, 'readOutboundNow', { value: undefined });
  assert.equal(store.readOutboundNow, undefined);
  return store;
}

/**
 * A server whose listener answers each message with `replies(data)`, a raw
 * session with a poll held, and a send of `text`: the poll's answer, and the
 * order of the server's 'flush' and a process.nextTick queued in the
 * listener (`awaitEach`: an async listener awaiting each send).
 */
async function replyTo(t: { after(fn: () => unknown): void }, store: MemoryStore, replies: (d: string) => string[], text: string, awaitEach = false) {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const h = await startServer({ store, pollTimeoutMs: 10_000 });
  cleanup.add(() => h.close());
  const order: string[] = [];
  let session: Session | undefined;
  h.hl.on('session', (s) => {
    session = s;
    s.on('flush', () => order.push('flush'));
    s.on('message', (d) => {
      process.nextTick(() => order.push('tick'));
      if (!awaitEach) {
        for (const r of replies(String(d))) void s.send(r);
        return undefined;
      }
      return (async () => {
        for (const r of replies(String(d))) await s.send(r);
      })();
    });
  });
  const s: RawSession = await openRaw(h.url);
  const held: Promise<RawResponse> = post(`${h.url}/poll`, JSON.stringify({ sid: s.sid, token: s.token, ack: 0, hold: 8_000 }));
  await waitFor(() => session?.holdingPoll === true, 5_000, 'the poll is held');
  const sent = await post(`${h.url}/send`, JSON.stringify({ sid: s.sid, token: s.token, ack: 0, seq: 1, m: [text] }));
  assert.equal(sent.status, 200);
  const answer = await withTimeout(held, 5_000, 'the held poll is answered');
  assert.equal(answer.status, 200);
  return { batch: JSON.parse(answer.text) as Batch, order };
}

it('a listener\'s reply is written on the held poll as the delivery returns, before the turn\'s ticks', async (t) => {
  const { batch, order } = await replyTo(t, new MemoryStore(), (d) => [`echo ${d}`], 'hi');
  assert.deepEqual(batch, { ack: 1, seq: 1, m: ['echo hi'] });
  assert.deepEqual(order, ['flush', 'tick'], "the reply was written ('flush') before a tick the listener queued after it");
});

it('a listener that sends twice has both in one answer, at the end of the turn', async (t) => {
  const { batch, order } = await replyTo(t, new MemoryStore(), (d) => [`one ${d}`, `two ${d}`], 'hi');
  assert.deepEqual(batch, { ack: 1, seq: 1, m: ['one hi', 'two hi'] }, 'one answer carries the turn\'s two sends');
  assert.deepEqual(order, ['tick', 'flush']);
});

it('an async listener that awaits each send has them all in one answer, at the end of the turn', async (t) => {
  const { batch, order } = await replyTo(t, new MemoryStore(), (d) => [`one ${d}`, `two ${d}`, `three ${d}`], 'hi', true);
  assert.deepEqual(batch, { ack: 1, seq: 1, m: ['one hi', 'two hi', 'three hi'] }, 'one answer carries the three awaited sends');
  assert.deepEqual(order, ['tick', 'flush']);
});

it('with a store that has no readOutboundNow, the reply goes at the end of the turn, the same on the wire', async (t) => {
  const { batch, order } = await replyTo(t, readsAwaited(), (d) => [`echo ${d}`], 'hi');
  assert.deepEqual(batch, { ack: 1, seq: 1, m: ['echo hi'] });
  assert.deepEqual(order, ['tick', 'flush']);
});
