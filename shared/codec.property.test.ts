/**
 * Property tests of the envelope codec (codec.ts) and the payload wire forms
 * (payload.ts), with fast-check.
 *
 * - Every body type round-trips: what one end encodes (the same calls the
 *   client and server make), carried as UTF-8 bytes (what HTTP carries),
 *   decodes to the same values. Text is arbitrary UTF-16, lone surrogates
 *   included: the codec promises they survive (JSON.stringify escapes them,
 *   so the body is well-formed JSON and valid UTF-8; see codec.test.ts).
 * - Binary round-trips through base64, which is canonical: a string decodes
 *   only if it is exactly what toBase64() writes for the bytes it decodes to,
 *   with Buffer and with the browser code path alike.
 * - Decoders never throw, whatever the input (arbitrary text, arbitrary JSON,
 *   envelopes with fields dropped, retyped or out of range): they return an
 *   error value carrying a code from the table; and what they accept is valid.
 *
 * Runs are bounded and seeded: HOLDLINE_FC_SEED=<n> replays a run, and
 * fast-check prints the seed and the shrunk counterexample on failure.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import {
  decodeCloseRequest,
  decodeErrorBody,
  decodeOpenRequest,
  decodeOpenResponse,
  decodePayloads,
  decodePollRequest,
  decodePollResponse,
  decodeSendRequest,
  decodeSendResponse,
  encodeBatch,
  encodeClose,
  encodeMessages,
  type Result,
} from './codec.js';
import { HoldlineError, WIRE_ERRORS, isWireErrorCode, type CloseCode, type ErrorCode } from './errors.js';
import * as nodeImpl from './payload.js';
import { toWire, type Payload, type StreamItem } from './payload.js';

const SEED = Number(process.env.HOLDLINE_FC_SEED ?? 0x5eed_c0de);
/** Bounded, seeded runs; the seed is part of every failure message. */
const params = (numRuns: number): fc.Parameters<unknown> => ({ numRuns, seed: SEED });

type PayloadModule = typeof import('./payload.js');

/** A second copy of payload.ts loaded with Buffer hidden (the browser code paths), as payload.test.ts does. */
async function loadWithoutBuffer(): Promise<PayloadModule> {
  const g = globalThis as { Buffer?: unknown };
  const saved = g.Buffer;
  delete g.Buffer;
  try {
    const spec = new URL('./payload.js?property-without-buffer', import.meta.url).href;
    return (await import(spec)) as PayloadModule;
  } finally {
    g.Buffer = saved;
  }
}

// ---- arbitraries ----

/** One UTF-16 code unit, surrogates (paired by chance or lone) over-represented. */
const codeUnit = fc
  .oneof(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0xd800, max: 0xdfff }), fc.integer({ min: 0, max: 0x7f }))
  .map((c) => String.fromCharCode(c));

/** Any JS string: valid Unicode of every plane, or raw code units with lone surrogates, quotes, backslashes, controls. */
const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: codeUnit, maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
);

const anyBytes = fc.uint8Array({ maxLength: 64 });
const anyPayload: fc.Arbitrary<Payload> = fc.oneof(anyText, anyBytes);
const payloads = fc.array(anyPayload, { maxLength: 12 });

/** Session and attempt ids as the protocol defines them. */
const id = fc.stringMatching(/^[A-Za-z0-9_-]{8,64}$/);
const seqNumber = fc.oneof(fc.nat(1000), fc.constant(Number.MAX_SAFE_INTEGER), fc.maxSafeNat());
const positive = seqNumber.map((n) => Math.max(1, n));
const closeCode = fc.constantFrom<CloseCode>('client_closed', 'server_closed', 'idle_timeout', 'server_shutdown', 'session_unknown', 'transport_error');

/** Text through UTF-8 bytes and back, asserting the bytes are valid UTF-8 (the server refuses anything else). */
function overHttp(body: string): string {
  const bytes = Buffer.from(body, 'utf8');
  assert.ok(isUtf8(bytes), `the body is valid UTF-8: ${JSON.stringify(body.slice(0, 80))}`);
  const back = bytes.toString('utf8');
  assert.equal(back, body, 'the body survives UTF-8 unchanged');
  return back;
}

