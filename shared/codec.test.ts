import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
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
  NO_MESSAGES,
  type Result,
} from './codec.js';
import { HoldlineError, wireError, type ErrorCode } from './errors.js';
import { toWire, type Payload, type StreamItem } from './payload.js';

const SID = 'V1StGXR8_Z5jdHi6B-myT';
const TOKEN = 'abcdefghijklmnopqrstuvwxyz012345';

/** Assert `r` is an error value with `code` (and the status of that code's table entry when it is a wire code). */
function assertFails<T>(r: Result<T>, code: ErrorCode, status?: number): void {
  assert.equal(r.ok, false, `expected a ${code} error, got ${JSON.stringify(r)}`);
  if (r.ok) return;
  assert.ok(r.error instanceof HoldlineError);
  assert.equal(r.error.code, code, `wrong code; message: ${r.error.message}`);
  if (status !== undefined) assert.equal(r.error.status, status);
  assert.ok(r.error.message.length > 0);
}

function value<T>(r: Result<T>): T {
  if (!r.ok) assert.fail(`expected ok, got ${r.error.code}: ${r.error.message}`);
  return r.value;
}

const bytes = (...b: number[]) => new Uint8Array(b);

describe('codec: round trips', () => {
  const payloads: Payload[] = [
    '',
    'hello',
    'quote " backslash \\ newline \n tab \t',
    '\u0000\u001f control',
    '\u0001\u0007\u007f\u0085 more control',
    'é 中文 😀 \u{10ffff}',
    '\ud800 lone high, lone low \udfff, reversed \udc00\ud800, at the end \ud83d',
    '\u2028\u2029',
    '</script><!--',
    bytes(),
    bytes(0),
    bytes(0, 1, 2, 255),
    bytes(...Array.from({ length: 300 }, (_, i) => i & 0xff)),
  ];
  const BIN = payloads.findIndex((p) => p instanceof Uint8Array && p.length === 4);

  /** Assert `got` holds the same payloads as `want`: equal text, equal bytes. */
  function assertPayloads(got: StreamItem[], want: Payload[]): void {
    assert.equal(got.length, want.length);
    for (const [i, w] of want.entries()) {
      const g = got[i];
      if (typeof w === 'string') assert.equal(g, w, `message ${i}`);
      else {
        assert.ok(g instanceof Uint8Array, `message ${i} should be binary`);
        assert.deepEqual(Array.from(g), Array.from(w), `message ${i}`);
      }
    }
  }

  it('encodeMessages -> decodePayloads gives back the same payloads, text and binary', () => {
    const m = encodeMessages(payloads.map(toWire));
    assertPayloads(value(decodePayloads(JSON.parse(m))), payloads);
  });

  it('encodeMessages is one JSON array: binary as {"b": base64}, text as a JSON string', () => {
    assert.equal(encodeMessages([toWire(bytes(0, 1, 2, 255)), 'x']), '[{"b":"AAEC/w=="},"x"]');
    assert.deepEqual(JSON.parse(encodeMessages([toWire(bytes(0, 1, 2, 255))])), [{ b: 'AAEC/w==' }]);
    assert.equal(encodeMessages([]), NO_MESSAGES);
    assert.equal(NO_MESSAGES, '[]');
    // Escapes: the text survives, and lone surrogates are escaped (well-formed JSON, valid UTF-8).
    const m = encodeMessages(['"\\\n', '\ud800']);
    assert.equal(m, '["\\"\\\\\\n","\\ud800"]');
    assert.deepEqual(JSON.parse(m), ['"\\\n', '\ud800']);
    assert.ok(Buffer.from(m, 'utf8').toString('utf8') === m, 'm survives UTF-8 encoding unchanged');
  });

  it('encodeBatch -> decodePollResponse', () => {
    const body = encodeBatch(7, 42, encodeMessages(payloads.map(toWire)));
    const r = value(decodePollResponse(body));
    assert.equal(r.ack, 7);
    assert.equal(r.seq, 42);
    assert.equal(r.close, undefined);
    assertPayloads(r.m, payloads);
    assert.deepEqual(Array.from(r.m[BIN] as Uint8Array), [0, 1, 2, 255]);
  });

  it('a poll response body survives the trip through UTF-8 bytes (what HTTP carries)', () => {
    const body = encodeBatch(1, 2, encodeMessages(payloads.map(toWire)));
    const wire = Buffer.from(body, 'utf8');
    const r = value(decodePollResponse(wire.toString('utf8')));
    assertPayloads(r.m, payloads);
  });

  it('an empty batch round-trips', () => {
    const body = encodeBatch(0, 1, NO_MESSAGES);
    assert.equal(body, '{"ack":0,"seq":1,"m":[]}');
    const r = value(decodePollResponse(body));
    assert.deepEqual(r, { ack: 0, seq: 1, m: [] });
  });

  it('encodeBatch with the client prefix -> decodeSendRequest', () => {
    const prefix = `"sid":"${SID}","token":${JSON.stringify(TOKEN)},`;
    const body = encodeBatch(3, 10, encodeMessages(['a', toWire(bytes(9))]), prefix);
    const r = value(decodeSendRequest(body));
    assert.equal(r.sid, SID);
    assert.equal(r.token, TOKEN);
    assert.equal(r.ack, 3);
    assert.equal(r.seq, 10);
    assert.equal(r.m[0], 'a');
    assert.deepEqual(Array.from(r.m[1] as Uint8Array), [9]);
  });

  it('encodeBatch with the client prefix -> decodeSendRequest, every payload kind and an empty batch', () => {
    const prefix = `"sid":"${SID}","token":${JSON.stringify(TOKEN)},`;
    const r = value(decodeSendRequest(encodeBatch(0, 1, encodeMessages(payloads.map(toWire)), prefix)));
    assertPayloads(r.m, payloads);
    const empty = value(decodeSendRequest(encodeBatch(5, 6, NO_MESSAGES, prefix)));
    assert.deepEqual(empty, { sid: SID, token: TOKEN, ack: 5, seq: 6, m: [] });
  });

  it('encodeClose -> decodePollResponse carries the close reason', () => {
    const r = value(decodePollResponse(encodeClose(5, { code: 'server_closed', message: 'bye "now"' })));
    assert.equal(r.ack, 5);
    assert.deepEqual(r.m, []);
    assert.deepEqual(r.close, { code: 'server_closed', message: 'bye "now"' });
  });

  it('open, poll and close requests decode', () => {
    assert.deepEqual(value(decodeOpenRequest('{"v":1,"attempt":"abcdefgh"}')), { v: 1, attempt: 'abcdefgh' });
    assert.deepEqual(value(decodePollRequest(JSON.stringify({ sid: SID, token: TOKEN, ack: 0 }))), { sid: SID, token: TOKEN, ack: 0 });
    assert.deepEqual(value(decodePollRequest(JSON.stringify({ sid: SID, token: TOKEN, ack: 9, hold: 0 }))), {
      sid: SID, token: TOKEN, ack: 9, hold: 0,
    });
    assert.deepEqual(value(decodeCloseRequest(JSON.stringify({ sid: SID, token: TOKEN }))), { sid: SID, token: TOKEN });
  });

  it('a poll request may carry from (a positive integer), with or without hold', () => {
    assert.deepEqual(value(decodePollRequest(JSON.stringify({ sid: SID, token: TOKEN, ack: 0, from: 1 }))), {
      sid: SID, token: TOKEN, ack: 0, from: 1,
    });
    assert.deepEqual(value(decodePollRequest(JSON.stringify({ sid: SID, token: TOKEN, ack: 4, hold: 100, from: 9 }))), {
      sid: SID, token: TOKEN, ack: 4, hold: 100, from: 9,
    });
    // from is not checked against ack here (the server judges it against what it sent).
    assert.equal(value(decodePollRequest(JSON.stringify({ sid: SID, token: TOKEN, ack: 10, from: 3 }))).from, 3);
    assert.equal(value(decodePollRequest(JSON.stringify({ sid: SID, token: TOKEN, ack: 0, from: Number.MAX_SAFE_INTEGER }))).from, Number.MAX_SAFE_INTEGER);
    // Absent: no from key at all.
    assert.equal('from' in value(decodePollRequest(JSON.stringify({ sid: SID, token: TOKEN, ack: 0 }))), false);
    // The client writes its poll body by hand: the same shape decodes.
    assert.equal(value(decodePollRequest(`{"sid":"${SID}","token":"${TOKEN}","ack":3,"hold":25000,"from":4}`)).from, 4);
  });

  it('open, send and error responses decode', () => {
    const open = {
      v: 1, sid: SID, token: TOKEN, pollTimeoutMs: 25000, sessionIdleTimeoutMs: 60000, maxMessageBytes: 1, maxBatchBytes: 2,
    };
    const r = value(decodeOpenResponse(JSON.stringify(open)));
    assert.equal(r.sid, SID);
    assert.equal(r.token, TOKEN);
    assert.equal(r.pollTimeoutMs, 25000);
    assert.equal(r.maxBatchBytes, 2);
    assert.deepEqual(value(decodeSendResponse('{"ack":12}')), { ack: 12 });
    assert.deepEqual(decodeErrorBody(JSON.stringify(wireError('bad_ack').toWire())), {
      code: 'bad_ack',
      message: wireError('bad_ack').message,
    });
  });

  it('unknown envelope fields are ignored (forward compatible)', () => {
    assert.equal(value(decodePollRequest(JSON.stringify({ sid: SID, token: TOKEN, ack: 1, future: [1] }))).ack, 1);
    assert.equal(value(decodePollResponse('{"ack":1,"seq":1,"m":[],"x":{}}')).ack, 1);
  });
});

