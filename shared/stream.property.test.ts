/**
 * Property tests of the reliable stream (outbox.ts, inbox.ts, send-window.ts)
 * with fast-check: a model of the two ends of a session, in both directions.
 *
 * Each end has a SendWindow (backpressure), an Outbox and an Inbox, as the
 * client's session machine and the server's session do. The application sends
 * through the window; an end transmits a batch from its first unacknowledged
 * message (or, like an early poll, from a later `from`) with its cumulative
 * ack piggybacked, encoded as the real envelopes are (client -> server as a
 * send request, server -> client as a poll response, UTF-8 bytes in between).
 * The channel loses, duplicates and reorders packets at random; a receiver
 * applies the ack and delivers what its Inbox accepts.
 *
 * After every step: each end has delivered exactly a prefix of what the other
 * end's application sent (exactly once, in order); the Inbox's ack is what was
 * delivered; no ack ever names a message not yet sent, nor acknowledges one not
 * yet delivered; the Outbox holds exactly the unacknowledged messages (pending
 * = sent - acked, their bytes, and the window's accounting equals them, within
 * maxBytes). At the end, a retry phase on a clean channel (batches from the
 * first unacknowledged message) delivers everything and frees every byte.
 *
 * Runs are bounded and seeded: HOLDLINE_FC_SEED=<n> replays a run, and
 * fast-check prints the seed and the shrunk command list on failure.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodePollResponse, decodeSendRequest, encodeBatch } from './codec.js';
import { Inbox } from './inbox.js';
import { Outbox, decodeEntries, type OutboxBatch } from './outbox.js';
import { isRpc, payloadBytes, type Payload } from './payload.js';
import { SendWindow } from './send-window.js';

const SEED = Number(process.env.HOLDLINE_FC_SEED ?? 0x5eed_5eed);
const params = (numRuns: number): fc.Parameters<unknown> => ({ numRuns, seed: SEED });

type Side = 'client' | 'server';
const other = (s: Side): Side => (s === 'client' ? 'server' : 'client');

/** Auth prefix of a client's send request (any valid sid and token). */
const AUTH = `"sid":"property-sid","token":"t\\ud800ok",`;

/** One end of the session. */
class End {
  readonly outbox = new Outbox();
  readonly inbox = new Inbox();
  readonly window: SendWindow;
  /** Everything the application asked to send, in call order. */
  readonly appSent: Payload[] = [];
  /** Everything delivered to this end's application, in order. */
  readonly delivered: Payload[] = [];
  /** send()s still waiting for room, rejected on fail(). */
  readonly waits: Promise<void>[] = [];

  constructor(maxBytes: number) {
    this.window = new SendWindow(maxBytes, 60_000);
  }

  send(p: Payload): void {
    this.appSent.push(p);
    const waiting = this.window.acquire(payloadBytes(p), () => {
      this.outbox.push(p);
      return Promise.resolve();
    });
    // fail() at the end of a run rejects the ones still waiting: expected.
    this.waits.push(waiting.catch(() => undefined));
  }

  /** Apply the peer's cumulative ack as the ends do: release the window by the bytes freed. */
  applyAck(ack: number): void {
    const before = this.outbox.bufferedBytes;
    const result = this.outbox.ack(ack);
    assert.notEqual(result, 'future', `ack ${ack} past lastSeq ${this.outbox.lastSeq}`);
    if (result === 'ok') this.window.release(before - this.outbox.bufferedBytes);
  }
}

interface Packet {
  /** Who receives it. */
  to: Side;
  bytes: Buffer;
}

type Command =
  | { kind: 'send'; side: Side; payload: Payload }
  | { kind: 'transmit'; side: Side; maxWireBytes: number; maxCount: number; from: number | undefined }
  | { kind: 'deliver'; pick: number }
  | { kind: 'duplicate'; pick: number }
  | { kind: 'drop'; pick: number };

/** Text with lone surrogates, escapes and non-BMP characters; or bytes. */
const codeUnit = fc
  .oneof(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0xd800, max: 0xdfff }), fc.constantFrom(0x22, 0x5c, 0x0a, 0x41))
  .map((c) => String.fromCharCode(c));