function value<T>(r: Result<T>): T {
  if (!r.ok) assert.fail(`expected ok, got ${r.error.code}: ${r.error.message}`);
  return r.value;
}

function assertSamePayloads(got: readonly StreamItem[], want: readonly Payload[]): void {
  assert.equal(got.length, want.length, 'message count');
  want.forEach((w, i) => {
    const g = got[i];
    if (typeof w === 'string') assert.equal(g, w, `message ${i}`);
    else {
      assert.ok(g instanceof Uint8Array && typeof g !== 'string', `message ${i} is binary`);
      assert.deepEqual(Array.from(g), Array.from(w), `message ${i}`);
    }
  });
}

/** Codes a decoder may fail with: a request decoder's are wire errors, a response decoder's `bad_response`. */
const REQUEST_ERRORS = new Set<ErrorCode>(['malformed_request', 'bad_encoding', 'bad_credential']);

function assertErrorValue(r: Result<unknown>, allowed: ReadonlySet<ErrorCode>, input: string): void {
  if (r.ok) return;
  assert.ok(r.error instanceof HoldlineError, `an error value for ${JSON.stringify(input.slice(0, 80))}`);
  assert.ok(allowed.has(r.error.code), `code ${r.error.code} is one a decoder gives`);
  const code = r.error.code;
  if (isWireErrorCode(code)) assert.equal(r.error.status, WIRE_ERRORS[code].status, 'a wire error travels with its table status');
  assert.equal(typeof r.error.message, 'string');
}

