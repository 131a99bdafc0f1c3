/**
 * The HTTP fuzzer's inputs, one per number of the run (Inputs.build(n), its
 * own PRNG stream from HOLDLINE_FUZZ_SEED and n, so that a run replays):
 * mostly an envelope aimed at one of the run's sessions (its body from
 * envelopes.ts, its method, path, headers and framing from requests.ts);
 * else several requests pipelined in one write; else framing on a raw
 * socket: bare LF, Content-Length with Transfer-Encoding, bad chunk sizes,
 * an early close mid-body, a byte-by-byte drip, oversized heads, many
 * headers, bad request lines and header names, junk, an HTTP/2 preface, a
 * body that never finishes, Expect: 100-continue.
 */
import { Rng, type RawInput } from '../helpers/fuzz.js';
import type { RawSession } from '../helpers/server.js';
import { ENDPOINTS, encodeFields, mutateFields, oddValue, spoilBody, validFields, type Endpoint } from './envelopes.js';
import { MOUNT, SEED } from './helpers.js';
import { contentType, METHODS, origin, path, request } from './requests.js';

export interface Built {
  input: RawInput;
  endpoint: Endpoint;
  slot: number;
}

export class Inputs {
  readonly #port: number;
  readonly #sessions: () => readonly RawSession[];

  constructor(port: number, sessions: () => readonly RawSession[]) {
    this.#port = port;
    this.#sessions = sessions;
  }

  /** Input number `n` of the run: its own PRNG stream, so it is the same whatever ran before it. */
  build(n: number): Built {
    const rng = new Rng((SEED ^ Math.imul(n + 1, 0x9e3779b9)) >>> 0);
    const kind = rng.next();
    if (kind < 0.72) return this.#envelope(rng, `#${n}`);
    if (kind < 0.8) return this.#pipelined(rng, `#${n}`);
    return this.#framing(rng, `#${n}`);
  }

  #headers(rng: Rng, ct: string | undefined): Array<[string, string]> {
    const h: Array<[string, string]> = [];
    if (rng.chance(0.97)) h.push(['Host', rng.chance(0.95) ? `127.0.0.1:${this.#port}` : rng.pick(['', 'evil.example', `127.0.0.1:${this.#port}, evil`])]);
    if (ct !== undefined) h.push(['Content-Type', ct]);
    const o = origin(rng, this.#port);
    if (o !== undefined) h.push(['Origin', o]);
    if (rng.chance(0.15)) {
      h.push(
        rng.pick<[string, string]>([
          ['X-Forwarded-Host', rng.pick(['allowed.example', '', 'a,b', '[::1]:99999'])],
          ['X-Forwarded-Proto', rng.pick(['https', 'gopher', '', 'http,https'])],
          ['Connection', 'close'],
          ['Expect', '100-continue'],
          ['Upgrade', 'websocket'],
          ['Content-Type', 'application/json'],
          ['Origin', 'http://second.example'],
          ['Accept-Encoding', 'gzip, br'],
          ['X-Long', 'v'.repeat(rng.range(100, 12_000, true))],
          ['Cookie', 'a=b'],
        ]),
      );
    }
    return h;
  }