const payload: fc.Arbitrary<Payload> = fc.oneof(
  fc.string({ unit: codeUnit, maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.uint8Array({ maxLength: 40 }),
);
const side = fc.constantFrom<Side>('client', 'server');

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('send' as const), side, payload }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('transmit' as const),
      side,
      maxWireBytes: fc.integer({ min: 1, max: 400 }),
      maxCount: fc.oneof(fc.constant(Infinity), fc.integer({ min: 1, max: 6 })),
      // Mostly from the first unacknowledged message (a retry); sometimes from a later one (an early poll).
      from: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.nat(40) }),
    }),
  },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('deliver' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('drop' as const), pick: fc.nat() }) },
);

function samePayload(a: Payload | undefined, b: Payload | undefined): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  if (a === undefined || b === undefined) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

const describePayload = (p: Payload | undefined) =>
  typeof p === 'string' ? JSON.stringify(p) : p === undefined ? 'nothing' : `<${Buffer.from(p).toString('hex')}>`;

/** A session between two ends over a lossy, duplicating, reordering channel. */
class Model {
  readonly ends: Record<Side, End>;
  readonly channel: Packet[] = [];
  /** Largest number of packets in flight at once. */
  maxInFlight = 0;

  constructor(maxBytes: Record<Side, number>) {
    this.ends = { client: new End(maxBytes.client), server: new End(maxBytes.server) };
  }

  transmit(from: Side, maxWireBytes: number, maxCount = Infinity, start?: number): OutboxBatch {
    const end = this.ends[from];
    const o = end.outbox;
    const b = o.batch(maxWireBytes, maxCount, start ?? 0);
    checkBatch(o, b, maxWireBytes, maxCount, start);
    // The receiver's ack rides along: a send request from the client, a poll answer from the server.
    const body = encodeBatch(end.inbox.ack, b.seq, b.m, from === 'client' ? AUTH : '');
    this.channel.push({ to: other(from), bytes: Buffer.from(body, 'utf8') });
    this.maxInFlight = Math.max(this.maxInFlight, this.channel.length);
    return b;
  }

  receive(p: Packet): void {
    const end = this.ends[p.to];
    const text = p.bytes.toString('utf8');
    const r = p.to === 'server' ? decodeSendRequest(text) : decodePollResponse(text);
    if (!r.ok) assert.fail(`a batch on the wire does not decode: ${r.error.message}`);
    const { ack, seq, m } = r.value;
    end.applyAck(ack);
    const expected = end.inbox.ack + 1;
    const v = end.inbox.accept(seq, m.length);
    if (!v.ok) {
      assert.ok(m.length > 0 && seq > expected, `refused only a batch that leaves a hole (seq ${seq}, expected ${expected})`);
      assert.equal(v.expected, expected);
      return;
    }
    for (let i = v.skip; i < m.length; i++) {
      const msg = m[i];
      if (msg === undefined || isRpc(msg)) assert.fail(`message ${i} of ${m.length}`);
      end.delivered.push(msg);
    }
  }

  take(pick: number): Packet | undefined {
    if (this.channel.length === 0) return undefined;
    return this.channel.splice(pick % this.channel.length, 1)[0];
  }

  run(c: Command): void {
    switch (c.kind) {
      case 'send':
        return this.ends[c.side].send(c.payload);
      case 'transmit':
        this.transmit(c.side, c.maxWireBytes, c.maxCount, c.from);
        return;
      case 'deliver': {
        const p = this.take(c.pick);
        if (p) this.receive(p);
        return;
      }
      case 'duplicate': {
        const p = this.channel[c.pick % Math.max(1, this.channel.length)];
        if (p) this.channel.push({ to: p.to, bytes: Buffer.from(p.bytes) });
        return;
      }
      case 'drop':
        this.take(c.pick);
        return;
    }
  }