describe('codec properties (fast-check, seed ' + SEED + ')', () => {
  describe('round trips through UTF-8, for every body type', () => {
    it('send request: encodeBatch with the auth prefix -> decodeSendRequest', () => {
      fc.assert(
        fc.property(id, anyText, seqNumber, positive, payloads, (sid, token, ack, seq, m) => {
          const auth = `"sid":${JSON.stringify(sid)},"token":${JSON.stringify(token)},`;
          const body = overHttp(encodeBatch(ack, seq, encodeMessages(m.map(toWire)), auth));
          const r = value(decodeSendRequest(body));
          assert.equal(r.sid, sid);
          assert.equal(r.token, token);
          assert.equal(r.ack, ack);
          assert.equal(r.seq, seq);
          assertSamePayloads(r.m, m);
        }),
        params(400),
      );
    });

    it('poll response: encodeBatch -> decodePollResponse, and a close frame', () => {
      fc.assert(
        fc.property(seqNumber, seqNumber, payloads, (ack, seq, m) => {
          const r = value(decodePollResponse(overHttp(encodeBatch(ack, seq, encodeMessages(m.map(toWire))))));
          assert.equal(r.ack, ack);
          assert.equal(r.seq, seq);
          assert.equal(r.close, undefined);
          assertSamePayloads(r.m, m);
        }),
        params(400),
      );
      fc.assert(
        fc.property(seqNumber, closeCode, anyText, (ack, code, message) => {
          const r = value(decodePollResponse(overHttp(encodeClose(ack, { code, message }))));
          assert.deepEqual(r, { ack, seq: 0, m: [], close: { code, message } });
        }),
        params(200),
      );
    });

    it('poll request, with and without hold and from', () => {
      const poll = fc.record(
        { sid: id, token: anyText, ack: seqNumber, hold: seqNumber, from: positive },
        { requiredKeys: ['sid', 'token', 'ack'] },
      );
      fc.assert(
        fc.property(poll, (p) => {
          assert.deepEqual(value(decodePollRequest(overHttp(JSON.stringify(p)))), { ...p });
        }),
        params(300),
      );
    });

    it('open request and response, close request, send response', () => {
      fc.assert(
        fc.property(fc.integer(), id, (v, attempt) => {
          assert.deepEqual(value(decodeOpenRequest(overHttp(JSON.stringify({ v, attempt })))), { v, attempt });
        }),
        params(200),
      );
      const open = fc.record({
        v: seqNumber,
        sid: id,
        token: anyText,
        pollTimeoutMs: seqNumber,
        sessionIdleTimeoutMs: seqNumber,
        maxMessageBytes: seqNumber,
        maxBatchBytes: seqNumber,
      });
      fc.assert(
        // fc.record makes null-prototype objects: compare with a plain copy.
        fc.property(open, (o) => assert.deepEqual({ ...value(decodeOpenResponse(overHttp(JSON.stringify(o)))) }, { ...o })),
        params(200),
      );
      fc.assert(
        fc.property(id, anyText, (sid, token) => {
          assert.deepEqual(value(decodeCloseRequest(overHttp(JSON.stringify({ sid, token })))), { sid, token });
        }),
        params(200),
      );
      fc.assert(
        fc.property(seqNumber, (ack) => assert.deepEqual(value(decodeSendResponse(overHttp(`{"ack":${ack}}`))), { ack })),
        params(100),
      );
    });

    it('error bodies: HoldlineError.toWire() -> decodeErrorBody', () => {
      const code = fc.constantFrom(...(Object.keys(WIRE_ERRORS) as Array<keyof typeof WIRE_ERRORS>));
      fc.assert(
        fc.property(code, anyText, (c, message) => {
          const body = overHttp(JSON.stringify(new HoldlineError(c, message).toWire()));
          assert.deepEqual(decodeErrorBody(body), { code: c, message });
        }),
        params(200),
      );
    });
  });

  describe('binary: base64 is a canonical round trip, with and without Buffer', () => {
    let browserImpl: PayloadModule;
    before(async () => {
      browserImpl = await loadWithoutBuffer();
      assert.notEqual(browserImpl, nodeImpl);
    });

    it('fromBase64(toBase64(b)) is b, and both implementations write the same text', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
          const text = nodeImpl.toBase64(b);
          assert.equal(browserImpl.toBase64(b), text);
          for (const impl of [nodeImpl, browserImpl]) {
            const back = impl.fromBase64(text);
            assert.ok(back !== undefined, `decodes ${text}`);
            assert.deepEqual(Array.from(back), Array.from(b));
          }
        }),
        params(300),
      );
    });

    it('a string decodes only if it is the canonical base64 of what it decodes to (both implementations agree)', () => {
      const b64 = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n'.split('')), maxLength: 24 });
      fc.assert(
        fc.property(fc.oneof(b64, anyText), (s) => {
          const viaNode = nodeImpl.fromBase64(s);
          const viaBrowser = browserImpl.fromBase64(s);
          assert.equal(viaNode === undefined, viaBrowser === undefined, `both accept or both refuse ${JSON.stringify(s)}`);
          if (viaNode === undefined || viaBrowser === undefined) return;
          assert.deepEqual(Array.from(viaBrowser), Array.from(viaNode));
          assert.equal(nodeImpl.toBase64(viaNode), s, 'canonical: encoding the bytes again gives the same text');
        }),
        params(500),
      );
    });

    it('fromWire(toWire(p)) is p for text and binary', () => {
      fc.assert(
        fc.property(anyPayload, (p) => {
          const back = nodeImpl.fromWire(JSON.parse(JSON.stringify(toWire(p))));
          assert.ok(back !== undefined);
          assertSamePayloads([back], [p]);
        }),
        params(300),
      );
    });
  });

  describe('decoders never throw; they return an error value, and accept only valid envelopes', () => {
    const requestDecoders = [decodeOpenRequest, decodePollRequest, decodeSendRequest, decodeCloseRequest] as const;
    const responseDecoders = [decodeOpenResponse, decodePollResponse, decodeSendResponse] as const;
    const BAD_RESPONSE = new Set<ErrorCode>(['bad_response']);

    function decodeAll(text: string): void {
      for (const d of requestDecoders) assertErrorValue(d(text), REQUEST_ERRORS, text);
      for (const d of responseDecoders) assertErrorValue(d(text), BAD_RESPONSE, text);
      const e = decodeErrorBody(text);
      if (e !== undefined) assert.ok(typeof e.code === 'string' && typeof e.message === 'string');
    }

    it('on arbitrary text', () => {
      fc.assert(fc.property(fc.oneof(anyText, fc.string({ maxLength: 200 })), decodeAll), params(500));
    });

    it('on arbitrary JSON, and on JSON cut short', () => {
      fc.assert(
        fc.property(fc.json({ maxDepth: 6 }), fc.nat(), (json, cut) => {
          decodeAll(json);
          decodeAll(json.slice(0, cut % (json.length + 1)));
        }),
        params(500),
      );
    });

    /** Every field an envelope may carry: valid, dropped, retyped, negative, fractional, huge, nested. */
    const oddValue = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.constantFrom(-1, 0, 0.5, 1e21, -0, Number.MAX_SAFE_INTEGER + 1, 2 ** 64, '1', '', null, true, [], {}),
      fc.double(),
    );
    const messageEntry = fc.oneof(anyText, anyBytes.map(toWire), oddValue, fc.record({ b: fc.oneof(anyText, oddValue) }));
    const envelope = fc.record(
      {
        v: fc.oneof(fc.constant(1), oddValue),
        attempt: fc.oneof(id, oddValue),
        sid: fc.oneof(id, anyText, oddValue),
        token: fc.oneof(anyText, oddValue),
        ack: fc.oneof(seqNumber, oddValue),
        seq: fc.oneof(positive, oddValue),
        hold: fc.oneof(seqNumber, oddValue),
        from: fc.oneof(positive, oddValue),
        m: fc.oneof(fc.array(messageEntry, { maxLength: 6 }), oddValue),
        close: fc.oneof(fc.record({ code: fc.oneof(closeCode, oddValue), message: fc.oneof(anyText, oddValue) }), oddValue),
        error: fc.oneof(fc.record({ code: oddValue, message: oddValue }), oddValue),
      },
      { requiredKeys: [] },
    );

    it('on envelopes with fields dropped, retyped and out of range; what is accepted is valid', () => {
      fc.assert(
        fc.property(envelope, (o) => {
          const text = JSON.stringify(o);
          decodeAll(text);
          const send = decodeSendRequest(text);
          if (send.ok) {
            assert.match(send.value.sid, /^[A-Za-z0-9_-]{8,64}$/);
            assert.equal(typeof send.value.token, 'string');
            assert.ok(Number.isSafeInteger(send.value.ack) && send.value.ack >= 0);
            assert.ok(Number.isSafeInteger(send.value.seq) && send.value.seq >= 1);
            for (const p of send.value.m) assert.ok(typeof p === 'string' || p instanceof Uint8Array);
          }
          const poll = decodePollRequest(text);
          if (poll.ok) {
            assert.ok(Number.isSafeInteger(poll.value.ack) && poll.value.ack >= 0);
            if (poll.value.hold !== undefined) assert.ok(Number.isSafeInteger(poll.value.hold) && poll.value.hold >= 0);
            if (poll.value.from !== undefined) assert.ok(Number.isSafeInteger(poll.value.from) && poll.value.from >= 1);
          }
          const res = decodePollResponse(text);
          if (res.ok) {
            for (const p of res.value.m) assert.ok(typeof p === 'string' || p instanceof Uint8Array);
            if (res.value.close) assert.ok(typeof res.value.close.code === 'string' && typeof res.value.close.message === 'string');
          }
        }),
        params(500),
      );
    });

    it('decodePayloads on arbitrary values: text and canonical {"b"} only', () => {
      fc.assert(
        fc.property(fc.oneof(fc.array(messageEntry, { maxLength: 8 }), oddValue), (m) => {
          const r = decodePayloads(JSON.parse(JSON.stringify(m)));
          assertErrorValue(r, REQUEST_ERRORS, JSON.stringify(m));
          if (r.ok) for (const p of r.value) assert.ok(typeof p === 'string' || p instanceof Uint8Array);
        }),
        params(500),
      );
    });

    it('on deep nesting (a few thousand levels) in every field position', () => {
      for (const depth of [10, 1_000, 5_000]) {
        const deep = '['.repeat(depth) + ']'.repeat(depth);
        const deepObj = '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
        for (const inner of [deep, deepObj]) {
          for (const text of [
            inner,
            `{"sid":"abcdefgh","token":"t","ack":0,"seq":1,"m":${inner}}`,
            `{"sid":"abcdefgh","token":"t","ack":0,"seq":1,"m":[${inner}]}`,
            `{"sid":"abcdefgh","token":"t","ack":0,"seq":1,"m":[{"b":${inner}}]}`,
            `{"v":1,"attempt":${inner}}`,
            `{"ack":0,"seq":1,"m":[],"close":${inner}}`,
            `{"error":${inner}}`,
          ]) {
            decodeAll(text);
            decodeAll(text.slice(0, text.length >> 1));
          }
        }
      }
    });
  });
});
