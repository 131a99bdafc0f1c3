/**
 * The store conformance suite: every SessionStore (server/store.ts) runs it.
 * `test/memory-store.test.ts` runs it against MemoryStore; a RedisStore runs
 * it the same way with its own factory.
 *
 * Each test gets a fresh, empty store from `makeStore()` (a store that lives
 * elsewhere gives each call its own namespace, so `count()` and node
 * heartbeats see only that test's sessions and nodes). Two server nodes are
 * two node ids: node A uses handle `a`, node B handle `b`, where `b` is
 * `connect(a)`, a second client of the same backend (for an in-process store,
 * the same object). The concurrency tests race the two handles on one session.
 *
 * What the suite decides where the interface is silent or unclear (each is
 * checked by a test):
 * - wake-ups are asynchronous: no listener runs inside `publish`'s call;
 * - `publish` works for any session id, held or not (a close is published
 *   after the delete);
 * - `release` and `forgetAttempt` of a session the store does not hold are
 *   no-ops (clean-up that may race a delete), not session_unknown;
 * - a subscription may become active after `subscribe()` returns (a remote
 *   store subscribes over the network): tests wait until a probe event
 *   published after subscribing is heard before relying on it (`listen`);
 * - two sessions created with one attempt (two nodes racing on a retried
 *   open): findByAttempt finds one of them, and deleting the other does not
 *   lose it;
 * - a session taken after a `release` is a takeover too: `took` is true and
 *   the fence grows;
 * - an owner whose heartbeat lapsed but whose session nobody took keeps it
 *   by claiming (same fence, `took` false): "succeeds when node owns it";
 * - a new session's `seenUntil` is some number (not undefined);
 * - `markDelivered` of a number below `delivered()` never moves it back.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { encodeEntry, encodeRequest, HoldlineError, isRpc, utf8Length, type CloseReason, type OutboxEntry, type Payload, type StreamItem } from '../shared/index.js';
import type { SessionStore, StoreEvent } from '../server/store.js';

export interface StoreConformanceOptions {
  /**
   * A second client of the same backend as `first` (another node's handle).
   * Default: `first` itself, for a store that lives in this process.
   */
  connect?: (first: SessionStore) => Promise<SessionStore> | SessionStore;
  /** Called once for every distinct handle after its test. Default: `store.close?.()`. */
  cleanup?: (store: SessionStore) => Promise<void>;
  /**
   * Known disagreements, by test title: each such test still runs, but as a
   * `todo` with this reason (reported, not failing the run) until the store
   * or the contract is fixed. Keep it empty for a store that conforms.
   */
  known?: Readonly<Record<string, string>>;
}

// ---- fixtures ----

const NODE_A = 'node-A';
const NODE_B = 'node-B';
const NODE_C = 'node-C';
/** A heartbeat TTL no test outlives: the node stays alive for the whole test. */
const ALIVE_MS = 60_000;
/** A short TTL, and a wait well past it (never a race: only "after" is asserted). */
const SHORT_MS = 50;
const PAST_SHORT_MS = 120;
const REASON: CloseReason = { code: 'server_closed', message: 'closed by the test' };
/** Session ids of the probe events `listen` publishes; Recorders do not record them. */
const PROBE = 'probe-';

interface World {
  /** Node A's handle. */
  a: SessionStore;
  /** Node B's handle on the same store (the same object for an in-process store). */
  b: SessionStore;
  /** Create a session owned by `owner` (default node A); returns its id. */
  open(opts?: { owner?: string; attempt?: string; token?: string }): Promise<string>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Deterministic pseudo-random numbers (mulberry32), so a failing round can be replayed. */
function seeded(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n: number): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % n);
  };
}

/** A payload as something deepEqual can compare: text as it is, binary as hex (and it must be a Uint8Array). */
function norm(p: StreamItem): string | { bin: string } {
  if (typeof p === 'string') return p;
  assert.ok(!isRpc(p), 'a plain message comes back as one');
  assert.ok(p instanceof Uint8Array, 'a binary payload comes back as a Uint8Array');
  return { bin: Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('hex') };
}

function isUnknown(e: unknown): boolean {
  return e instanceof HoldlineError && e.code === 'session_unknown';
}

async function rejectsUnknown(p: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isUnknown(e), `${what}: want a HoldlineError with code session_unknown, got ${String(e)}`);
    return true;
  });
}

/** The messages of a readOutbound/delete batch, in wire form. */
function wiresOf(m: string): unknown {
  return JSON.parse(m);
}

/** Records every (sid, event) a listener hears; waits for a count with a deadline. */
class Recorder {
  readonly heard: { sid: string; event: StoreEvent }[] = [];
  probes = 0;
  readonly listener = (sid: string, event: StoreEvent): void => {
    if (sid.startsWith(PROBE)) this.probes++;
    else this.heard.push({ sid, event });
  };

  async waitFor(n: number, what: string, ms = 2000): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.heard.length < n) {
      if (Date.now() > deadline) assert.fail(`${what}: heard ${this.heard.length} event(s) within ${ms} ms, want ${n}`);
      await sleep(2);
    }
  }
}

/**
 * Subscribe `rec` on `store`, and wait until the subscription is live: a
 * probe published after subscribing has been heard. Unsubscribes after the
 * test. One Recorder per subscription (its probe count tells this one is live).
 */
async function listen(t: TestContext, store: SessionStore, rec: Recorder): Promise<() => void> {
  assert.equal(rec.probes, 0, 'a Recorder serves one subscription');
  const off = store.subscribe(rec.listener);
  t.after(off);
  const deadline = Date.now() + 2000;
  for (let i = 0; rec.probes === 0; i++) {
    if (Date.now() > deadline) assert.fail('a subscription heard no event published after it within 2000 ms');
    await store.publish(`${PROBE}${i}`, { type: 'in', node: 'probe' });
    for (let k = 0; k < 10 && rec.probes === 0; k++) await sleep(2);
  }
  return off;
}