  #envelope(rng: Rng, id: string): Built {
    const endpoint = rng.pick(ENDPOINTS);
    const sessions = this.#sessions();
    const slot = rng.int(sessions.length);
    const s = sessions[slot] ?? { sid: 'nosuchsession', token: 'x' };
    let fields = validFields(rng, endpoint, s);
    if (rng.chance(0.75)) fields = mutateFields(rng, fields);
    const text = rng.chance(0.03) ? oddValue(rng) : encodeFields(fields);
    const body = spoilBody(rng, text);
    const method = rng.chance(0.88) ? 'POST' : rng.pick(METHODS);
    const target = path(rng, endpoint);
    const framing = rng.chance(0.85) ? 'length' : rng.pick(['shorter', 'longer', 'chunked', 'both', 'twice', 'nonsense', 'none']);
    const headers = this.#headers(rng, contentType(rng));
    // A body longer than its Content-Length leaves bytes the server reads as a next request: end our side so it can finish.
    const after = framing === 'longer' || framing === 'none' || framing === 'shorter' || method === 'CONNECT' ? 'half-close' : 'keep';
    const label = `${id} envelope ${method} ${target.slice(0, 60)} ${framing} ${body.length} B`;
    return {
      input: { label, pieces: [request(method, target, headers, body, framing)], after, expect: 1, methods: [method] },
      endpoint,
      slot,
    };
  }

  /**
   * Several requests in one write; each must be answered, in order.
   *
   * A poll may stand anywhere: one pipelined behind a response still
   * pending (a held poll's) has no socket of its own until the one ahead
   * finishes (see the test "pipelined polls", pipelined-polls.test.ts).
   */
  #pipelined(rng: Rng, id: string): Built {
    const n = rng.range(2, 5);
    const sessions = this.#sessions();
    const slot = rng.int(sessions.length);
    const s = sessions[slot] ?? { sid: 'nosuchsession', token: 'x' };
    const parts: Buffer[] = [];
    const methods: string[] = [];
    for (let i = 0; i < n; i++) {
      const endpoint = rng.pick<Endpoint>(['open', 'poll', 'send', 'poll']);
      let fields = validFields(rng, endpoint, s);
      if (rng.chance(0.5)) fields = mutateFields(rng, fields);
      const method = rng.chance(0.9) ? 'POST' : rng.pick(['GET', 'OPTIONS', 'HEAD']);
      methods.push(method);
      parts.push(request(method, `${MOUNT}/${endpoint}`, this.#headers(rng, 'text/plain'), Buffer.from(encodeFields(fields)), 'length'));
    }
    const junk = rng.chance(0.2);
    if (junk) parts.push(Buffer.from(rng.pick(['GARBAGE\r\n\r\n', 'POST /holdline/send HTTP/1.1\r\nContent-Length: 5\r\n\r\n', '\r\n\r\n\r\n'])));
    return {
      input: { label: `${id} pipelined ${n}${junk ? ' + junk' : ''}`, pieces: [Buffer.concat(parts)], after: junk ? 'half-close' : 'keep', expect: n, methods },
      endpoint: 'poll',
      slot,
    };
  }

  #framing(rng: Rng, id: string): Built {
    const sessions = this.#sessions();
    const slot = rng.int(sessions.length);
    const s = sessions[slot] ?? { sid: 'nosuchsession', token: 'x' };
    const endpoint = rng.pick(ENDPOINTS);
    const body = Buffer.from(encodeFields(validFields(rng, endpoint, s)));
    const target = `${MOUNT}/${endpoint}`;
    const host: [string, string] = ['Host', `127.0.0.1:${this.#port}`];
    const ct: [string, string] = ['Content-Type', 'text/plain'];
    const one = (label: string, bytes: Buffer, after: RawInput['after'] = 'keep', more: Partial<RawInput> = {}): Built => ({
      input: { label: `${id} ${label}`, pieces: [bytes], after, expect: 1, methods: ['POST'], ...more },
      endpoint,
      slot,
    });
    switch (rng.int(14)) {
      case 0:
        return one('bare LF line endings', request('POST', target, [host, ct], body, 'length', '\n'), 'half-close');
      case 1:
        return one('Content-Length and Transfer-Encoding', request('POST', target, [host, ct], body, 'both'), 'half-close');
      case 2: {
        const size = rng.pick(['zz', '-5', 'ffffffffffffffffff', `${(body.length + 10).toString(16)}`, '5;' + 'x'.repeat(9_000), ' ', '0x10', '1\t']);
        const head = request('POST', target, [host, ct, ['Transfer-Encoding', 'chunked']], Buffer.alloc(0), 'none');
        return one(`chunked, size "${size.slice(0, 20)}"`, Buffer.concat([head, Buffer.from(`${size}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]), 'half-close');
      }
      case 3: {
        const full = request('POST', target, [host, ct], body, 'length');
        const cut = full.subarray(0, full.length - 1 - rng.int(Math.max(1, body.length)));
        return rng.chance(0.5)
          ? one('early close mid-body (reset)', cut, 'destroy')
          : one('early close mid-body (EOF)', cut, 'half-close');
      }
      case 4: {
        const full = request('POST', target, [host, ct], body, 'length');
        const pieces: Buffer[] = [];
        const step = Math.max(1, Math.ceil(full.length / rng.range(5, 40)));
        for (let i = 0; i < full.length; i += step) pieces.push(full.subarray(i, i + step));
        return one(`drip in ${pieces.length} pieces`, Buffer.alloc(0), 'keep', { pieces, pauseMs: rng.range(0, 3) });
      }
      case 5:
        return one('oversized head', request('POST', target, [host, ct, ['X-Big', 'b'.repeat(rng.range(17_000, 60_000))]], body, 'length'), 'half-close');
      case 6: {
        const many: Array<[string, string]> = Array.from({ length: rng.range(100, 2_500) }, (_, i) => [`X-H${i}`, 'v']);
        return one(`${many.length} headers`, request('POST', target, [host, ct, ...many], body, 'length'), 'half-close');
      }
      case 7: {
        const line = rng.pick([`POST ${target} HTTP/1.0`, `POST ${target} HTTP/2.0`, `POST ${target} HTTP/1.1 x`, `POST ${target}`, `POST  ${target} HTTP/1.1`, `POST ${target} http/1.1`]);
        return one(`request line "${line.slice(0, 40)}"`, Buffer.concat([Buffer.from(`${line}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n`), body]), 'half-close');
      }
      case 8:
        return one('leading blank lines', Buffer.concat([Buffer.from('\r\n\r\n'), request('POST', target, [host, ct], body, 'length')]), 'half-close');
      case 9:
        return one('binary junk', rng.bytes(rng.range(1, 4_000, true)), 'half-close');
      case 10:
        return one('HTTP/2 preface', Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), 'half-close');
      case 11: {
        const bad = rng.pick<[string, string]>([
          ['Bad Name', 'x'],
          ['X-Nul', 'a\u0000b'],
          ['X-Ctl', 'a\u0007b'],
          ['X-Fold', 'a\r\n b'],
          [':', 'x'],
          ['X-Lf', 'a\nb'],
        ]);
        return one(`bad header ${JSON.stringify(bad[0])}`, request('POST', target, [host, ct, bad], body, 'length'), 'half-close');
      }
      case 12: {
        // A request whose body never finishes, then EOF.
        const head = request('POST', target, [host, ct, ['Content-Length', String(body.length + rng.range(1, 50_000))]], Buffer.alloc(0), 'none');
        return one('Content-Length promises more, then EOF', Buffer.concat([head, body]), 'half-close');
      }
      default:
        return one('Expect: 100-continue', request('POST', target, [host, ct, ['Expect', '100-continue']], body, 'length'));
    }
  }
}
