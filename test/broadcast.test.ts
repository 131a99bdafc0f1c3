/**
 * hl.broadcast() on one node: every session it owns gets the message, in
 * bounded chunks, and the result counts them. A send that waits for room
 * (its client is behind on acks) does not hold up the others and is counted
 * when it ends; one refused (queue_full) is counted as failed.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { Session } from '../server/index.js';
import { Cleanup, openRaw, post, startServer, type RawSession } from './helpers/server.js';

interface Batch {
  seq: number;
  m: unknown[];
}

it('reaches every session (more than one chunk), waits for a send that waits for acks, counts a refused one as failed', async (t) => {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  // Room for one 900-byte message per session (each is counted with 64 bytes of overhead).
  const h = await startServer({ maxQueuedBytes: 1000, maxMessageBytes: 1000, sendTimeoutMs: 30_000 });
  cleanup.add(() => h.close());
  const sessions = new Map<string, Session>();
  h.hl.on('session', (s) => sessions.set(s.id, s));
  const raws: RawSession[] = [];
  for (let i = 0; i < 150; i++) raws.push(await openRaw(h.url));
  const [behindRaw] = raws;
  const [behind, full] = raws.map((r) => sessions.get(r.sid));
  assert.ok(behindRaw && behind && full);
  // `behind` has its window full: the broadcast's send waits for its ack.
  void behind.send('b'.repeat(900));
  // `full` has as much again waiting: the broadcast's send is refused at once.
  void full.send('f'.repeat(900));
  full.send('f'.repeat(900)).catch(() => undefined);

  let result: unknown;
  const broadcast = h.hl.broadcast('to all').then((r) => (result = r));
  // Every other session has it committed; `behind` still waits.
  const poll = (r: RawSession, ack: number) => post(`${h.url}/poll`, JSON.stringify({ sid: r.sid, token: r.token, ack, hold: 0 }));
  for (const r of raws.slice(2)) {
    let got: Batch | undefined;
    for (let k = 0; k < 50 && !got?.m.length; k++) got = JSON.parse((await poll(r, 0)).text) as Batch;
    assert.deepEqual(got?.m, ['to all'], `session ${r.sid}`);
  }
  assert.equal(result, undefined, 'the broadcast waits for the send that waits for room');
  // `behind`'s client reads and acks its message: the broadcast's send goes in.
  const first = JSON.parse((await poll(behindRaw, 0)).text) as Batch;
  assert.equal(first.m.length, 1);
  await poll(behindRaw, 1);
  assert.deepEqual(await broadcast, { queued: 149, failed: 1 });
  const second = JSON.parse((await poll(behindRaw, 1)).text) as Batch;
  assert.deepEqual(second.m, ['to all']);
});