export function storeConformance(
  name: string,
  makeStore: () => Promise<SessionStore> | SessionStore,
  options: StoreConformanceOptions = {},
): void {
  const cleanup = options.cleanup ?? (async (s: SessionStore): Promise<void> => s.close?.());
  const known = options.known ?? {};
  const unused = new Set(Object.keys(known));
  /** node:test's `test`, run as a todo when the store has a known disagreement with this test. */
  const check = (title: string, fn: (t: TestContext) => Promise<void>): void => {
    const why = known[title];
    unused.delete(title);
    if (why === undefined) test(title, fn);
    else test(title, { todo: why }, fn);
  };

  async function world(t: TestContext): Promise<World> {
    const a = await makeStore();
    t.after(() => cleanup(a));
    const b = options.connect ? await options.connect(a) : a;
    if (b !== a) t.after(() => cleanup(b));
    let n = 0;
    return {
      a,
      b,
      async open(opts = {}) {
        n++;
        const sid = `sid-conformance-${n}`;
        await a.create({ sid, token: opts.token ?? `token-${n}`, attempt: opts.attempt ?? `attempt-${n}` }, opts.owner ?? NODE_A);
        return sid;
      },
    };
  }

  describe(`${name}: store conformance`, () => {
    test('options.known names only tests of this suite', () => {
      assert.deepEqual([...unused], []);
    });

    // ------------------------------------------------------------------
    describe('sessions', () => {
      check('create then get: the record, owned by its creator with fence 1', async (t) => {
        const w = await world(t);
        await w.a.create({ sid: 'sid-created-1', token: 'tok-1', attempt: 'att-00001' }, NODE_B);
        const r = await w.a.get('sid-created-1');
        assert.ok(r, 'get finds the created session');
        assert.deepEqual(
          { sid: r.sid, token: r.token, attempt: r.attempt, owner: r.owner, fence: r.fence },
          { sid: 'sid-created-1', token: 'tok-1', attempt: 'att-00001', owner: NODE_B, fence: 1 },
        );
        // The other node's handle sees the same record.
        const rb = await w.b.get('sid-created-1');
        assert.equal(rb?.owner, NODE_B);
        assert.equal(rb.fence, 1);
        assert.equal(await w.a.get('sid-never-made'), undefined);
        // A session's meta (what authenticate said, as JSON) goes with its record, to every node; none stays none.
        await w.a.create({ sid: 'sid-created-2', token: 'tok-2', attempt: '', meta: '{"user":"ann","roles":["a"]}' }, NODE_A);
        assert.equal((await w.b.get('sid-created-2'))?.meta, '{"user":"ann","roles":["a"]}');
        assert.equal(r.meta, undefined);
      });

      check("a new session's streams are empty", async (t) => {
        const w = await world(t);
        const sid = await w.open();
        assert.equal(await w.a.pendingOutbound(sid), 0);
        assert.deepEqual(await w.a.readOutbound(sid, 1000), { seq: 1, count: 0, m: '[]', wireBytes: 2, inboundAck: 0 });
        assert.deepEqual(await w.a.ackOutbound(sid, 0), { result: 'stale', bufferedBytes: 0, lastSeq: 0 });
        assert.equal((await w.a.readInbound(sid, 1)).messages.length, 0);
        assert.equal(await w.a.delivered(sid), 0);
        assert.equal(typeof (await w.a.seenUntil(sid)), 'number', 'seenUntil of a held session is a number');
        assert.equal(await w.a.tombstone(sid), undefined, 'a live session has no tombstone');
      });

      check('findByAttempt finds a session by its open attempt, only that one', async (t) => {
        const w = await world(t);
        const s1 = await w.open({ attempt: 'attempt-one', token: 'tok-one' });
        const s2 = await w.open({ attempt: 'attempt-two', owner: NODE_B });
        const s3 = await w.open({ attempt: '' });
        const r1 = await w.b.findByAttempt('attempt-one');
        assert.equal(r1?.sid, s1);
        assert.equal(r1.token, 'tok-one');
        assert.equal(r1.owner, NODE_A);
        assert.equal(r1.fence, 1);
        assert.equal((await w.a.findByAttempt('attempt-two'))?.sid, s2);
        assert.equal(await w.a.findByAttempt('attempt-none'), undefined);
        assert.equal(await w.a.findByAttempt(''), undefined, `session ${s3} made with no attempt is not found by ''`);
      });

      check("forgetAttempt: the attempt is '' and findByAttempt no longer finds it; the rest stays", async (t) => {
        const w = await world(t);
        const s1 = await w.open({ attempt: 'attempt-one', token: 'tok-one' });
        const s2 = await w.open({ attempt: 'attempt-two' });
        await w.b.forgetAttempt(s1);
        assert.equal(await w.a.findByAttempt('attempt-one'), undefined);
        assert.equal(await w.a.findByAttempt(''), undefined);
        const r = await w.a.get(s1);
        assert.ok(r);
        assert.deepEqual({ sid: r.sid, token: r.token, attempt: r.attempt, owner: r.owner, fence: r.fence }, { sid: s1, token: 'tok-one', attempt: '', owner: NODE_A, fence: 1 });
        assert.equal((await w.a.findByAttempt('attempt-two'))?.sid, s2, "another session's attempt is kept");
        await w.a.forgetAttempt(s1); // twice: still fine
        assert.equal((await w.a.get(s1))?.attempt, '');
      });

      check("the record stays as it was through a session's first messages each way", async (t) => {
        const w = await world(t);
        const sid = await w.open({ attempt: 'attempt-001', token: 'tok-1' });
        await w.a.enqueue(sid, [encodeEntry('a'), encodeEntry('bc')]);
        await w.b.acceptInbound(sid, 1, ['x']);
        const r = await w.a.get(sid);
        assert.equal(r?.token, 'tok-1');
        assert.equal(r.attempt, 'attempt-001');
        assert.equal(r.owner, NODE_A);
        assert.equal(r.fence, 1);
        assert.equal((await w.a.findByAttempt('attempt-001'))?.sid, sid);
      });

      check('count counts the sessions held, through creates and deletes', async (t) => {
        const w = await world(t);
        assert.equal(await w.a.count(), 0);
        const s1 = await w.open();
        const s2 = await w.open();
        await w.open();
        assert.equal(await w.a.count(), 3);
        assert.equal(await w.b.count(), 3);
        await w.a.delete(s1);
        await w.b.delete(s2, { reason: REASON, ttlMs: ALIVE_MS });
        assert.equal(await w.a.count(), 1, 'a tombstone is not a session');
      });

      check('delete hands back the unacknowledged outbound messages in order and removes everything', async (t) => {
        const w = await world(t);
        const sid = await w.open({ attempt: 'attempt-del' });
        const other = await w.open();
        // A request frame (calls with replies) is kept and handed back like a message.
        const entries = [encodeEntry('one'), encodeEntry(new Uint8Array([0, 1, 254, 255])), encodeEntry('thrée'), encodeRequest(7, 'ask "x"'), encodeEntry('four')];
        await w.a.enqueue(sid, entries.slice(0, 2));
        await w.a.enqueue(sid, entries.slice(2));
        await w.a.ackOutbound(sid, 1);
        await w.a.acceptInbound(sid, 1, ['in-1', 'in-2']);
        await w.a.touch(sid, Date.now() + ALIVE_MS);
        await w.a.enqueue(other, [encodeEntry('other')]);

        assert.deepEqual(await w.b.delete(sid), entries.slice(1), 'the unacknowledged entries, in order, as enqueued');

        assert.equal(await w.a.get(sid), undefined);
        assert.equal(await w.b.get(sid), undefined);
        assert.equal(await w.a.findByAttempt('attempt-del'), undefined);
        assert.equal(await w.a.seenUntil(sid), undefined);
        assert.equal(await w.a.tombstone(sid), undefined, 'no tombstone unless asked');
        assert.equal(await w.a.count(), 1);
        for (const h of [w.a, w.b]) {
          await rejectsUnknown(h.enqueue(sid, [encodeEntry('late')]), 'enqueue');
          await rejectsUnknown(h.ackOutbound(sid, 1), 'ackOutbound');
          await rejectsUnknown(h.readOutbound(sid, 1000), 'readOutbound');
          await rejectsUnknown(h.pendingOutbound(sid), 'pendingOutbound');
          await rejectsUnknown(h.acceptInbound(sid, 3, ['late']), 'acceptInbound');
          await rejectsUnknown(h.readInbound(sid, 1), 'readInbound');
          await rejectsUnknown(h.markDelivered(sid, 1, 1), 'markDelivered');
          await rejectsUnknown(h.delivered(sid), 'delivered');
          await rejectsUnknown(h.claim(sid, NODE_A), 'claim');
          await rejectsUnknown(h.touch(sid, Date.now()), 'touch');
        }
        // The other session is untouched.
        assert.equal(await w.a.pendingOutbound(other), 1);
      });

      check('delete of a session that never sent returns [] ; delete of an unknown session returns [] and leaves no tombstone', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        assert.deepEqual(await w.a.delete(sid), []);
        assert.deepEqual(await w.a.delete(sid), [], 'deleting twice');
        assert.deepEqual(await w.a.delete('sid-never-made', { reason: REASON, ttlMs: ALIVE_MS }), []);
        assert.equal(await w.a.tombstone('sid-never-made'), undefined, 'no token to keep, so no tombstone');
      });

      check('delete with a tombstone: tombstone() tells why it closed, with the token', async (t) => {
        const w = await world(t);
        const sid = await w.open({ token: 'tok-stone' });
        const live = await w.open();
        await w.a.enqueue(sid, [encodeEntry('unread')]);
        const reason: CloseReason = { code: 'idle_timeout', message: 'nobody polled' };
        assert.deepEqual(await w.a.delete(sid, { reason, ttlMs: ALIVE_MS }), [encodeEntry('unread')]);
        assert.deepEqual(await w.b.tombstone(sid), { reason, token: 'tok-stone' });
        assert.equal(await w.a.get(sid), undefined, 'the tombstone is not the session');
        assert.equal(await w.a.tombstone(live), undefined);
      });

      check('a tombstone expires after its ttlMs', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        await w.a.delete(sid, { reason: REASON, ttlMs: SHORT_MS });
        await sleep(PAST_SHORT_MS);
        assert.equal(await w.a.tombstone(sid), undefined);
        assert.equal(await w.b.tombstone(sid), undefined);
      });

      check('operations on a session the store never held reject with session_unknown (reads return undefined)', async (t) => {
        const w = await world(t);
        await w.open();
        const sid = 'sid-never-made';
        assert.equal(await w.a.get(sid), undefined);
        assert.equal(await w.a.seenUntil(sid), undefined);
        assert.equal(await w.a.tombstone(sid), undefined);
        await rejectsUnknown(w.a.enqueue(sid, [encodeEntry('x')]), 'enqueue');
        await rejectsUnknown(w.a.ackOutbound(sid, 0), 'ackOutbound');
        await rejectsUnknown(w.a.readOutbound(sid, 1000), 'readOutbound');
        await rejectsUnknown(w.a.pendingOutbound(sid, 1), 'pendingOutbound');
        await rejectsUnknown(w.a.acceptInbound(sid, 1, ['x']), 'acceptInbound');
        await rejectsUnknown(w.a.readInbound(sid, 1), 'readInbound');
        await rejectsUnknown(w.a.markDelivered(sid, 1, 1), 'markDelivered');
        await rejectsUnknown(w.a.delivered(sid), 'delivered');
        await rejectsUnknown(w.a.claim(sid, NODE_A), 'claim');
        await rejectsUnknown(w.a.touch(sid, Date.now()), 'touch');
        // Clean-up that may race a delete: no-ops here.
        await w.a.forgetAttempt(sid);
        await w.a.release(sid, NODE_A, 1);
        assert.equal(await w.a.count(), 1, 'nothing was made by any of these');
      });
    });

    // ------------------------------------------------------------------
    describe('outbound stream', () => {
      check('enqueue numbers messages 1..n across calls; bufferedBytes counts payload bytes', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        // 'é' is 2 bytes of UTF-8, the binary 5 bytes.
        assert.deepEqual(await w.a.enqueue(sid, [encodeEntry('ab'), encodeEntry('é')]), { lastSeq: 2, bufferedBytes: 4 });
        assert.deepEqual(await w.b.enqueue(sid, [encodeEntry(new Uint8Array(5))]), { lastSeq: 3, bufferedBytes: 9 });
        assert.deepEqual(await w.a.enqueue(sid, []), { lastSeq: 3, bufferedBytes: 9 }, 'an empty append changes nothing');
        assert.deepEqual(await w.a.enqueue(sid, [encodeEntry('x'), encodeEntry('y'), encodeEntry('z')]), { lastSeq: 6, bufferedBytes: 12 });
        assert.equal(await w.a.pendingOutbound(sid), 6);
      });

      check('ackOutbound: ok moves the ack, stale and future change nothing', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        await w.a.enqueue(sid, [encodeEntry('aaaa'), encodeEntry('bb'), encodeEntry('c')]);
        assert.deepEqual(await w.b.ackOutbound(sid, 2), { result: 'ok', bufferedBytes: 1, lastSeq: 3 });
        assert.deepEqual(await w.a.ackOutbound(sid, 1), { result: 'stale', bufferedBytes: 1, lastSeq: 3 }, 'below the ack');
        assert.deepEqual(await w.a.ackOutbound(sid, 2), { result: 'stale', bufferedBytes: 1, lastSeq: 3 }, 'equal to the ack');
        assert.deepEqual(await w.a.ackOutbound(sid, 4), { result: 'future', bufferedBytes: 1, lastSeq: 3 }, 'past lastSeq');
        assert.equal(await w.a.pendingOutbound(sid), 1, 'a future ack drops nothing');
        assert.deepEqual(await w.a.ackOutbound(sid, 3), { result: 'ok', bufferedBytes: 0, lastSeq: 3 });
        assert.equal(await w.a.pendingOutbound(sid), 0);
        // Numbering goes on after everything was acknowledged.
        assert.deepEqual(await w.a.enqueue(sid, [encodeEntry('d')]), { lastSeq: 4, bufferedBytes: 1 });
      });

      check('readOutbound starts at the first unacknowledged message, or at a later `from`', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        const bin = new Uint8Array([1, 2, 3, 250]);
        const entries = ['m1', 'm2', 'with "quotes" and \\ and é', bin, 'm5'].map((p) => encodeEntry(p));
        const wires = entries.map((e) => e.wire);
        await w.a.enqueue(sid, entries);
        await w.a.ackOutbound(sid, 2);

        const all = await w.b.readOutbound(sid, 100_000);
        assert.equal(all.seq, 3);
        assert.equal(all.count, 3);
        assert.deepEqual(wiresOf(all.m), wires.slice(2));
        assert.equal(all.wireBytes, utf8Length(all.m));

        const from4 = await w.a.readOutbound(sid, 100_000, 4);
        assert.deepEqual({ seq: from4.seq, count: from4.count }, { seq: 4, count: 2 });
        assert.deepEqual(wiresOf(from4.m), wires.slice(3));
        assert.equal(from4.wireBytes, utf8Length(from4.m));

        const from1 = await w.a.readOutbound(sid, 100_000, 1);
        assert.deepEqual({ seq: from1.seq, count: from1.count }, { seq: 3, count: 3 }, 'a `from` already acknowledged starts at the first unacknowledged');

        const past = await w.a.readOutbound(sid, 100_000, 6);
        assert.equal(past.count, 0);
        assert.equal(past.m, '[]');
        assert.equal(past.wireBytes, 2);
      });

      check('enqueueAndRead (where a store has it) gives what enqueue and then readOutbound give', async (t) => {
        const w = await world(t);
        const [both, one] = [await w.open(), await w.open()];
        const first = ['m1', 'with "quotes" and \\ and é', new Uint8Array([1, 2, 250])].map((p) => encodeEntry(p));
        const second = ['m4', new Uint8Array(70), 'm6', 'm7'].map((p) => encodeEntry(p));
        for (const sid of [both, one]) {
          await w.a.enqueue(sid, first);
          await w.a.ackOutbound(sid, 1);
        }
        const enqueueAndRead = w.a.enqueueAndRead?.bind(w.a);
        if (enqueueAndRead === undefined) {
          t.diagnostic(`${name} has no enqueueAndRead: the transports call enqueue and readOutbound`);
          return;
        }
        // Reads of every shape: all of it, from a later message, within a byte limit, at most two messages.
        const asks = [
          { maxWireBytes: 100_000, from: undefined, maxCount: Infinity },
          { maxWireBytes: 100_000, from: 4, maxCount: Infinity },
          { maxWireBytes: 30, from: undefined, maxCount: Infinity },
          { maxWireBytes: 100_000, from: undefined, maxCount: 2 },
        ];
        for (const ask of asks) {
          const got = await enqueueAndRead(both, second, ask);
          const enqueued = await w.b.enqueue(one, second);
          const read = await w.b.readOutbound(one, ask.maxWireBytes, ask.from, ask.maxCount);
          assert.deepEqual(got, { ...enqueued, batch: read }, JSON.stringify(ask));
        }
        // One message onto a stream with nothing pending from the read's start (a broadcast to a held poll), and onto one with something pending.
        const [fresh, twin] = [await w.open(), await w.open()];
        const singles = ['é "q" \\', new Uint8Array([0, 255]), 'x'.repeat(5000), 'after'].map((p) => encodeEntry(p));
        for (const [i, single] of singles.entries()) {
          const ask = { maxWireBytes: 30, from: i === 3 ? 4 : undefined, maxCount: 10 };
          const got = await enqueueAndRead(fresh, [single], ask);
          const enqueued = await w.b.enqueue(twin, [single]);
          const read = await w.b.readOutbound(twin, ask.maxWireBytes, ask.from, ask.maxCount);
          assert.deepEqual(got, { ...enqueued, batch: read }, `single ${i}`);
          // Acknowledged but for the third: the fourth finds it pending before its own (read from 4 on).
          if (i !== 2) for (const sid of [fresh, twin]) await w.a.ackOutbound(sid, i + 1);
        }
        const [ask] = asks;
        assert.ok(ask);
        await assert.rejects(enqueueAndRead('sid-never-made', second, ask), (e: unknown) => e instanceof HoldlineError && e.code === 'session_unknown');
      });

      check('ackAndRead (where a store has it) gives what ackOutbound and then readOutbound give; no batch for a refused ack or nothing pending', async (t) => {
        const w = await world(t);
        const [both, one] = [await w.open(), await w.open()];
        const ackAndRead = w.a.ackAndRead?.bind(w.a);
        if (ackAndRead === undefined) {
          t.diagnostic(`${name} has no ackAndRead: a poll's ack and its read are separate calls`);
          return;
        }
        const entries = ['m1', 'with "quotes" and \\ and é', new Uint8Array([1, 2, 250]), 'm4', new Uint8Array(70), 'm6', 'm7'].map((p) => encodeEntry(p));
        for (const sid of [both, one]) await w.a.enqueue(sid, entries);
        // Acks that move (ok), repeat (stale) and overshoot (future), with reads of every shape.
        const steps: Array<[number, { maxWireBytes: number; from: number | undefined; maxCount: number }]> = [
          [1, { maxWireBytes: 100_000, from: undefined, maxCount: Infinity }],
          [1, { maxWireBytes: 100_000, from: 5, maxCount: Infinity }],
          [3, { maxWireBytes: 30, from: undefined, maxCount: Infinity }],
          [4, { maxWireBytes: 100_000, from: undefined, maxCount: 2 }],
          [5, { maxWireBytes: 100_000, from: 8, maxCount: Infinity }],
          [99, { maxWireBytes: 100_000, from: undefined, maxCount: Infinity }],
          [7, { maxWireBytes: 100_000, from: undefined, maxCount: Infinity }],
        ];
        for (const [ack, ask] of steps) {
          const got = await ackAndRead(both, ack, ask);
          const acked = await w.b.ackOutbound(one, ack);
          const read = acked.result === 'future' ? undefined : await w.b.readOutbound(one, ask.maxWireBytes, ask.from, ask.maxCount);
          const batch = read === undefined || read.count === 0 ? undefined : read;
          assert.deepEqual({ ...got, batch: got.batch }, { ...acked, batch }, `ack ${ack}, ${JSON.stringify(ask)}`);
        }
        await assert.rejects(
          ackAndRead('sid-never-made', 1, { maxWireBytes: 1000, from: undefined, maxCount: Infinity }),
          (e: unknown) => e instanceof HoldlineError && e.code === 'session_unknown',
        );
      });

      check('readOutbound keeps m within maxWireBytes, and always gives at least one message', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        // Each "aaaa" is 6 bytes in the array plus a separator: k of them take 7k + 1 bytes.
        await w.a.enqueue(sid, Array.from({ length: 5 }, () => encodeEntry('aaaa')));
        for (const [limit, want] of [[15, 2], [14, 1], [22, 3], [36, 5], [1000, 5]] as const) {
          const b = await w.a.readOutbound(sid, limit);
          assert.equal(b.count, want, `maxWireBytes ${limit}`);
          assert.equal(b.seq, 1);
          assert.ok(b.wireBytes <= limit, `wireBytes ${b.wireBytes} <= ${limit}`);
          assert.equal(b.wireBytes, utf8Length(b.m));
        }
        const one = await w.a.readOutbound(sid, 1);
        assert.equal(one.count, 1, 'one message even when it alone is over the limit');
        assert.deepEqual(wiresOf(one.m), ['aaaa']);
        assert.equal(one.wireBytes, 8);
        const big = await w.open();
        await w.a.enqueue(big, [encodeEntry('x'.repeat(5000)), encodeEntry('y')]);
        const b = await w.a.readOutbound(big, 100);
        assert.equal(b.count, 1);
        assert.equal(b.wireBytes, 5004);
      });

      check('readOutbound carries the inbound cumulative ack to piggyback', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        assert.equal((await w.a.readOutbound(sid, 1000)).inboundAck, 0);
        await w.b.acceptInbound(sid, 1, ['a', 'b', 'c']);
        const empty = await w.a.readOutbound(sid, 1000);
        assert.equal(empty.inboundAck, 3, 'with nothing outbound');
        assert.equal(empty.count, 0);
        await w.a.enqueue(sid, [encodeEntry('out')]);
        await w.b.acceptInbound(sid, 4, ['d']);
        const full = await w.a.readOutbound(sid, 1000);
        assert.equal(full.inboundAck, 4);
        assert.equal(full.count, 1);
        await w.a.markDelivered(sid, 4, 1);
        assert.equal((await w.a.readOutbound(sid, 1000)).inboundAck, 4, 'delivery does not move the cumulative ack');
      });

      check('pendingOutbound counts unacknowledged messages, from `from` when given', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        await w.a.enqueue(sid, ['1', '2', '3', '4', '5'].map((p) => encodeEntry(p)));
        await w.a.ackOutbound(sid, 2);
        assert.equal(await w.b.pendingOutbound(sid), 3);
        assert.equal(await w.b.pendingOutbound(sid, 4), 2);
        assert.equal(await w.b.pendingOutbound(sid, 5), 1);
        assert.equal(await w.b.pendingOutbound(sid, 1), 3, 'a `from` already acknowledged counts from the first unacknowledged');
        assert.equal(await w.b.pendingOutbound(sid, 6), 0);
        assert.equal(await w.b.pendingOutbound(sid, 100), 0);
      });
    });

    // ------------------------------------------------------------------
    describe('inbound stream', () => {
      check('acceptInbound de-duplicates: skip counts what it had, a hole is refused with `expected`', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        assert.deepEqual(await w.a.acceptInbound(sid, 1, ['a', 'b', 'c']), { ok: true, skip: 0, ack: 3 });
        assert.deepEqual(await w.b.acceptInbound(sid, 2, ['b', 'c', 'd']), { ok: true, skip: 2, ack: 4 }, 'an overlapping retry');
        assert.deepEqual(await w.a.acceptInbound(sid, 1, ['a', 'b']), { ok: true, skip: 2, ack: 4 }, 'a full replay');
        assert.deepEqual(await w.a.acceptInbound(sid, 5, []), { ok: true, skip: 0, ack: 4 }, 'an empty batch');
        assert.deepEqual(await w.a.acceptInbound(sid, 7, ['g']), { ok: false, expected: 5, ack: 4 }, 'a hole');
        assert.deepEqual(await w.a.acceptInbound(sid, 5, ['e']), { ok: true, skip: 0, ack: 5 });
        const kept = await w.a.readInbound(sid, 1);
        assert.equal(kept.seq, 1);
        assert.deepEqual(kept.messages.map(norm), ['a', 'b', 'c', 'd', 'e'], 'each accepted once, nothing from the refused batch');
      });

      check('accepted messages are kept byte-exact (text and binary) until delivered', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        const bin = new Uint8Array([0, 255, 1, 128, 0x22, 0x5c]);
        const text = 'quotes " backslash \\ newline \n emoji 😀 nul \u0000 é';
        await w.b.acceptInbound(sid, 1, [text, bin, '', new Uint8Array(0)]);
        const kept = await w.a.readInbound(sid, 1);
        assert.equal(kept.seq, 1);
        assert.equal(kept.messages.length, 4);
        assert.deepEqual(kept.messages.map(norm), [text, { bin: '00ff0180225c' }, '', { bin: '' }]);
        // Reading does not consume: the owner can read again after a crash.
        assert.deepEqual((await w.b.readInbound(sid, 1)).messages.map(norm), kept.messages.map(norm));
        // Request and reply frames ({r: text}) are kept as frames, never turned into messages.
        const frame = { r: '{"v":1,"q":1,"d":"é \\" 😀"}' };
        await w.b.acceptInbound(sid, 5, ['after', frame, 't']);
        const more = await w.a.readInbound(sid, 5);
        assert.deepEqual(more.messages, ['after', frame, 't']);
      });

      check('readInbound(from) starts at `from`, or at the first message not delivered', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        await w.a.acceptInbound(sid, 1, ['a', 'b', 'c', 'd']);
        const from3 = await w.b.readInbound(sid, 3);
        assert.equal(from3.seq, 3);
        assert.deepEqual(from3.messages.map(norm), ['c', 'd']);
        assert.equal((await w.b.readInbound(sid, 5)).messages.length, 0, 'past the last accepted');
        assert.equal(await w.a.markDelivered(sid, 2, 1), true);
        const from1 = await w.b.readInbound(sid, 1);
        assert.equal(from1.seq, 3, 'the delivered ones are gone');
        assert.deepEqual(from1.messages.map(norm), ['c', 'd']);
      });

      check('markDelivered drops messages up to seq and moves delivered(); a replay does not bring them back', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        assert.equal(await w.a.delivered(sid), 0);
        await w.a.acceptInbound(sid, 1, ['a', 'b', 'c']);
        assert.equal(await w.a.markDelivered(sid, 2, 1), true);
        assert.equal(await w.b.delivered(sid), 2);
        assert.deepEqual((await w.a.readInbound(sid, 1)).messages.map(norm), ['c']);
        await w.a.markDelivered(sid, 1, 1);
        assert.equal(await w.a.delivered(sid), 2, 'delivered() is the highest, never moved back');
        assert.deepEqual((await w.a.readInbound(sid, 1)).messages.map(norm), ['c']);
        assert.equal(await w.a.markDelivered(sid, 3, 1), true);
        assert.equal(await w.a.delivered(sid), 3);
        assert.equal((await w.a.readInbound(sid, 1)).messages.length, 0);
        assert.deepEqual(await w.b.acceptInbound(sid, 1, ['a', 'b', 'c']), { ok: true, skip: 3, ack: 3 });
        assert.equal((await w.a.readInbound(sid, 1)).messages.length, 0, 'a replay of delivered messages keeps nothing');
      });

      check('markDelivered with a fence that is not the current one is refused and drops nothing', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        await w.a.acceptInbound(sid, 1, ['a', 'b']);
        assert.equal(await w.a.markDelivered(sid, 2, 0), false);
        assert.equal(await w.a.markDelivered(sid, 2, 2), false, 'a fence from the future');
        assert.equal(await w.a.delivered(sid), 0);
        assert.deepEqual((await w.a.readInbound(sid, 1)).messages.map(norm), ['a', 'b']);
      });
    });

    // ------------------------------------------------------------------
    describe('owner', () => {
      check('the owner keeps its session by claiming; another node is refused while the owner beats', async (t) => {
        const w = await world(t);
        const sid = await w.open({ owner: NODE_A });
        await w.a.heartbeat(NODE_A, ALIVE_MS);
        await w.b.heartbeat(NODE_B, ALIVE_MS);
        assert.deepEqual(await w.a.claim(sid, NODE_A), { owned: true, fence: 1, took: false });
        assert.deepEqual(await w.b.claim(sid, NODE_B), { owned: false, owner: NODE_A });
        const r = await w.b.get(sid);
        assert.equal(r?.owner, NODE_A);
        assert.equal(r.fence, 1);
        assert.deepEqual(await w.a.claim(sid, NODE_A), { owned: true, fence: 1, took: false }, 'still the owner');
      });

      check("after the owner's heartbeat lapses the next claim takes it over: fence 2, the old owner is fenced out", async (t) => {
        const w = await world(t);
        const sid = await w.open({ owner: NODE_A });
        const second = await w.open({ owner: NODE_A });
        await w.a.acceptInbound(sid, 1, ['a', 'b', 'c']);
        await w.a.heartbeat(NODE_A, SHORT_MS);
        await w.b.heartbeat(NODE_B, ALIVE_MS);
        await sleep(PAST_SHORT_MS);

        assert.deepEqual(await w.b.claim(sid, NODE_B), { owned: true, fence: 2, took: true });
        const r = await w.a.get(sid);
        assert.equal(r?.owner, NODE_B);
        assert.equal(r.fence, 2);
        assert.deepEqual(await w.b.claim(sid, NODE_B), { owned: true, fence: 2, took: false }, 'the new owner keeps it');

        assert.equal(await w.a.markDelivered(sid, 2, 1), false, "the old owner's fence 1 is refused");
        assert.equal(await w.a.delivered(sid), 0);
        assert.deepEqual((await w.b.readInbound(sid, 1)).messages.map(norm), ['a', 'b', 'c'], 'the new owner delivers them all again');
        assert.equal(await w.b.markDelivered(sid, 2, 2), true);
        assert.equal(await w.b.delivered(sid), 2);

        // Every session of the lapsed node is up for taking, and none moves without a claim.
        assert.equal((await w.a.get(second))?.owner, NODE_A, 'no claim, no change');
        assert.deepEqual(await w.b.claim(second, NODE_B), { owned: true, fence: 2, took: true });

        // The old owner comes back: the session is B's now.
        await w.a.heartbeat(NODE_A, ALIVE_MS);
        assert.deepEqual(await w.a.claim(sid, NODE_A), { owned: false, owner: NODE_B });
      });

      check('heartbeat says whether the previous beat was still there: not for a first beat, nor after a lapse or forgetNode', async (t) => {
        const w = await world(t);
        assert.equal(await w.a.heartbeat(NODE_C, ALIVE_MS), false, 'a first beat');
        assert.equal(await w.b.heartbeat(NODE_C, ALIVE_MS), true, 'the beat before it lives (seen from any handle)');
        assert.equal(await w.a.heartbeat(NODE_C, SHORT_MS), true);
        await sleep(PAST_SHORT_MS);
        assert.equal(await w.a.heartbeat(NODE_C, ALIVE_MS), false, 'after a lapse');
        await w.a.forgetNode(NODE_C);
        assert.equal(await w.a.heartbeat(NODE_C, ALIVE_MS), false, 'after forgetNode');
      });

      check('a node that never beat counts as dead', async (t) => {
        const w = await world(t);
        const sid = await w.open({ owner: NODE_C });
        await w.b.heartbeat(NODE_B, ALIVE_MS);
        assert.deepEqual(await w.b.claim(sid, NODE_B), { owned: true, fence: 2, took: true });
        assert.equal((await w.a.get(sid))?.owner, NODE_B);
      });

      check("an owner whose heartbeat lapsed keeps its session if nobody took it (claim by the owner succeeds)", async (t) => {
        const w = await world(t);
        const sid = await w.open({ owner: NODE_A });
        await w.a.acceptInbound(sid, 1, ['a']);
        await w.a.heartbeat(NODE_A, SHORT_MS);
        await sleep(PAST_SHORT_MS);
        assert.deepEqual(await w.a.claim(sid, NODE_A), { owned: true, fence: 1, took: false });
        assert.equal(await w.a.markDelivered(sid, 1, 1), true, 'fence 1 is still current');
      });

      check('release hands the session to the next claim at once; a release by a non-owner or with an old fence is a no-op', async (t) => {
        const w = await world(t);
        const sid = await w.open({ owner: NODE_A });
        await w.a.acceptInbound(sid, 1, ['a']);
        await w.a.heartbeat(NODE_A, ALIVE_MS);
        await w.b.heartbeat(NODE_B, ALIVE_MS);
        await w.b.release(sid, NODE_B, 1); // not the owner
        await w.a.release(sid, NODE_A, 2); // not the fence
        assert.deepEqual(await w.b.claim(sid, NODE_B), { owned: false, owner: NODE_A });

        await w.a.release(sid, NODE_A, 1);
        assert.deepEqual(await w.b.claim(sid, NODE_B), { owned: true, fence: 2, took: true }, 'taken at once, though A still beats');
        assert.equal((await w.a.get(sid))?.owner, NODE_B);
        assert.equal(await w.a.markDelivered(sid, 1, 1), false, "the releaser's fence is stale");
        assert.equal(await w.b.markDelivered(sid, 1, 2), true);
      });

      check('forgetNode: the next claim takes its sessions at once', async (t) => {
        const w = await world(t);
        const sid = await w.open({ owner: NODE_A });
        await w.a.heartbeat(NODE_A, ALIVE_MS);
        await w.b.heartbeat(NODE_B, ALIVE_MS);
        assert.deepEqual(await w.b.claim(sid, NODE_B), { owned: false, owner: NODE_A });
        await w.a.forgetNode(NODE_A);
        assert.deepEqual(await w.b.claim(sid, NODE_B), { owned: true, fence: 2, took: true });
      });
    });

    // ------------------------------------------------------------------
    describe('liveness', () => {
      check('touch only moves seenUntil forward', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        const t0 = Date.now() + 10_000;
        await w.a.touch(sid, t0);
        assert.equal(await w.b.seenUntil(sid), t0);
        await w.b.touch(sid, t0 - 5_000);
        assert.equal(await w.a.seenUntil(sid), t0, 'an earlier time does not move it back');
        await w.b.touch(sid, t0 + 1);
        assert.equal(await w.a.seenUntil(sid), t0 + 1);
        assert.equal(await w.a.seenUntil('sid-never-made'), undefined);
      });
    });

    // ------------------------------------------------------------------
    describe('wake-ups', () => {
      const events: StoreEvent[] = [
        { type: 'out', node: NODE_A },
        { type: 'ack', node: NODE_B, ack: 17, bufferedBytes: 4096 },
        { type: 'in', node: NODE_A },
        { type: 'poll', node: NODE_B, at: 1_700_000_000_123 },
        { type: 'close', node: NODE_A, reason: { code: 'idle_timeout', message: 'nobody polled for 30 s' } },
        { type: 'broadcast', node: NODE_B, data: 'to everyone' },
        { type: 'broadcast', node: NODE_A, data: { b: 'AAEC/w==' } },
      ];

      check('publish reaches every subscriber, the publisher included, with the sid and the event as published', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        const onA = new Recorder();
        const onB = new Recorder();
        await listen(t, w.a, onA);
        await listen(t, w.b, onB);
        for (const event of events) await w.a.publish(sid, event);
        await onA.waitFor(events.length, "the publisher's own subscriber");
        await onB.waitFor(events.length, "the other node's subscriber");
        const want = events.map((event) => ({ sid, event }));
        assert.deepEqual(onA.heard, want, 'every event, in order');
        assert.deepEqual(onB.heard, want, 'every event, in order');
      });

      check("a subscriber hears every session's events", async (t) => {
        const w = await world(t);
        const s1 = await w.open();
        const s2 = await w.open();
        const rec = new Recorder();
        await listen(t, w.b, rec);
        await w.a.publish(s1, { type: 'in', node: NODE_A });
        await w.a.publish(s2, { type: 'out', node: NODE_A });
        await rec.waitFor(2, 'two sessions');
        assert.deepEqual(rec.heard.map((h) => h.sid), [s1, s2]);
      });

      check('unsubscribe stops delivery to that listener only', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        const gone = new Recorder();
        const stays = new Recorder();
        const off = await listen(t, w.b, gone);
        await listen(t, w.b, stays);
        await w.a.publish(sid, { type: 'out', node: NODE_A });
        await gone.waitFor(1, 'before unsubscribing');
        await stays.waitFor(1, 'before unsubscribing');
        off();
        off(); // twice is harmless
        await w.a.publish(sid, { type: 'in', node: NODE_A });
        await w.a.publish(sid, { type: 'poll', node: NODE_A, at: Date.now() });
        await stays.waitFor(3, 'the listener still subscribed');
        await sleep(20);
        assert.equal(gone.heard.length, 1, 'nothing after unsubscribe');
      });

      check('a listener never runs inside publish: events arrive asynchronously', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        const onA = new Recorder();
        const onB = new Recorder();
        await listen(t, w.a, onA);
        await listen(t, w.b, onB);
        const published = w.a.publish(sid, { type: 'out', node: NODE_A });
        assert.equal(onA.heard.length + onB.heard.length, 0, 'a listener ran synchronously inside publish()');
        await published;
        await onA.waitFor(1, "the publisher's own subscription");
        await onB.waitFor(1, "the other node's subscription");
      });

      check('publish works for a session the store no longer holds (a close is published after the delete)', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        const rec = new Recorder();
        await listen(t, w.b, rec);
        await w.a.delete(sid, { reason: REASON, ttlMs: ALIVE_MS });
        await w.a.publish(sid, { type: 'close', node: NODE_A, reason: REASON });
        await rec.waitFor(1, 'the close');
        assert.deepEqual(rec.heard, [{ sid, event: { type: 'close', node: NODE_A, reason: REASON } }]);
      });
    });

    // ------------------------------------------------------------------
    describe('two nodes racing on one session', () => {
      check("both claim a dead owner's session at once: exactly one wins (50 rounds)", async (t) => {
        const w = await world(t);
        await w.a.heartbeat(NODE_A, ALIVE_MS);
        await w.b.heartbeat(NODE_B, ALIVE_MS);
        let winsA = 0;
        for (let round = 0; round < 50; round++) {
          const sid = await w.open({ owner: NODE_C }); // C never beats: dead
          // Alternate who starts first, so neither handle always has the head start.
          const [ra, rb] = round % 2 === 0
            ? await Promise.all([w.a.claim(sid, NODE_A), w.b.claim(sid, NODE_B)])
            : await Promise.all([w.b.claim(sid, NODE_B), w.a.claim(sid, NODE_A)]).then(([y, x]) => [x, y] as const);
          const winners = [ra, rb].filter((r) => r.owned);
          assert.equal(winners.length, 1, `round ${round}: exactly one winner, got ${JSON.stringify([ra, rb])}`);
          const winner = ra.owned ? NODE_A : NODE_B;
          const [won, lost] = ra.owned ? [ra, rb] : [rb, ra];
          assert.deepEqual(won, { owned: true, fence: 2, took: true }, `round ${round}`);
          assert.deepEqual(lost, { owned: false, owner: winner }, `round ${round}`);
          const r = await w.a.get(sid);
          assert.equal(r?.owner, winner);
          assert.equal(r.fence, 2);
          if (winner === NODE_A) winsA++;
        }
        t.diagnostic(`node A won ${winsA} of 50 rounds`);
      });

      check('both accept the same retried batch at once: each message is kept once (50 rounds)', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        let next = 1;
        for (let round = 0; round < 50; round++) {
          const len = 1 + (round % 5);
          const batch = Array.from({ length: len }, (_, i) => `in-${next + i}`);
          const [x, y] = await Promise.all([w.a.acceptInbound(sid, next, batch), w.b.acceptInbound(sid, next, batch)]);
          assert.ok(x.ok && y.ok, `round ${round}: both accepted`);
          assert.equal(len - x.skip + (len - y.skip), len, `round ${round}: accepted once in total (${JSON.stringify([x, y])})`);
          next += len;
          assert.equal(Math.max(x.ack, y.ack), next - 1);
        }
        const kept = await w.a.readInbound(sid, 1);
        assert.equal(kept.seq, 1);
        assert.deepEqual(kept.messages.map(norm), Array.from({ length: next - 1 }, (_, i) => `in-${i + 1}`));
      });

      check('both send overlapping retries at once (200 seeded rounds): the kept log is exactly 1..ack, each once', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        const rand = seeded(0x5eed);
        const msg = (seq: number): Payload => (seq % 4 === 0 ? new Uint8Array([seq & 0xff, seq >> 8]) : `m${seq}`);
        let ack = 0;
        let accepted = 0;
        for (let round = 0; round < 200; round++) {
          // Each node resends from somewhere at or before the next expected number, or (rarely) leaves a hole.
          const batchOf = (): { seq: number; messages: Payload[] } => {
            const seq = Math.max(1, ack + 1 - rand(4) + (rand(10) === 0 ? 2 : 0));
            return { seq, messages: Array.from({ length: rand(5) }, (_, i) => msg(seq + i)) };
          };
          const p = batchOf();
          const q = batchOf();
          const [x, y] = await Promise.all([w.a.acceptInbound(sid, p.seq, p.messages), w.b.acceptInbound(sid, q.seq, q.messages)]);
          for (const [v, batch] of [[x, p], [y, q]] as const) if (v.ok) accepted += batch.messages.length - v.skip;
          ack = Math.max(x.ack, y.ack);
          assert.equal(accepted, ack, `round ${round}: messages newly accepted in total = the cumulative ack`);
        }
        assert.ok(ack > 50, `the stream moved on (ack ${ack})`);
        const kept = await w.a.readInbound(sid, 1);
        assert.equal(kept.seq, 1);
        assert.deepEqual(kept.messages.map(norm), Array.from({ length: ack }, (_, i) => norm(msg(i + 1))));
        assert.equal((await w.a.readOutbound(sid, 10)).inboundAck, ack);
      });

      check('interleaved enqueues from two nodes number the messages with no gap and no duplicate', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        const rand = seeded(42);
        const produce = async (store: SessionStore, tag: string): Promise<{ last: number; wires: OutboxEntry[] }[]> => {
          const calls: { last: number; wires: OutboxEntry[] }[] = [];
          for (let c = 0; c < 60; c++) {
            const entries = Array.from({ length: 1 + rand(4) }, (_, i) => encodeEntry(`${tag}-${c}-${i}`));
            calls.push({ last: (await store.enqueue(sid, entries)).lastSeq, wires: entries });
          }
          return calls;
        };
        const [fromA, fromB] = await Promise.all([produce(w.a, 'A'), produce(w.b, 'B')]);
        const calls = [...fromA, ...fromB];
        const total = calls.reduce((n, c) => n + c.wires.length, 0);
        // Each call's messages are numbered last-k+1..last; together they must tile 1..total.
        const slots: (OutboxEntry | undefined)[] = new Array<OutboxEntry | undefined>(total + 1).fill(undefined);
        for (const c of calls) {
          c.wires.forEach((e, i) => {
            const seq = c.last - c.wires.length + 1 + i;
            assert.ok(seq >= 1 && seq <= total, `seq ${seq} in 1..${total}`);
            assert.equal(slots[seq], undefined, `seq ${seq} given twice`);
            slots[seq] = e;
          });
        }
        const batch = await w.a.readOutbound(sid, 10_000_000);
        assert.deepEqual({ seq: batch.seq, count: batch.count }, { seq: 1, count: total });
        assert.deepEqual(wiresOf(batch.m), slots.slice(1).map((e) => e?.wire), 'each message at the number its enqueue was given');
        assert.equal(await w.b.pendingOutbound(sid), total);
      });

      check('concurrent acks from two nodes: the acknowledged state is the highest (50 rounds)', async (t) => {
        const w = await world(t);
        const sid = await w.open();
        const rand = seeded(7);
        let acked = 0;
        let last = 0;
        for (let round = 0; round < 50; round++) {
          last = (await w.a.enqueue(sid, Array.from({ length: 10 }, (_, i) => encodeEntry(`o${last + i + 1}`)))).lastSeq;
          const x = Math.max(0, acked - 3 + rand(last - acked + 4));
          const y = Math.max(0, acked - 3 + rand(last - acked + 4));
          const [rx, ry] = await Promise.all([w.a.ackOutbound(sid, x), w.b.ackOutbound(sid, y)]);
          const top = Math.max(acked, x, y);
          for (const [v, r] of [[x, rx], [y, ry]] as const) {
            if (v <= acked) assert.equal(r.result, 'stale', `round ${round}: ack ${v} at or below ${acked}`);
            else assert.ok(r.result === 'ok' || r.result === 'stale', `round ${round}: ack ${v}: ${r.result}`);
          }
          if (top > acked) assert.ok((x === top && rx.result === 'ok') || (y === top && ry.result === 'ok'), `round ${round}: the highest ack ${top} was applied`);
          acked = top;
          assert.equal(await w.a.pendingOutbound(sid), last - acked, `round ${round}`);
          const b = await w.b.readOutbound(sid, 100);
          assert.equal(b.seq, acked + 1, `round ${round}: reading starts after the highest ack`);
          const check = await w.a.ackOutbound(sid, acked);
          assert.equal(check.bufferedBytes, Array.from({ length: last - acked }, (_, i) => utf8Length(`o${acked + i + 1}`)).reduce((s, n) => s + n, 0));
        }
      });

      check('two nodes create sessions for one retried open at once: findByAttempt finds one, and dropping the other does not lose it', async (t) => {
        const w = await world(t);
        for (const drop of ['delete', 'forgetAttempt'] as const) {
          const attempt = `attempt-twice-${drop}`;
          const s1 = `sid-twice-${drop}-1`;
          const s2 = `sid-twice-${drop}-2`;
          await Promise.all([
            w.a.create({ sid: s1, token: 'tok-1', attempt }, NODE_A),
            w.b.create({ sid: s2, token: 'tok-2', attempt }, NODE_B),
          ]);
          const found = (await w.a.findByAttempt(attempt))?.sid;
          assert.ok(found === s1 || found === s2, `${drop}: findByAttempt finds one of the two, got ${String(found)}`);
          const other = found === s1 ? s2 : s1;
          if (drop === 'delete') await w.b.delete(other);
          else await w.b.forgetAttempt(other);
          assert.equal((await w.a.findByAttempt(attempt))?.sid, found, `${drop} of the other session (${other}) keeps ${found} found`);
        }
      });

      check('delete racing enqueue and acceptInbound: nothing of the session is left behind (50 rounds)', async (t) => {
        const w = await world(t);
        for (let round = 0; round < 50; round++) {
          const sid = await w.open({ attempt: `attempt-race-${round}` });
          await w.a.enqueue(sid, [encodeEntry('before')]);
          const late = encodeEntry(`late-${round}`);
          // The delete goes first in even rounds, last in odd ones.
          const others = (): [Promise<unknown>, Promise<unknown>, Promise<unknown>] => [
            w.b.enqueue(sid, [late]),
            w.b.acceptInbound(sid, 1, ['in']),
            w.b.touch(sid, Date.now() + ALIVE_MS),
          ];
          let deleting: Promise<OutboxEntry[]>;
          let racing: [Promise<unknown>, Promise<unknown>, Promise<unknown>];
          if (round % 2 === 0) {
            deleting = w.a.delete(sid);
            racing = others();
          } else {
            racing = others();
            deleting = w.a.delete(sid);
          }
          const [del, enq, acc, touch] = await Promise.allSettled([deleting, ...racing]);
          assert.equal(del.status, 'fulfilled', `round ${round}: delete succeeds`);
          for (const [what, r] of [['enqueue', enq], ['acceptInbound', acc], ['touch', touch]] as const) {
            if (r.status === 'rejected') assert.ok(isUnknown(r.reason), `round ${round}: ${what} rejected with ${String(r.reason)}`);
          }
          if (del.status === 'fulfilled') {
            const want = enq.status === 'fulfilled' ? [encodeEntry('before'), late] : [encodeEntry('before')];
            assert.deepEqual(del.value, want, `round ${round}: an enqueue that succeeded came before the delete, and its message is handed back`);
          }
          assert.equal(await w.b.get(sid), undefined, `round ${round}`);
          assert.equal(await w.a.findByAttempt(`attempt-race-${round}`), undefined);
          assert.equal(await w.a.seenUntil(sid), undefined, `round ${round}: no liveness left`);
          await rejectsUnknown(w.a.pendingOutbound(sid), `round ${round}: pendingOutbound`);
          await rejectsUnknown(w.a.readInbound(sid, 1), `round ${round}: readInbound`);
          await rejectsUnknown(w.b.enqueue(sid, [late]), `round ${round}: enqueue after`);
          assert.equal(await w.a.count(), 0, `round ${round}: no session left`);
        }
      });

      check("a takeover racing the old owner's markDelivered: the old owner's call lands before the takeover or not at all (50 rounds)", async (t) => {
        const w = await world(t);
        await w.b.heartbeat(NODE_B, ALIVE_MS);
        for (let round = 0; round < 50; round++) {
          const sid = await w.open({ owner: NODE_C }); // C never beats: B may take it
          await w.a.acceptInbound(sid, 1, ['a', 'b', 'c']);
          const [marked, claimed] = round % 2 === 0
            ? await Promise.all([w.a.markDelivered(sid, 2, 1), w.b.claim(sid, NODE_B)])
            : await Promise.all([w.b.claim(sid, NODE_B), w.a.markDelivered(sid, 2, 1)]).then(([c, m]) => [m, c] as const);
          assert.deepEqual(claimed, { owned: true, fence: 2, took: true }, `round ${round}`);
          const delivered = await w.b.delivered(sid);
          assert.equal(delivered, marked ? 2 : 0, `round ${round}: markDelivered said ${marked}`);
          const kept = (await w.b.readInbound(sid, 1)).messages.map(norm);
          assert.deepEqual(kept, marked ? ['c'] : ['a', 'b', 'c'], `round ${round}`);
          assert.equal(await w.a.markDelivered(sid, 3, 1), false, `round ${round}: after the takeover fence 1 is refused`);
        }
      });
    });
  });
}
