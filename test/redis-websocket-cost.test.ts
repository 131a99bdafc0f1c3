/**
 * What a message to a session on a WebSocket costs the Redis store: when the
 * connection is idle, waiting for the next message, the commit reads its
 * batch in the same script as the append (Store.enqueueAndRead), and the
 * connection sends that batch with no read of its own: one store call from
 * the application's send() (or a broadcast) to the frame, not an append and
 * then a read. A connection still busy (a batch unacknowledged past its
 * window, or a read under way) reads for itself, and nothing is lost or
 * sent twice either way: a stream several windows long, both ways, shows it
 * (nothing left behind by a pump that stops short, or by an ack that does
 * not pump a connection its window held).
 */
import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import { RedisStore } from '../server/redis.js';
import { gated } from './helpers/gated-store.js';
import { connect, expected, message, serve, show, sleep, waitFor } from './client-websocket/helpers.js';
import { startRedis } from './middlebox/redis.js';

const redis = await startRedis();
after(() => redis.stop());

it('a message to an idle WebSocket is appended and read for it in one store call, and sent without a read', async (t) => {
  const counted = gated(new RedisStore({ url: redis.url, keyPrefix: `wscost-${process.pid}:` }), 'enqueue');
  const rig = await serve(t, { store: counted.store });
  // After the server's close (test hooks run in the order they were added).
  t.after(() => counted.store.close?.());
  const { c, w, server, session } = await connect(rig, { transports: ['websocket'] });
  // A message up and its ack: the server has taken the hello.
  await c.send('up');
  await waitFor(() => server.got.length === 1 && c.bufferedAmount === 0, 10_000, 'a message up on the WebSocket');

  for (let i = 0; i < 5; i++) {
    const before = { both: counted.calls('enqueueAndRead'), enqueue: counted.calls('enqueue'), read: counted.calls('readOutbound') };
    await session.send(`one ${i}`);
    await waitFor(() => w.got.length === i + 1, 5_000, `message ${i}`);
    // Its ack: the connection is idle again (and the ack made it read nothing).
    await waitFor(() => session.bufferedAmount === 0, 5_000, `the ack of message ${i}`);
    await sleep(20);
    assert.equal(counted.calls('enqueueAndRead') - before.both, 1, 'appended and read in one call');
    assert.equal(counted.calls('enqueue') - before.enqueue, 0);
    assert.equal(counted.calls('readOutbound') - before.read, 0, 'no read of its own, after the message or its ack');
  }

  // A burst from one turn, and a broadcast: every message once, in order, whichever way each batch was read.
  const burst = Array.from({ length: 300 }, (_, i) => `burst ${i}`);
  await Promise.all(burst.map((m) => session.send(m)));
  await rig.h.hl.broadcast('to all');
  await waitFor(() => w.got.length === 5 + burst.length + 1, 10_000, 'the burst and the broadcast');
  assert.deepEqual(show(w.got), [...Array.from({ length: 5 }, (_, i) => `one ${i}`), ...burst, 'to all']);
  assert.deepEqual(w.errors, []);
});

it('a stream past the window both ways, on Redis: every message once, in order, none left behind', async (t) => {
  const store = new RedisStore({ url: redis.url, keyPrefix: `wsstream-${process.pid}:` });
  // Batches of at most 16,000 bytes and a window of 64 KB: a pump sends several batches, then what is
  // committed past the window waits for an ack to pump it.
  const rig = await serve(t, { store, maxBatchBytes: 16_000, maxMessageBytes: 10_000 });
  t.after(() => store.close());
  const { c, w, server, session } = await connect(rig, { transports: ['websocket'] });
  const count = 2_000;
  // Texts padded to about 1 KB: 2,000 messages are many windows.
  const down = (i: number) => {
    const m = message('down', i);
    return typeof m === 'string' ? `${m} ${'.'.repeat(1_000)}` : m;
  };
  // A client slow to take each message (0.1 ms): its acks lag, and the window fills.
  let full = 0;
  c.on('message', () => {
    const until = performance.now() + 0.1;
    while (performance.now() < until);
  });
  // In turns of 200 (about 200 KB down, committed at once): each is several windows.
  for (let i = 0; i < count; i += 200) {
    const turn: Promise<void>[] = [];
    for (let j = i; j < Math.min(count, i + 200); j++) turn.push(session.send(down(j)), c.send(message('up', j)));
    await Promise.all(turn);
    if (session.bufferedAmount >= 64 * 1024) full++;
  }
  await waitFor(() => w.got.length >= count && server.got.length >= count, 30_000, () => `${w.got.length} down and ${server.got.length} up of ${count}`);
  assert.deepEqual(show(w.got), show(Array.from({ length: count }, (_, i) => down(i))));
  assert.deepEqual(show(server.got), expected('up', count));
  await waitFor(() => session.bufferedAmount === 0 && c.bufferedAmount === 0, 10_000, 'both ways acknowledged');
  assert.deepEqual(w.errors, []);
  assert.ok(full > 0, 'the window was full at times (else this shows nothing of it)');
});
