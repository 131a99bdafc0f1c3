/**
 * A client that receives a long stream keeps no more than the batch it is
 * reading: the answers it has delivered are garbage once delivered.
 *
 * The stream goes out in batches of about 100 KB (large enough for early
 * polls, which chain each poll to the next), over real HTTP on 127.0.0.1.
 * The heap is measured after a full collection once the first few batches
 * are in, and again after the rest: a client that kept each answer's body
 * (as it did while every poll still pointed at the one after it) grows by
 * the whole stream, about 12 MB here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { HoldlineClient } from '../client/index.js';
import type { Session } from '../server/index.js';
import { startHoldline } from './helpers/holdline.js';
import { waitFor } from './helpers/wait.js';

setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  collect();
  collect();
  return process.memoryUsage().heapUsed;
}

test('a client receiving a long stream of large batches does not keep the answers it has delivered', async (t) => {
  const hl = await startHoldline(t, { maxQueuedBytes: 1024 * 1024 });
  let session: Session | undefined;
  hl.server.on('session', (s: Session) => (session = s));
  // It counts polls: on polling.
  const client = new HoldlineClient(hl.url, { transports: ['polling'] });
  t.after(() => client.close());
  let got = 0;
  client.on('message', () => got++);
  await client.connect();
  await waitFor(() => session !== undefined && session.holdingPoll, 5_000, () => 'the first poll');
  const s = session;
  assert.ok(s, 'a session');

  const payload = 'x'.repeat(100);
  const BATCH = 1_000; // about 103 KB of JSON: early polls are on (EARLY_POLL_BYTES is 16 KiB)
  /** Send `batches` batches, each once the one before is delivered (so each is one poll answer). */
  const stream = async (batches: number) => {
    for (let b = 0; b < batches; b++) {
      const target = got + BATCH;
      for (let i = 0; i < BATCH; i++) void s.send(payload);
      await waitFor(() => got >= target, 10_000, () => `${target - got} more messages`);
    }
  };

  await stream(10);
  const pollsBefore = client.stats.polls;
  const before = heapAfterGc();
  await stream(120);
  const after = heapAfterGc();
  // Early polls were in use (one poll per batch would mean they were not).
  assert.ok(client.stats.polls - pollsBefore >= 120, `polls: ${client.stats.polls - pollsBefore}`);
  const grewMb = (after - before) / 1e6;
  assert.ok(grewMb < 4, `the heap grew by ${grewMb.toFixed(1)} MB over 120 delivered batches of ~103 KB`);
});