describe('codec: bad request bodies are error values with the wire code', () => {
  const decoders: Record<string, (text: string) => Result<unknown>> = { decodeOpenRequest, decodePollRequest, decodeSendRequest, decodeCloseRequest };

  for (const [name, decode] of Object.entries(decoders)) {
    it(`${name}: bad JSON and non-objects are malformed_request (400)`, () => {
      for (const text of ['', ' ', '{', '{"sid":', '{"v":1,}', "{'v':1}", 'undefined', 'NaN', '{"a":1}x', '\uFEFF{}']) {
        assertFails(decode(text), 'malformed_request', 400);
      }
      for (const text of ['null', '[]', '[{"v":1}]', '1', '"x"', 'true', 'false']) {
        assertFails(decode(text), 'malformed_request', 400);
      }
    });
  }

  it('open: v and attempt missing or mistyped', () => {
    assertFails(decodeOpenRequest('{"attempt":"abcdefgh"}'), 'malformed_request');
    assertFails(decodeOpenRequest('{"v":"1","attempt":"abcdefgh"}'), 'malformed_request');
    assertFails(decodeOpenRequest('{"v":null,"attempt":"abcdefgh"}'), 'malformed_request');
    assertFails(decodeOpenRequest('{"v":1}'), 'malformed_request');
    assertFails(decodeOpenRequest('{"v":1,"attempt":12345678}'), 'malformed_request');
    assertFails(decodeOpenRequest('{"v":1,"attempt":"short"}'), 'malformed_request');
    assertFails(decodeOpenRequest(JSON.stringify({ v: 1, attempt: 'a'.repeat(65) })), 'malformed_request');
    assertFails(decodeOpenRequest('{"v":1,"attempt":"has space!"}'), 'malformed_request');
    assertFails(decodeOpenRequest('{"v":1,"attempt":"../../etc/pw"}'), 'malformed_request');
    // Bounds are inclusive.
    assert.equal(decodeOpenRequest(JSON.stringify({ v: 1, attempt: 'a'.repeat(64) })).ok, true);
  });

  it('sid missing or mistyped is malformed_request; token missing or mistyped is bad_credential (403)', () => {
    const decoders: Array<(text: string) => Result<unknown>> = [decodePollRequest, decodeSendRequest, decodeCloseRequest];
    for (const decode of decoders) {
      const base = { sid: SID, token: TOKEN, ack: 0, seq: 1, m: [] };
      assertFails(decode(JSON.stringify({ ...base, sid: undefined })), 'malformed_request', 400);
      assertFails(decode(JSON.stringify({ ...base, sid: 42 })), 'malformed_request', 400);
      assertFails(decode(JSON.stringify({ ...base, sid: 'short' })), 'malformed_request', 400);
      assertFails(decode(JSON.stringify({ ...base, sid: `${SID}/..` })), 'malformed_request', 400);
      assertFails(decode(JSON.stringify({ ...base, token: undefined })), 'bad_credential', 403);
      assertFails(decode(JSON.stringify({ ...base, token: 12345 })), 'bad_credential', 403);
      assertFails(decode(JSON.stringify({ ...base, token: null })), 'bad_credential', 403);
    }
  });

  it('ack, seq and hold must be non-negative safe integers (seq positive)', () => {
    const auth = { sid: SID, token: TOKEN };
    for (const bad of [-1, 1.5, '1', null, true, 2 ** 53, 1e300, [1]]) {
      assertFails(decodePollRequest(JSON.stringify({ ...auth, ack: bad })), 'malformed_request');
      assertFails(decodePollRequest(JSON.stringify({ ...auth, ack: 0, hold: bad })), 'malformed_request');
      assertFails(decodeSendRequest(JSON.stringify({ ...auth, ack: bad, seq: 1, m: [] })), 'malformed_request');
      assertFails(decodeSendRequest(JSON.stringify({ ...auth, ack: 0, seq: bad, m: [] })), 'malformed_request');
    }
    assertFails(decodePollRequest(JSON.stringify(auth)), 'malformed_request');
    assertFails(decodePollRequest(JSON.stringify({ ...auth, ack: 0, hold: 0, from: 0 })), 'malformed_request');
    assertFails(decodeSendRequest(JSON.stringify({ ...auth, ack: 0, m: [] })), 'malformed_request');
    assertFails(decodeSendRequest(JSON.stringify({ ...auth, ack: 0, seq: 0, m: [] })), 'malformed_request');
    assertFails(decodeSendRequest(JSON.stringify({ ...auth, seq: 1, m: [] })), 'malformed_request');
  });

  it('poll: from must be a positive safe integer -> malformed_request (400)', () => {
    const auth = { sid: SID, token: TOKEN, ack: 0 };
    for (const from of [0, -1, 1.5, '3', null, true, 2 ** 53, 1e300, [1], {}]) {
      const r = decodePollRequest(JSON.stringify({ ...auth, from }));
      assertFails(r, 'malformed_request', 400);
      if (!r.ok) assert.match(r.error.message, /\bfrom\b/, 'the message names the field');
    }
    assertFails(decodePollRequest(`{"sid":"${SID}","token":"${TOKEN}","ack":0,"from":-0.5}`), 'malformed_request', 400);
  });

  it('send: m missing or not an array is malformed_request', () => {
    const base = { sid: SID, token: TOKEN, ack: 0, seq: 1 };
    for (const m of [undefined, null, 'x', { b: 'AA==' }, 1]) {
      assertFails(decodeSendRequest(JSON.stringify({ ...base, m })), 'malformed_request');
    }
  });

  it('send: a message that is neither a string nor {"b": base64} is bad_encoding (400)', () => {
    const base = { sid: SID, token: TOKEN, ack: 0, seq: 1 };
    const bad: unknown[] = [
      { x: 'AAAA' },
      { b: 123 },
      { b: null },
      { b: 'not base64!' },
      { b: 'AAA' },
      { b: 'AA=A' },
      { b: 'A===' },
      { b: ' AAAA' },
      { b: 'AA AA' },
      { b: 'AAAA\n' },
      { b: '-_-_' },
      { b: 'AAAA', x: 1 },
      { b: 'AAAA', B: 'AAAA' },
      {},
      [],
      ['a'],
      1,
      true,
      null,
    ];
    for (const m of bad) {
      const r = decodeSendRequest(JSON.stringify({ ...base, m: ['ok', m] }));
      assertFails(r, 'bad_encoding', 400);
      if (!r.ok) assert.match(r.error.message, /message 1\b/, 'the message names the bad message index');
    }
  });

  it('send: a "b" that is not canonical base64 (non-zero pad bits) is bad_encoding, per PROTOCOL.md', () => {
    // "QQ==" is the canonical encoding of "A"; "QR==" and "QUJ=" decode leniently but are not canonical.
    const base = { sid: SID, token: TOKEN, ack: 0, seq: 1 };
    assert.equal(decodeSendRequest(JSON.stringify({ ...base, m: [{ b: 'QQ==' }, { b: 'QUI=' }] })).ok, true);
    for (const b of ['QR==', 'QUJ=', 'QUJDRB==']) {
      assertFails(decodeSendRequest(JSON.stringify({ ...base, m: [{ b }] })), 'bad_encoding', 400);
    }
  });

  it('decodePayloads accepts the empty binary message {"b":""}', () => {
    const r = value(decodePayloads([{ b: '' }]));
    assert.ok(r[0] instanceof Uint8Array);
    assert.equal(r[0].byteLength, 0);
  });
});

