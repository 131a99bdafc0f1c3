import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as nodeImpl from './payload.js';

type PayloadModule = typeof nodeImpl;

/**
 * payload.ts picks Buffer when it exists at load time. Load a second copy with
 * Buffer hidden, so the browser code paths run (and are compared) in Node too.
 */
async function loadWithoutBuffer(): Promise<PayloadModule> {
  const g = globalThis as { Buffer?: unknown };
  const saved = g.Buffer;
  delete g.Buffer;
  try {
    const spec = new URL('./payload.js?without-buffer', import.meta.url).href;
    return (await import(spec)) as PayloadModule;
  } finally {
    g.Buffer = saved;
  }
}

/** A small deterministic PRNG (mulberry32), so fuzz failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STRINGS: string[] = [
  '',
  'a',
  'hello world',
  '\u0000',
  '\u007f',
  '\u0080',
  'é',
  '\u07ff',
  '\u0800',
  '中文字符',
  '\uffff',
  '\ufeff',
  '😀', // surrogate pair
  '😀😀a😀',
  '\u{10000}',
  '\u{10ffff}',
  'a\ud800', // lone high surrogate at the end
  '\ud800a', // lone high surrogate before ASCII
  '\ud800\ud800', // two highs
  '\ud800\ud800\udc00', // high, then a pair
  '\udc00', // lone low
  '\udc00\ud800', // reversed pair
  '\udfff\udbff',
  'x\udbff\udfffx',
  '\ud7ff\ue000', // just outside the surrogate range
  'mixed é 中 😀 \ud800 end',
];

function randomString(rand: () => number, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) {
    const r = rand();
    // Bias toward the interesting ranges: ASCII, 2-byte, 3-byte, surrogates.
    if (r < 0.3) s += String.fromCharCode(Math.floor(rand() * 0x80));
    else if (r < 0.45) s += String.fromCharCode(0x80 + Math.floor(rand() * 0x780));
    else if (r < 0.6) s += String.fromCharCode(0x800 + Math.floor(rand() * 0xd000));
    else if (r < 0.8) s += String.fromCharCode(0xd800 + Math.floor(rand() * 0x800));
    else s += String.fromCodePoint(0x10000 + Math.floor(rand() * 0x100000));
  }
  return s;
}

describe('payload', () => {
  let browserImpl: PayloadModule;
  before(async () => {
    browserImpl = await loadWithoutBuffer();
    assert.notEqual(browserImpl, nodeImpl, 'a second, Buffer-free copy of the module was loaded');
    for (const impl of [nodeImpl, browserImpl]) {
      const bytes = impl.fromBase64('AAEC');
      assert.ok(bytes instanceof Uint8Array && !Buffer.isBuffer(bytes), 'decoded binary is a plain Uint8Array');
      assert.equal(bytes.buffer.byteLength, 3, 'decoded binary owns its memory (no shared pool)');
    }
  });

  describe('utf8Length equals Buffer.byteLength', () => {
    it('on edge-case strings, with and without Buffer', () => {
      for (const impl of [nodeImpl, browserImpl]) {
        for (const s of STRINGS) {
          assert.equal(impl.utf8Length(s), Buffer.byteLength(s, 'utf8'), `utf8Length(${JSON.stringify(s)})`);
        }
      }
    });

    it('on 2000 random strings full of surrogates, with and without Buffer', () => {
      const rand = prng(0xc0ffee);
      for (let n = 0; n < 2000; n++) {
        const s = randomString(rand, Math.floor(rand() * 40));
        const want = Buffer.byteLength(s, 'utf8');
        assert.equal(browserImpl.utf8Length(s), want, `browser utf8Length(${JSON.stringify(s)})`);
        assert.equal(nodeImpl.utf8Length(s), want);
      }
    });

    it('equals the length of what TextEncoder writes', () => {
      const enc = new TextEncoder();
      for (const s of STRINGS) assert.equal(browserImpl.utf8Length(s), enc.encode(s).byteLength, JSON.stringify(s));
    });
  });

  describe('payloadBytes and isPayload', () => {
    it('counts UTF-8 bytes for text and raw bytes for binary (views included)', () => {
      assert.equal(nodeImpl.payloadBytes('héllo😀'), 1 + 2 + 3 + 4);
      assert.equal(nodeImpl.payloadBytes(new Uint8Array(10)), 10);
      assert.equal(nodeImpl.payloadBytes(new Uint8Array(new ArrayBuffer(100), 10, 7)), 7);
      assert.equal(nodeImpl.payloadBytes(Buffer.from('abc')), 3);
    });

    it('accepts strings and Uint8Arrays (Buffers too), nothing else', () => {
      for (const v of ['', 'x', new Uint8Array(0), Buffer.alloc(1)]) assert.equal(nodeImpl.isPayload(v), true);
      for (const v of [1, null, undefined, {}, [], new ArrayBuffer(1), new Uint16Array(1), new DataView(new ArrayBuffer(1)), { b: 'AA==' }]) {
        assert.equal(nodeImpl.isPayload(v), false, String(v));
      }
    });
  });

  describe('base64', () => {
    it('round-trips every length 0..260, with and without Buffer, and both agree', () => {
      const rand = prng(7);
      for (let len = 0; len <= 260; len++) {
        const bytes = new Uint8Array(len);
        for (let i = 0; i < len; i++) bytes[i] = Math.floor(rand() * 256);
        const want = Buffer.from(bytes).toString('base64');
        for (const impl of [nodeImpl, browserImpl]) {
          const b64 = impl.toBase64(bytes);
          assert.equal(b64, want, `toBase64 of ${len} bytes`);
          const back = impl.fromBase64(b64);
          assert.ok(back, `fromBase64 of ${len} bytes`);
          assert.deepEqual(Array.from(back), Array.from(bytes));
        }
      }
    });

    it('encodes only the bytes of a view, not its whole buffer', () => {
      const whole = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
      const view = whole.subarray(2, 5);
      for (const impl of [nodeImpl, browserImpl]) assert.equal(impl.toBase64(view), Buffer.from([3, 4, 5]).toString('base64'));
    });

    it('encodes large inputs (past the browser path chunk size) correctly', () => {
      const bytes = new Uint8Array(100_000);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) & 0xff;
      assert.equal(browserImpl.toBase64(bytes), Buffer.from(bytes).toString('base64'));
    });

    it('refuses anything that is not padded standard base64, with and without Buffer', () => {
      const bad = [
        'A', 'AA', 'AAA', 'AAAAA', // unpadded / wrong length
        'AA=', 'A===', '====', '=AAA', 'AA=A', 'A=AA', 'AAAA====', // padding in the wrong place or too much
        'AA==AA==', // padding in the middle
        'AAA-', 'AA_A', '-_-_', // base64url alphabet
        ' AAA', 'AAA ', 'AA\nA', 'AAAA\r\n', '\tAAA', // whitespace
        'AA.A', 'AA*A', 'ÄAAA', 'AA\u0000A', 'not base64!',
      ];
      for (const impl of [nodeImpl, browserImpl]) {
        for (const s of bad) assert.equal(impl.fromBase64(s), undefined, `fromBase64(${JSON.stringify(s)}) must be refused`);
      }
    });

    it('refuses non-canonical base64 (non-zero bits after the last byte), as PROTOCOL.md requires', () => {
      // 'QQ==' is "A"; 'QR==' decodes to "A" too, but is not what any encoder writes.
      for (const impl of [nodeImpl, browserImpl]) {
        assert.ok(impl.fromBase64('QQ=='));
        assert.ok(impl.fromBase64('QUI='));
        for (const s of ['QR==', 'QX==', 'QUJ=', 'QUJDRB==']) {
          assert.equal(impl.fromBase64(s), undefined, `fromBase64(${JSON.stringify(s)}) must be refused`);
        }
      }
    });

    it('accepts the empty string as zero bytes', () => {
      for (const impl of [nodeImpl, browserImpl]) assert.equal(impl.fromBase64('')?.byteLength, 0);
    });
  });

  describe('wire form', () => {
    it('toWire/fromWire round-trip text and binary', () => {
      for (const impl of [nodeImpl, browserImpl]) {
        assert.equal(impl.fromWire(impl.toWire('héllo')), 'héllo');
        assert.deepEqual(impl.toWire(new Uint8Array([0, 255])), { b: 'AP8=' });
        const back = impl.fromWire(JSON.parse(JSON.stringify(impl.toWire(new Uint8Array([0, 255])))));
        assert.ok(back instanceof Uint8Array);
        assert.deepEqual(Array.from(back), [0, 255]);
      }
    });

    it('fromWire refuses bad tags', () => {
      const bad: unknown[] = [
        { x: 'AAAA' }, { b: 123 }, { b: 'not base64!' }, { b: 'AAAA', x: 1 }, {}, [], ['AAAA'], 1, null, undefined, true,
        { b: ['AAAA'] }, { b: { b: 'AAAA' } }, Object.assign(Object.create({ b: 'AAAA' }) as object, {}),
      ];
      for (const impl of [nodeImpl, browserImpl]) {
        for (const w of bad) assert.equal(impl.fromWire(w), undefined, JSON.stringify(w));
      }
    });
  });
});