  /** Every invariant, for both directions. */
  check(): void {
    for (const s of ['client', 'server'] as const) {
      const sender = this.ends[s];
      const receiver = this.ends[other(s)];
      const o = sender.outbox;
      // Exactly once, in order: the receiver's deliveries are a prefix of what the sender's application sent.
      assert.ok(receiver.delivered.length <= sender.appSent.length, `${s} -> ${other(s)}: more delivered than sent`);
      receiver.delivered.forEach((p, i) => {
        const want = sender.appSent[i];
        assert.ok(samePayload(p, want), `${s} -> ${other(s)} message ${i + 1}: delivered ${describePayload(p)}, sent ${describePayload(want)}`);
      });
      assert.equal(receiver.inbox.ack, receiver.delivered.length, 'the inbox ack counts what was delivered');
      // Acks are honest: never past what the receiver delivered.
      assert.ok(o.acked <= receiver.inbox.ack, `${s} outbox acked ${o.acked} > ${receiver.inbox.ack} delivered`);
      // Bounded memory: the outbox holds exactly the unacknowledged messages it was given.
      assert.ok(o.lastSeq <= sender.appSent.length);
      assert.equal(o.pending, o.lastSeq - o.acked, 'pending = sent into the outbox - acked');
      let bytes = 0;
      for (let i = o.acked; i < o.lastSeq; i++) {
        const p = sender.appSent[i];
        if (p === undefined) assert.fail(`message ${i + 1} was never sent`);
        bytes += payloadBytes(p);
      }
      assert.equal(o.bufferedBytes, bytes, 'bufferedBytes = bytes of the unacknowledged messages');
      assert.equal(sender.window.buffered, bytes, 'the window accounts for exactly the unacknowledged bytes');
      assert.ok(bytes <= sender.window.maxBytes, `unacknowledged ${bytes} bytes within maxBytes ${sender.window.maxBytes}`);
      // Whatever the window holds back waits its turn: it is the tail of what the application sent.
      assert.equal(o.lastSeq + sender.window.waiting, sender.appSent.length, 'every send is in the outbox or waiting');
    }
  }

  /** A clean channel: deliver everything in flight, then retry from the first unacknowledged, until all is through. */
  settle(): number {
    let rounds = 0;
    const allThrough = () =>
      (['client', 'server'] as const).every((s) => {
        const e = this.ends[s];
        return e.outbox.pending === 0 && e.window.waiting === 0 && this.ends[other(s)].delivered.length === e.appSent.length;
      });
    for (;;) {
      while (this.channel.length > 0) {
        const p = this.channel.shift();
        if (p) this.receive(p);
        this.check();
      }
      if (allThrough()) return rounds;
      assert.ok(++rounds <= 1_000, 'the retry phase makes progress');
      this.transmit('client', 400);
      this.transmit('server', 400);
    }
  }

  end(): Promise<void[]> {
    const err = new Error('run over');
    this.ends.client.window.fail(err);
    this.ends.server.window.fail(err);
    return Promise.all([...this.ends.client.waits, ...this.ends.server.waits]);
  }
}

/** What every batch must be, whatever the outbox holds. */
function checkBatch(o: Outbox, b: OutboxBatch, maxWireBytes: number, maxCount: number, from: number | undefined): void {
  const first = Math.max(o.acked + 1, Math.min(from ?? 0, o.lastSeq + 1));
  assert.equal(b.seq, first, from === undefined ? 'a retry starts at the first unacknowledged message' : `a batch from ${from}`);
  assert.ok(b.count <= Math.max(0, o.lastSeq - first + 1) && b.count <= maxCount, `count ${b.count} within what is due and maxCount`);
  if (first <= o.lastSeq) assert.ok(b.count >= 1, 'at least one message when any is due');
  const m = JSON.parse(b.m) as unknown[];
  assert.equal(m.length, b.count);
  assert.equal(b.wireBytes, Buffer.byteLength(b.m, 'utf8'));
  assert.ok(b.wireBytes <= maxWireBytes || b.count <= 1, `m of ${b.wireBytes} bytes within ${maxWireBytes}, or at most one message`);
}

