/**
 * NTLM messages (MS-NLMP) for proxy authentication: the Type 1 (negotiate)
 * a client opens with, the Type 2 (challenge) it reads from the proxy's 407,
 * and the Type 3 (authenticate) with an NTLMv2 response. Only NTLMv2: the
 * v1 and LM responses are crackable and not sent.
 *
 * Written here rather than taken from @ewsjs/ntlm-client (the maintained fork
 * of node-ntlm-client), which was read and does not fit: its client challenge
 * comes from Math.random, its messages are built in a fixed 1 KB buffer that
 * silently truncates long names, it answers with NTLMv1 (whose DES step keys
 * on the wrong bytes) when a Type 2 lacks the NTLM2 flag, and it throws a
 * TypeError on a Type 2 without target info. The hashes it would need (MD4)
 * are not in Node 20's default OpenSSL either (see md4.ts).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { md4 } from './md4.js';

const SIGNATURE = Buffer.from('NTLMSSP\0', 'latin1');

const NEGOTIATE_UNICODE = 0x0000_0001;
const NEGOTIATE_OEM = 0x0000_0002;
const REQUEST_TARGET = 0x0000_0004;
const NEGOTIATE_NTLM = 0x0000_0200;
const NEGOTIATE_ALWAYS_SIGN = 0x0000_8000;
const NEGOTIATE_EXTENDED_SESSIONSECURITY = 0x0008_0000;
const NEGOTIATE_TARGET_INFO = 0x0080_0000;

const TYPE1_FLAGS = NEGOTIATE_UNICODE | NEGOTIATE_OEM | REQUEST_TARGET | NEGOTIATE_NTLM | NEGOTIATE_ALWAYS_SIGN | NEGOTIATE_EXTENDED_SESSIONSECURITY;

export interface NtlmCredentials {
  user: string;
  password: string;
  /** The Windows domain (may be empty: the Type 2's target name is used). */
  domain: string;
  /** Workstation name sent in the Type 3 (may be empty). */
  workstation: string;
}

export interface NtlmChallenge {
  flags: number;
  /** The server challenge (8 bytes). */
  challenge: Buffer;
  targetName: string;
  /** The target info block (AV pairs), echoed in the NTLMv2 response; empty when the proxy sent none. */
  targetInfo: Buffer;
}

/** The Type 1 message, base64 (the token after `NTLM ` in Proxy-Authorization). */
export function ntlmType1(): string {
  const buf = Buffer.alloc(32);
  SIGNATURE.copy(buf, 0);
  buf.writeUInt32LE(1, 8);
  buf.writeUInt32LE(TYPE1_FLAGS, 12);
  // Domain and workstation security buffers: empty (offset past the header).
  buf.writeUInt32LE(32, 20);
  buf.writeUInt32LE(32, 28);
  return buf.toString('base64');
}

/**
 * A security buffer's bytes (length at `at`, offset at `at + 4`), or empty
 * when it points outside the message: the optional fields (target name and
 * info) are read leniently, as Windows does (squid's ntlm_fake_auth sends a
 * target name whose offset is garbage).
 */
function securityBuffer(buf: Buffer, at: number): Buffer {
  const length = buf.readUInt16LE(at);
  const offset = buf.readUInt32LE(at + 4);
  if (length === 0 || offset + length > buf.length) return Buffer.alloc(0);
  return buf.subarray(offset, offset + length);
}

/** Parses the Type 2 token from a proxy's `Proxy-Authenticate: NTLM <token>`. Throws a RangeError on a malformed one. */
export function parseNtlmType2(token: string): NtlmChallenge {
  const buf = Buffer.from(token, 'base64');
  if (buf.length < 32 || !buf.subarray(0, 8).equals(SIGNATURE)) throw new RangeError('not an NTLM message');
  if (buf.readUInt32LE(8) !== 2) throw new RangeError(`an NTLM message of type ${buf.readUInt32LE(8)}, not 2`);
  const flags = buf.readUInt32LE(20);
  const name = securityBuffer(buf, 12);
  const targetName = flags & NEGOTIATE_UNICODE ? name.toString('utf16le') : name.toString('latin1');
  const targetInfo = flags & NEGOTIATE_TARGET_INFO && buf.length >= 48 ? Buffer.from(securityBuffer(buf, 40)) : Buffer.alloc(0);
  return { flags, challenge: Buffer.from(buf.subarray(24, 32)), targetName, targetInfo };
}

function hmacMd5(key: Buffer, ...data: Buffer[]): Buffer {
  const h = createHmac('md5', key);
  for (const d of data) h.update(d);
  return h.digest();
}

/** Windows FILETIME (100 ns since 1601) as 8 bytes little-endian. */
function fileTime(nowMs: number): Buffer {
  const t = (BigInt(nowMs) + 11_644_473_600_000n) * 10_000n;
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64LE(t);
  return buf;
}

/**
 * The Type 3 message answering `challenge` with an NTLMv2 response, base64.
 * `clientChallenge` and `nowMs` are for tests (fixed vectors); leave them out.
 */
export function ntlmType3(creds: NtlmCredentials, challenge: NtlmChallenge, clientChallenge: Buffer = randomBytes(8), nowMs: number = Date.now()): string {
  const unicode = (challenge.flags & NEGOTIATE_UNICODE) !== 0;
  const encode = (s: string): Buffer => Buffer.from(s, unicode ? 'utf16le' : 'latin1');
  const domain = creds.domain !== '' ? creds.domain : challenge.targetName;
  const ntHash = md4(Buffer.from(creds.password, 'utf16le'));
  const ntlmv2Hash = hmacMd5(ntHash, Buffer.from(creds.user.toUpperCase() + domain, 'utf16le'));
  const blob = Buffer.concat([
    Buffer.from([1, 1, 0, 0, 0, 0, 0, 0]),
    fileTime(nowMs),
    clientChallenge,
    Buffer.alloc(4),
    challenge.targetInfo,
    Buffer.alloc(4),
  ]);
  const ntProof = hmacMd5(ntlmv2Hash, challenge.challenge, blob);
  const ntResponse = Buffer.concat([ntProof, blob]);
  const lmResponse = Buffer.concat([hmacMd5(ntlmv2Hash, challenge.challenge, clientChallenge), clientChallenge]);

  const fields = [lmResponse, ntResponse, encode(domain), encode(creds.user), encode(creds.workstation), Buffer.alloc(0)];
  const header = Buffer.alloc(64);
  SIGNATURE.copy(header, 0);
  header.writeUInt32LE(3, 8);
  let offset = header.length;
  fields.forEach((f, i) => {
    const at = 12 + i * 8;
    header.writeUInt16LE(f.length, at);
    header.writeUInt16LE(f.length, at + 2);
    header.writeUInt32LE(offset, at + 4);
    offset += f.length;
  });
  const flags = (challenge.flags & TYPE1_FLAGS & ~(unicode ? NEGOTIATE_OEM : NEGOTIATE_UNICODE)) | NEGOTIATE_NTLM;
  header.writeUInt32LE(flags >>> 0, 60);
  return Buffer.concat([header, ...fields]).toString('base64');
}