describe('codec: bad response bodies are bad_response', () => {
  it('non-JSON, non-object and missing fields', () => {
    for (const text of ['', '<html>502 Bad Gateway</html>', 'null', '[]', '7']) {
      assertFails(decodePollResponse(text), 'bad_response');
      assertFails(decodeSendResponse(text), 'bad_response');
      assertFails(decodeOpenResponse(text), 'bad_response');
    }
    assertFails(decodeSendResponse('{}'), 'bad_response');
    assertFails(decodeSendResponse('{"ack":-1}'), 'bad_response');
    assertFails(decodePollResponse('{"seq":1,"m":[]}'), 'bad_response');
    assertFails(decodePollResponse('{"ack":1,"m":[]}'), 'bad_response');
    assertFails(decodePollResponse('{"ack":1,"seq":1}'), 'bad_response');
    assertFails(decodePollResponse('{"ack":1,"seq":1,"m":[{"x":"y"}]}'), 'bad_response');
    assertFails(decodePollResponse('{"ack":1,"seq":1,"m":[],"close":null}'), 'bad_response');
    assertFails(decodePollResponse('{"ack":1,"seq":1,"m":[],"close":"bye"}'), 'bad_response');
    assertFails(decodePollResponse('{"ack":1,"seq":1,"m":[],"close":{"code":1,"message":"x"}}'), 'bad_response');
    assertFails(decodePollResponse('{"ack":1,"seq":1,"m":[],"close":{"code":"server_closed"}}'), 'bad_response');
  });

  it('open: every numeric limit and sid/token are required', () => {
    const full: Record<string, unknown> = {
      v: 1, sid: SID, token: TOKEN, pollTimeoutMs: 1, sessionIdleTimeoutMs: 1, maxMessageBytes: 1, maxBatchBytes: 1,
    };
    assert.equal(decodeOpenResponse(JSON.stringify(full)).ok, true);
    for (const k of Object.keys(full)) {
      assertFails(decodeOpenResponse(JSON.stringify({ ...full, [k]: undefined })), 'bad_response');
      assertFails(decodeOpenResponse(JSON.stringify({ ...full, [k]: k === 'sid' || k === 'token' ? 5 : '5' })), 'bad_response');
    }
  });

  it('decodeErrorBody returns undefined for anything that is not ours', () => {
    for (const text of ['', 'null', '"x"', '[]', '{}', '{"error":null}', '{"error":"x"}', '{"error":{"code":1,"message":"m"}}',
      '{"error":{"code":"c"}}', '<h1>Proxy Error</h1>']) {
      assert.equal(decodeErrorBody(text), undefined, text);
    }
  });
});

