// htpasswd lines for squid's basic_ncsa_auth, computed in Node so the tests
// do not depend on openssl or apache2-utils. The hash is Apache's APR1
// variant of MD5-crypt (`$apr1$salt$hash`, what `openssl passwd -apr1` and
// `htpasswd -m` produce); basic_ncsa_auth in squid 5 accepts it.

import { createHash, randomBytes } from 'node:crypto';

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function to64(value: number, chars: number): string {
  let out = '';
  let v = value;
  for (let i = 0; i < chars; i++) {
    out += ITOA64[v & 0x3f];
    v >>>= 6;
  }
  return out;
}

function md5(...parts: Buffer[]): Buffer {
  const hash = createHash('md5');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/**
 * MD5-crypt with the given magic (`$apr1$` for Apache, `$1$` for glibc) —
 * Poul-Henning Kamp's algorithm, step for step.
 */
export function md5Crypt(password: string, salt: string, magic: '$apr1$' | '$1$' = '$apr1$'): string {
  const pw = Buffer.from(password, 'utf8');
  const s = Buffer.from(salt.slice(0, 8), 'utf8');
  const magicBytes = Buffer.from(magic, 'utf8');

  // 1. The "alternate" digest: password, salt, password.
  const alternate = md5(pw, s, pw);

  // 2. The main digest: password, magic, salt, then the alternate digest
  //    repeated to the password's length, then one byte per bit of the length.
  const parts: Buffer[] = [pw, magicBytes, s];
  for (let left = pw.length; left > 0; left -= 16) parts.push(alternate.subarray(0, Math.min(16, left)));
  for (let bits = pw.length; bits > 0; bits >>>= 1) parts.push((bits & 1) !== 0 ? Buffer.of(0) : pw.subarray(0, 1));
  let digest = md5(...parts);

  // 3. 1000 rounds to slow down brute force.
  for (let round = 0; round < 1000; round++) {
    const roundParts: Buffer[] = [(round & 1) !== 0 ? pw : digest];
    if (round % 3 !== 0) roundParts.push(s);
    if (round % 7 !== 0) roundParts.push(pw);
    roundParts.push((round & 1) !== 0 ? digest : pw);
    digest = md5(...roundParts);
  }

  // 4. Custom base64 of the digest bytes in this fixed order.
  const d = (i: number): number => digest[i] ?? 0;
  const encoded =
    to64((d(0) << 16) | (d(6) << 8) | d(12), 4) +
    to64((d(1) << 16) | (d(7) << 8) | d(13), 4) +
    to64((d(2) << 16) | (d(8) << 8) | d(14), 4) +
    to64((d(3) << 16) | (d(9) << 8) | d(15), 4) +
    to64((d(4) << 16) | (d(10) << 8) | d(5), 4) +
    to64(d(11), 2);
  return `${magic}${s.toString('utf8')}$${encoded}`;
}

function randomSalt(): string {
  return [...randomBytes(8)].map((byte) => ITOA64[byte & 0x3f]).join('');
}

/** One `user:$apr1$...` line for an htpasswd file. */
export function htpasswdLine(user: string, password: string, salt: string = randomSalt()): string {
  return `${user}:${md5Crypt(password, salt)}`;
}
