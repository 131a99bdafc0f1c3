/**
 * Answering a proxy's 407: which scheme to use (NTLM, Digest, Basic; the
 * proxy's Proxy-Authenticate headers offer them), and what to send next,
 * request by request. One ProxyAuth per proxy per lane (it learns the scheme
 * once); one AuthRound per request (it bounds the exchanges a request may
 * take, so wrong credentials fail at once instead of looping).
 *
 * - Basic: sent up front when credentials are given without a domain, as
 *   before (curl does the same); never once the proxy asked for another scheme.
 * - Digest: after the first challenge, every request carries an answer (nonce
 *   count up); a `stale=true` challenge is answered again, once.
 * - NTLM: bound to the connection. A connection opens with Type 1, reads the
 *   Type 2 from the 407, answers with Type 3 on the same connection; after
 *   that, requests on it carry nothing. A new connection does it again.
 * - Negotiate (Kerberos) is not spoken: a proxy that offers it alongside
 *   NTLM gets NTLM (the usual fallback); one that offers only Negotiate is
 *   proxy_auth_required naming Negotiate.
 */
import { HoldlineError } from '../../shared/index.js';
import { DigestSession, parseDigestChallenge } from './digest.js';
import { ntlmType1, ntlmType3, parseNtlmType2 } from './ntlm.js';
import type { ProxyCredentials } from './proxy-config.js';

/** Strongest first: the order a scheme is picked in, and named in an error. */
const SCHEMES = ['Negotiate', 'NTLM', 'Digest', 'Basic'] as const;
export type ProxyScheme = (typeof SCHEMES)[number];

export interface Challenge {
  scheme: ProxyScheme;
  /** The rest of the challenge (Digest parameters, an NTLM token); may be empty. */
  rest: string;
}

/** A request gives up after this many 407s (NTLM takes two; a stale Digest nonce one more). */
const MAX_ROUNDS = 4;

/** The challenges in Proxy-Authenticate (one header per scheme, or several in one line). */
export function parseChallenges(value: string | readonly string[] | undefined): Challenge[] {
  const lines = value === undefined ? [] : typeof value === 'string' ? [value] : value;
  const out: Challenge[] = [];
  for (const line of lines) {
    for (const part of line.split(/,\s*(?=(?:Negotiate|NTLM|Digest|Basic)\b)/i)) {
      const m = /^\s*([A-Za-z-]+)\s*(.*)$/s.exec(part);
      const scheme = SCHEMES.find((s) => s.toLowerCase() === m?.[1]?.toLowerCase());
      if (scheme !== undefined) out.push({ scheme, rest: (m?.[2] ?? '').trim() });
    }
  }
  return out;
}

export function proxyAuthRequired(scheme: ProxyScheme | undefined, why: string): HoldlineError {
  const asked = scheme === undefined ? 'authentication' : `${scheme} authentication`;
  const hint =
    scheme === 'Negotiate'
      ? 'Holdline speaks NTLM, Digest and Basic, not Negotiate (Kerberos): ask for NTLM to be allowed on the proxy, or use a local relay (cntlm, px)'
      : 'put credentials in the proxy URL (http://user:pass@host:port, DOMAIN%5Cuser for a Windows domain) or the "proxy" option';
  return new HoldlineError('proxy_auth_required', `the proxy asks for ${asked} (407): ${why}; ${hint}`);
}

/** One request's way through the proxy's 407s. */
export interface AuthRound {
  rounds: number;
  /** What the last attempt carried. */
  sent: 'none' | 'Basic' | 'Digest' | 'NTLM1' | 'NTLM3';
}

export function newRound(): AuthRound {
  return { rounds: 0, sent: 'none' };
}

function basic(c: ProxyCredentials): string {
  const user = c.domain === '' ? c.user : `${c.domain}\\${c.user}`;
  return `Basic ${Buffer.from(`${user}:${c.password}`, 'utf8').toString('base64')}`;
}

/** Proxy authentication for one lane's connection(s) to one proxy. */
export class ProxyAuth {
  readonly #creds: ProxyCredentials | undefined;
  #scheme: ProxyScheme | undefined;
  #digest: DigestSession | undefined;
  /** The lane's current connection has passed the NTLM handshake. */
  #ntlmDone = false;