describe('codec: decoders never throw', () => {
  const inputs: string[] = [
    '', '\u0000', '{"__proto__":{"sid":"x"}}', '{"constructor":{"prototype":{}}}', '{"sid":{"toString":1},"token":[],"ack":{}}',
    '[' .repeat(5000) + ']'.repeat(5000), '{"a":'.repeat(3000) + '1' + '}'.repeat(3000), '1e999', '-0', '{"m":[' + '{"b":1},'.repeat(100) + '1]}',
    JSON.stringify({ sid: SID, token: TOKEN, ack: 0, seq: 1, m: [{ b: { b: 'AA==' } }] }),
    JSON.stringify({ v: 1, attempt: 'abcdefgh', sid: SID, token: TOKEN, ack: 0, seq: 1, m: ['\ud800'], close: { code: 'x', message: 'y' } }),
  ];
  const decoders: Array<(t: string) => unknown> = [
    decodeOpenRequest, decodePollRequest, decodeSendRequest, decodeCloseRequest,
    decodeOpenResponse, decodePollResponse, decodeSendResponse, decodeErrorBody,
  ];
  it('on odd, deep and hostile input', () => {
    for (const d of decoders) {
      for (const text of inputs) {
        assert.doesNotThrow(() => d(text), `${d.name}(${text.slice(0, 40)})`);
      }
    }
  });

  it('decodePayloads on non-JSON values', () => {
    for (const v of [undefined, Symbol('s'), () => 1, new Map(), Object.create(null) as object, [Object.create(null) as object], [undefined]]) {
      assert.doesNotThrow(() => decodePayloads(v));
      assert.equal(decodePayloads(v).ok, false);
    }
  });
});
