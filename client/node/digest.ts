/**
 * HTTP Digest proxy authentication (RFC 7616): MD5 and SHA-256 (and their
 * -sess forms), qop=auth. One DigestSession per proxy connection lane: after
 * the first challenge it answers every request up front, with the nonce count
 * going up, until the proxy says the nonce is stale.
 */
import { createHash, randomBytes } from 'node:crypto';

export interface DigestChallenge {
  realm: string;
  nonce: string;
  opaque: string | undefined;
  algorithm: 'MD5' | 'MD5-sess' | 'SHA-256' | 'SHA-256-sess';
  /** The proxy said the nonce expired (the credentials were right). */
  stale: boolean;
  /** qop=auth was offered (else the RFC 2069 form, without cnonce/nc). */
  qopAuth: boolean;
}

const ALGORITHMS = new Map<string, DigestChallenge['algorithm']>([
  ['md5', 'MD5'],
  ['md5-sess', 'MD5-sess'],
  ['sha-256', 'SHA-256'],
  ['sha-256-sess', 'SHA-256-sess'],
]);

/** The auth-params of a challenge (`realm="x", nonce="y", qop="auth,auth-int"`), names lower-cased. */
export function authParams(text: string): Map<string, string> {
  const params = new Map<string, string>();
  const re = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g;
  for (const m of text.matchAll(re)) {
    const [, name = '', quoted, token] = m;
    params.set(name.toLowerCase(), quoted === undefined ? (token ?? '') : quoted.replace(/\\(.)/g, '$1'));
  }
  return params;
}

/** A Digest challenge's parameters (the text after `Digest `), or undefined when it is one this client cannot answer. */
export function parseDigestChallenge(text: string): DigestChallenge | undefined {
  const p = authParams(text);
  const realm = p.get('realm');
  const nonce = p.get('nonce');
  const algorithm = ALGORITHMS.get((p.get('algorithm') ?? 'MD5').toLowerCase());
  if (realm === undefined || nonce === undefined || algorithm === undefined) return undefined;
  const qop = p.get('qop');
  const qopAuth = qop !== undefined && qop.split(',').some((q) => q.trim().toLowerCase() === 'auth');
  // Only auth-int offered: a body hash this client does not compute.
  if (qop !== undefined && !qopAuth) return undefined;
  return { realm, nonce, opaque: p.get('opaque'), algorithm, stale: p.get('stale')?.toLowerCase() === 'true', qopAuth };
}

function quote(s: string): string {
  return `"${s.replace(/["\\]/g, '\\$&')}"`;
}

/** Answers a challenge, request after request (each with the next nonce count). */
export class DigestSession {
  readonly #challenge: DigestChallenge;
  readonly #user: string;
  readonly #password: string;
  #nc = 0;
  readonly #cnonce: string;

  /** `cnonce` is for tests (fixed vectors); leave it out. */
  constructor(challenge: DigestChallenge, user: string, password: string, cnonce: string = randomBytes(16).toString('hex')) {
    this.#challenge = challenge;
    this.#user = user;
    this.#password = password;
    this.#cnonce = cnonce;
  }

  get algorithm(): string {
    return this.#challenge.algorithm;
  }

  /** The Proxy-Authorization value for `method uri` (uri as in the request line: absolute URL, or host:port for CONNECT). */
  authorization(method: string, uri: string): string {
    const c = this.#challenge;
    const hashName = c.algorithm.startsWith('SHA-256') ? 'sha256' : 'md5';
    const H = (s: string): string => createHash(hashName).update(s, 'utf8').digest('hex');
    const nc = (++this.#nc).toString(16).padStart(8, '0');
    const cnonce = this.#cnonce;
    let ha1 = H(`${this.#user}:${c.realm}:${this.#password}`);
    if (c.algorithm.endsWith('-sess')) ha1 = H(`${ha1}:${c.nonce}:${cnonce}`);
    const ha2 = H(`${method}:${uri}`);
    const response = c.qopAuth ? H(`${ha1}:${c.nonce}:${nc}:${cnonce}:auth:${ha2}`) : H(`${ha1}:${c.nonce}:${ha2}`);
    const parts = [
      `username=${quote(this.#user)}`,
      `realm=${quote(c.realm)}`,
      `nonce=${quote(c.nonce)}`,
      `uri=${quote(uri)}`,
      `algorithm=${c.algorithm}`,
      `response=${quote(response)}`,
    ];
    if (c.qopAuth) parts.push('qop=auth', `nc=${nc}`, `cnonce=${quote(cnonce)}`);
    if (c.opaque !== undefined) parts.push(`opaque=${quote(c.opaque)}`);
    return `Digest ${parts.join(', ')}`;
  }
}