describe('reliable stream properties (fast-check, seed ' + SEED + ')', () => {
  it('both directions over a lossy, duplicating, reordering channel: exactly once, in order, bounded memory', async () => {
    const stats = { runs: 0, delivered: 0, maxInFlight: 0, settleRounds: 0, waited: 0 };
    await fc.assert(
      fc.asyncProperty(
        // Windows from one largest message (48 bytes) up: small ones hold sends back.
        fc.record({ client: fc.integer({ min: 48, max: 600 }), server: fc.integer({ min: 48, max: 600 }) }),
        fc.array(command, { minLength: 1, maxLength: 150, size: 'max' }),
        async (maxBytes, commands) => {
          const model = new Model(maxBytes);
          try {
            for (const c of commands) {
              model.run(c);
              stats.waited += c.kind === 'send' && model.ends[c.side].window.waiting > 0 ? 1 : 0;
              model.check();
            }
            stats.settleRounds = Math.max(stats.settleRounds, model.settle());
            model.check();
            for (const e of Object.values(model.ends)) {
              assert.equal(e.outbox.pending, 0, 'nothing left unacknowledged');
              assert.equal(e.outbox.bufferedBytes, 0);
              assert.equal(e.window.buffered, 0, 'every byte released');
            }
            stats.runs++;
            stats.delivered += model.ends.client.delivered.length + model.ends.server.delivered.length;
            stats.maxInFlight = Math.max(stats.maxInFlight, model.maxInFlight);
          } finally {
            await model.end();
          }
        },
      ),
      params(400),
    );
    console.log(
      `stream model: ${stats.runs} runs, ${stats.delivered} messages delivered, ${stats.waited} sends held by the window, ` +
        `up to ${stats.maxInFlight} packets in flight, retry phase up to ${stats.settleRounds} rounds`,
    );
    assert.ok(stats.waited > 0, 'some runs exercised the send window holding sends back');
  });

  it('an outbox under thousands of messages and partial acks (compaction) keeps exactly the unacknowledged ones', () => {
    let compacting = 0;
    fc.assert(
      fc.property(
        fc.array(fc.record({ push: fc.nat(700), ackFraction: fc.double({ min: 0, max: 1, noNaN: true }) }), { minLength: 1, maxLength: 12, size: 'max' }),
        (steps) => {
          const o = new Outbox();
          let pushed = 0;
          for (const { push, ackFraction } of steps) {
            for (let i = 0; i < push; i++) o.push(`m${++pushed}`);
            const before = o.acked;
            const target = before + Math.floor((o.lastSeq - before) * ackFraction);
            assert.equal(o.ack(target), target > before ? 'ok' : 'stale');
            if (before > 0 || target > 0) assert.equal(o.ack(before), 'stale', 'an old ack changes nothing');
            assert.equal(o.acked, target);
            // Past 1,024 acknowledged entries the outbox compacts its array (the branch this test is for).
            if (o.acked > 1024 && o.pending > 0) compacting++;
            assert.equal(o.ack(o.lastSeq + 1), 'future');
            assert.equal(o.pending, pushed - o.acked);
            assert.equal(o.bufferedBytes, Array.from({ length: o.pending }, (_, i) => `m${o.acked + 1 + i}`.length).reduce((a, b) => a + b, 0));
            const b = o.batch(Infinity);
            assert.equal(b.seq, o.acked + 1);
            assert.deepEqual(JSON.parse(b.m), Array.from({ length: o.pending }, (_, i) => `m${o.acked + 1 + i}`));
          }
          const unacked = o.pending;
          const first = o.acked + 1;
          const rest = decodeEntries(o.takeAll());
          assert.deepEqual(rest, Array.from({ length: unacked }, (_, i) => `m${first + i}`));
          assert.equal(o.pending, 0);
          assert.equal(o.bufferedBytes, 0);
        },
      ),
      params(100),
    );
    assert.ok(compacting > 0, 'some runs acknowledged past 1,024 with messages still pending');
  });

  it('an inbox fed any sequence of batches delivers each message once, in order, and refuses only holes', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ seq: fc.integer({ min: 1, max: 60 }), count: fc.nat(8) }), { maxLength: 60 }), (batches) => {
        const inbox = new Inbox();
        const delivered: number[] = [];
        for (const { seq, count } of batches) {
          const before = inbox.ack;
          const v = inbox.accept(seq, count);
          if (!v.ok) {
            assert.ok(count > 0 && seq > before + 1, 'refused only a hole');
            assert.equal(v.expected, before + 1);
            assert.equal(inbox.ack, before);
            continue;
          }
          assert.ok(v.skip >= 0 && v.skip <= count);
          for (let i = v.skip; i < count; i++) delivered.push(seq + i);
          assert.equal(inbox.ack, Math.max(before, count === 0 ? before : seq + count - 1));
        }
        assert.deepEqual(delivered, Array.from({ length: inbox.ack }, (_, i) => i + 1));
      }),
      params(500),
    );
  });
});
