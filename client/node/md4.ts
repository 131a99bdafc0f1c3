/**
 * MD4 (RFC 1320), for NTLM's NT hash only (MD4 of the UTF-16LE password).
 * Node 20's OpenSSL 3 keeps MD4 in its legacy provider, off by default
 * (`createHash('md4')` throws "unsupported"), so it is computed here: a page
 * of arithmetic, checked against the RFC's test suite in md4.test.ts.
 */

function rotl(x: number, n: number): number {
  return (x << n) | (x >>> (32 - n));
}

/** The MD4 digest (16 bytes) of `data`. */
export function md4(data: Uint8Array): Buffer {
  const bitLength = data.length * 8;
  // Padding: 0x80, zeros to 56 mod 64, then the length in bits (64-bit little-endian).
  const padded = Buffer.alloc((((data.length + 8) >> 6) + 1) * 64);
  padded.set(data);
  padded[data.length] = 0x80;
  padded.writeUInt32LE(bitLength >>> 0, padded.length - 8);
  padded.writeUInt32LE(Math.floor(bitLength / 0x1_0000_0000), padded.length - 4);

  let a = 0x67452301;
  let b = 0xefcdab89;
  let c = 0x98badcfe;
  let d = 0x10325476;
  const x = new Array<number>(16).fill(0);
  const f = (p: number, q: number, r: number): number => (p & q) | (~p & r);
  const g = (p: number, q: number, r: number): number => (p & q) | (p & r) | (q & r);
  const h = (p: number, q: number, r: number): number => p ^ q ^ r;
  const at = (i: number): number => x[i] ?? 0;

  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) x[i] = padded.readUInt32LE(off + i * 4);
    const [aa, bb, cc, dd] = [a, b, c, d];
    // Round 1.
    for (const i of [0, 4, 8, 12]) {
      a = rotl((a + f(b, c, d) + at(i)) | 0, 3);
      d = rotl((d + f(a, b, c) + at(i + 1)) | 0, 7);
      c = rotl((c + f(d, a, b) + at(i + 2)) | 0, 11);
      b = rotl((b + f(c, d, a) + at(i + 3)) | 0, 19);
    }
    // Round 2.
    for (const i of [0, 1, 2, 3]) {
      a = rotl((a + g(b, c, d) + at(i) + 0x5a827999) | 0, 3);
      d = rotl((d + g(a, b, c) + at(i + 4) + 0x5a827999) | 0, 5);
      c = rotl((c + g(d, a, b) + at(i + 8) + 0x5a827999) | 0, 9);
      b = rotl((b + g(c, d, a) + at(i + 12) + 0x5a827999) | 0, 13);
    }
    // Round 3.
    for (const i of [0, 2, 1, 3]) {
      a = rotl((a + h(b, c, d) + at(i) + 0x6ed9eba1) | 0, 3);
      d = rotl((d + h(a, b, c) + at(i + 8) + 0x6ed9eba1) | 0, 9);
      c = rotl((c + h(d, a, b) + at(i + 4) + 0x6ed9eba1) | 0, 11);
      b = rotl((b + h(c, d, a) + at(i + 12) + 0x6ed9eba1) | 0, 15);
    }
    a = (a + aa) | 0;
    b = (b + bb) | 0;
    c = (c + cc) | 0;
    d = (d + dd) | 0;
  }
  const out = Buffer.alloc(16);
  out.writeInt32LE(a, 0);
  out.writeInt32LE(b, 4);
  out.writeInt32LE(c, 8);
  out.writeInt32LE(d, 12);
  return out;
}