  constructor(creds: ProxyCredentials | undefined) {
    this.#creds = creds;
  }

  /** The scheme the proxy asked for, once it did. */
  get scheme(): ProxyScheme | undefined {
    return this.#scheme;
  }

  /** The connection went away: NTLM starts over on the next one. */
  connectionClosed(): void {
    this.#ntlmDone = false;
  }

  /** A request got through: an NTLM handshake on it is complete. */
  passed(round: AuthRound): void {
    if (round.sent === 'NTLM3' || (this.#scheme === 'NTLM' && round.sent === 'none')) this.#ntlmDone = true;
  }

  /** The Proxy-Authorization for a request's first attempt, or undefined. */
  first(round: AuthRound, method: string, uri: string): string | undefined {
    const c = this.#creds;
    if (c === undefined) return undefined;
    switch (this.#scheme) {
      case undefined:
      case 'Basic':
        // Up front only where Basic is plausible: a Windows domain means NTLM.
        if (this.#scheme === 'Basic' || c.domain === '') return this.#send(round, 'Basic', basic(c));
        return undefined;
      case 'Digest':
        return this.#digest === undefined ? undefined : this.#send(round, 'Digest', this.#digest.authorization(method, uri));
      case 'NTLM':
        return this.#ntlmDone ? undefined : this.#send(round, 'NTLM1', `NTLM ${ntlmType1()}`);
      default:
        return undefined;
    }
  }

  /** The next Proxy-Authorization after a 407 with these challenges, or the error to fail with. */
  next(round: AuthRound, challenges: readonly Challenge[], method: string, uri: string): string | HoldlineError {
    const offered = (s: ProxyScheme): Challenge | undefined => challenges.find((c) => c.scheme === s);
    const strongest = SCHEMES.find((s) => offered(s) !== undefined);
    const c = this.#creds;
    if (c === undefined) return proxyAuthRequired(strongest, 'no credentials were given');
    if (++round.rounds > MAX_ROUNDS) return proxyAuthRequired(this.#scheme ?? strongest, `still refused after ${MAX_ROUNDS} answers`);
    const ntlm = offered('NTLM');
    if (round.sent === 'NTLM1' && ntlm !== undefined && ntlm.rest !== '') {
      let challenge;
      try {
        challenge = parseNtlmType2(ntlm.rest);
      } catch (e) {
        return new HoldlineError('bad_response', `the proxy's NTLM challenge is malformed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
      return this.#send(round, 'NTLM3', `NTLM ${ntlmType3({ ...c, workstation: '' }, challenge)}`);
    }
    if (round.sent === 'NTLM3') return proxyAuthRequired('NTLM', `the proxy refused the NTLM credentials of ${JSON.stringify(c.user)}`);
    const digest = offered('Digest');
    if (round.sent === 'Digest' && !(digest !== undefined && parseDigestChallenge(digest.rest)?.stale === true)) {
      return proxyAuthRequired('Digest', `the proxy refused the Digest credentials of ${JSON.stringify(c.user)}`);
    }
    if (round.sent === 'Basic' && ntlm === undefined && digest === undefined) {
      return proxyAuthRequired('Basic', `the proxy refused the Basic credentials of ${JSON.stringify(c.user)}`);
    }
    if (ntlm !== undefined) {
      this.#scheme = 'NTLM';
      this.#ntlmDone = false;
      return this.#send(round, 'NTLM1', `NTLM ${ntlmType1()}`);
    }
    const parsed = digest === undefined ? undefined : parseDigestChallenge(digest.rest);
    if (parsed !== undefined) {
      this.#scheme = 'Digest';
      this.#digest = new DigestSession(parsed, c.domain === '' ? c.user : `${c.domain}\\${c.user}`, c.password);
      return this.#send(round, 'Digest', this.#digest.authorization(method, uri));
    }
    if (offered('Basic') !== undefined) {
      this.#scheme = 'Basic';
      return this.#send(round, 'Basic', basic(c));
    }
    return proxyAuthRequired(strongest, strongest === undefined ? 'it named no scheme' : `Holdline cannot answer ${strongest}`);
  }

  #send(round: AuthRound, sent: AuthRound['sent'], value: string): string {
    round.sent = sent;
    return value;
  }
}
