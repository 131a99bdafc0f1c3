/**
 * The Outbox's entries (shared/outbox.ts): encodeEntry() (text kept as is,
 * binary as {b: base64}, with the payload size, independent of the array it
 * came from) and decodeEntries() (round trips of text and binary, escapes,
 * control characters, non-BMP and lone surrogates included, also through a
 * batch's JSON).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Outbox, decodeEntries, encodeEntry } from './outbox.js';
import { toWire, type Payload, type WirePayload } from './payload.js';
import { bytes, checkBatch, pushAll } from '../test/helpers/outbox.js';

describe('encodeEntry', () => {
  it('keeps text as it is and binary as {b: base64}, with the payload size', () => {
    for (const p of ['hello', 'h\u00e9llo \u{1F600}', 'quote " and \\ and \n', '\ud800 lone', '', new Uint8Array([0, 1, 255]), new Uint8Array()]) {
      const e = encodeEntry(p);
      assert.deepEqual(e.wire, toWire(p));
      if (typeof p === 'string') assert.equal(e.wire, p, 'text is kept as is, not JSON-encoded');
      else assert.equal(typeof e.wire, 'object');
      assert.equal(e.bytes, typeof p === 'string' ? Buffer.byteLength(p) : p.byteLength);
    }
    assert.deepEqual(encodeEntry(new Uint8Array([0, 1, 2, 255])).wire, { b: 'AAEC/w==' });
  });

  it('a binary entry is independent of later changes to the array it came from', () => {
    const a = new Uint8Array([1, 2, 3]);
    const e = encodeEntry(a);
    a[0] = 99;
    assert.deepEqual(Array.from(decodeEntries([e])[0] as Uint8Array), [1, 2, 3]);
  });
});

describe('decodeEntries', () => {
  it('round-trips text and binary payloads, escapes, control characters, non-BMP and lone surrogates included', () => {
    const payloads: Payload[] = [
      '',
      'plain',
      'quote " backslash \\ newline \n tab \t',
      '\u0000\u0001\u001f\u007f control',
      'é 中文 😀 \u{10ffff}',
      '\ud800',
      'a\udfffb',
      '\u2028\u2029',
      bytes(),
      bytes(0),
      bytes(0, 1, 2, 255),
      new Uint8Array(Array.from({ length: 300 }, (_, i) => i & 0xff)),
    ];
    const back = decodeEntries(payloads.map(encodeEntry));
    assert.equal(back.length, payloads.length);
    for (const [i, want] of payloads.entries()) {
      const got = back[i];
      if (typeof want === 'string') assert.equal(got, want, `message ${i}`);
      else {
        assert.ok(got instanceof Uint8Array, `message ${i} should be binary`);
        assert.deepEqual(Array.from(got), Array.from(want));
      }
    }
    assert.deepEqual(decodeEntries([]), []);
  });

  it('the same payloads survive a batch: JSON of m, parsed back', () => {
    const payloads: Payload[] = ['\ud800', '"\\', '\u0001', '😀', bytes(255, 0)];
    const o = new Outbox();
    pushAll(o, payloads);
    const b = o.batch(1e6);
    checkBatch(b);
    const wires = JSON.parse(b.m) as WirePayload[];
    assert.deepEqual(wires.slice(0, 4), payloads.slice(0, 4));
    assert.deepEqual(wires[4], { b: '/wA=' });
  });
});
