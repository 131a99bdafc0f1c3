/**
 * A bounded HTTP fuzzer against every endpoint of a real HoldlineServer
 * (open, poll, send, close, the paths around them, preflights), in process.
 *
 * Inputs come from a seeded PRNG (HOLDLINE_FUZZ_SEED replays a run; the count
 * is HOLDLINE_FUZZ_INPUTS, 3,000 by default, within a time budget): envelopes
 * for live sessions with fields dropped, retyped, huge, negative, NaN-ish,
 * nested a few thousand deep, very long, with invalid UTF-8 or cut short;
 * headers (content types, Content-Length lies, Origins, X-Forwarded-*,
 * missing ones); methods; paths (below and beside the mount, query strings,
 * encoded characters); and framing on raw sockets (bare LF, Content-Length
 * with Transfer-Encoding, bad chunk sizes, an early close mid-body,
 * pipelining, a byte-by-byte drip, oversized heads, junk). Bodies stay within
 * 64 KB.
 *
 * Asserted: nothing is thrown or rejected unhandled in the process and the
 * server reports no error; no input gets a 5xx other than 503; every complete
 * request is answered or its connection closed within 5 s; every error body
 * Holdline writes is its JSON error; and a healthy HoldlineClient echoing a
 * message every 20 ms through the whole run gets every echo back, in order.
 * Its echo latency is printed, never asserted (a busy 2-core box).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoldlineClient, type HoldlineError } from '../client/index.js';
import type { Session } from '../server/index.js';
import { exchange, percentile, Rng, targetOf, type ExchangeResult, type RawInput, type Target } from './helpers/fuzz.js';
import { Cleanup, Condition, attemptId, openRaw, startServer, type RawSession, type StartedServer } from './helpers/server.js';

const SEED = Number(process.env.HOLDLINE_FUZZ_SEED ?? 0xf022_5eed);
const INPUTS = Number(process.env.HOLDLINE_FUZZ_INPUTS ?? 3_000);
/** Stop starting inputs after this long (the run must stay well under a minute). */
const BUDGET_MS = 40_000;
const DEADLINE_MS = 5_000;
const WORKERS = 8;
const MAX_BODY = 64 * 1024;

const MOUNT = '/holdline';
const ALLOWED_ORIGIN = 'http://allowed.example';
const MAX_MESSAGE = 8 * 1024;
const MAX_BATCH = 32 * 1024;

// ---- the inputs ----

type Endpoint = 'open' | 'poll' | 'send' | 'close';
const ENDPOINTS: readonly Endpoint[] = ['open', 'poll', 'send', 'close'];

/** An envelope as raw JSON fragments per field, so that fields can hold what JSON.stringify never writes (NaN, 1e999, duplicates). */
type Fields = Array<[string, string]>;

const json = (v: unknown) => JSON.stringify(v);

function nested(rng: Rng): string {
  const depth = rng.range(2, 3_000, true);
  switch (rng.int(4)) {
    case 0:
      return '['.repeat(depth) + ']'.repeat(depth);
    case 1:
      return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
    case 2:
      return '[{"b":'.repeat(depth) + '"AAAA"' + '}]'.repeat(depth);
    default:
      return '['.repeat(depth); // never closed
  }
}

/** A value no field expects: retyped, out of range, NaN-ish, huge, nested, very long, or not JSON at all. */
function oddValue(rng: Rng): string {
  switch (rng.int(9)) {
    case 0:
      return rng.pick(['-1', '0', '-0', '1.5', '1e308', '1e999', '-1e999', '9007199254740993', '2e-400', '4294967296', '1e21', '0.1']);
    case 1:
      return rng.pick(['NaN', 'Infinity', '-Infinity', '0x10', '01', '1e', '.5', '+1', 'undefined', "'x'"]);
    case 2:
      return rng.pick(['""', '"NaN"', '"1"', '"0"', '"\\ud800"', '"\\uZZZZ"', '"\\u0000"', '"a\\nb"', '"🙂"']);
    case 3:
      return rng.pick(['null', 'true', 'false', '[]', '{}', '[1,2,3]', '{"b":"AAAA"}', '[null]', '{"__proto__":{"x":1}}']);
    case 4:
      return json('x'.repeat(rng.range(1, 40_000, true)));
    case 5:
      return json('\u0000\ud800"\\'.repeat(rng.range(1, 2_000, true)));
    case 6:
      return nested(rng);
    case 7:
      return '[' + Array.from({ length: rng.range(1, 8_000, true) }, () => '0').join(',') + ']';
    default:
      return String(rng.range(0, Number.MAX_SAFE_INTEGER, true));
  }
}

/** One entry of a send's `m`: text, good or bad binary, or something else. */
function messageEntry(rng: Rng): string {
  switch (rng.int(6)) {
    case 0:
      return json(`fuzz-${rng.int(1000)}`);
    case 1:
      return json({ b: rng.bytes(rng.int(40)).toString('base64') });
    case 2:
      return rng.pick([
        '{"b":"AAA"}', // not a multiple of 4
        '{"b":"AB=="}', // not canonical
        '{"b":"A==="}',
        '{"b":"****"}',
        '{"b":""}',
        '{"b":1}',
        '{"b":null}',
        '{"b":"AAAA","c":1}',
        '{"B":"AAAA"}',
        '{}',
        '{"__proto__":{"b":"AAAA"}}',
        '{"b":"AAAA","b":"AAAA"}',
      ]);
    case 3:
      return json('m'.repeat(rng.pick([MAX_MESSAGE - 1, MAX_MESSAGE, MAX_MESSAGE + 1, 3 * MAX_MESSAGE])));
    case 4:
      return json({ b: Buffer.alloc(rng.pick([MAX_MESSAGE, MAX_MESSAGE + 1])).toString('base64') });
    default:
      return oddValue(rng);
  }
}

function messages(rng: Rng): string {
  switch (rng.int(4)) {
    case 0:
      return '[]';
    case 1:
      // Many small ones (maxBatchMessages), within the size limits.
      return '[' + Array.from({ length: rng.range(1, 5_000, true) }, () => '"x"').join(',') + ']';
    default:
      return '[' + Array.from({ length: rng.range(1, 6) }, () => messageEntry(rng)).join(',') + ']';
  }
}

function validFields(rng: Rng, endpoint: Endpoint, s: RawSession): Fields {
  const auth: Fields = [
    ['sid', json(s.sid)],
    ['token', json(s.token)],
  ];
  switch (endpoint) {
    case 'open':
      return [
        ['v', '1'],
        ['attempt', json(attemptId())],
      ];
    case 'poll': {
      const f: Fields = [...auth, ['ack', String(rng.range(0, 3))]];
      // A short hold mostly: polls that are held keep a worker for up to pollTimeoutMs.
      if (rng.chance(0.8)) f.push(['hold', String(rng.pick([0, 0, 0, 10, 50]))]);
      if (rng.chance(0.2)) f.push(['from', String(rng.range(1, 5))]);
      return f;
    }
    case 'send':
      return [...auth, ['ack', String(rng.range(0, 2))], ['seq', String(rng.range(1, 6))], ['m', messages(rng)]];
    case 'close':
      return auth;
  }
}

/** Fields dropped, retyped, duplicated or added. */
function mutateFields(rng: Rng, fields: Fields): Fields {
  const out = fields.map(([k, v]): [string, string] => [k, v]);
  for (let n = rng.range(0, 3); n > 0; n--) {
    const i = rng.int(Math.max(1, out.length));
    const field = out[i];
    switch (rng.int(5)) {
      case 0:
        if (field) out.splice(i, 1);
        break;
      case 1:
      case 2:
        if (field) field[1] = oddValue(rng);
        break;
      case 3:
        if (field) out.push([field[0], rng.chance(0.5) ? field[1] : oddValue(rng)]);
        break;
      default:
        out.push([rng.pick(['x', '__proto__', 'constructor', 'close', 'v', 'hold', 'from', '']), oddValue(rng)]);
    }
  }
  return out;
}

const encodeFields = (fields: Fields) => '{' + fields.map(([k, v]) => `${json(k)}:${v}`).join(',') + '}';

const BAD_UTF8 = [
  [0xff],
  [0xfe, 0xff],
  [0xc0, 0xaf], // overlong '/'
  [0xed, 0xa0, 0x80], // a surrogate, UTF-8-encoded
  [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
  [0x80],
  [0xe2, 0x82], // cut short
];

/** The body's bytes, sometimes spoiled: cut, invalid UTF-8, flipped bytes, a BOM, junk around it. */
function spoilBody(rng: Rng, text: string): Buffer {
  let body = Buffer.from(text, 'utf8');
  if (rng.chance(0.3)) {
    switch (rng.int(6)) {
      case 0:
        body = body.subarray(0, rng.int(body.length + 1));
        break;
      case 1: {
        const at = rng.int(body.length + 1);
        body = Buffer.concat([body.subarray(0, at), Buffer.from(rng.pick(BAD_UTF8)), body.subarray(at)]);
        break;
      }
      case 2:
        body = Buffer.from(body);
        for (let n = rng.range(1, 4); n > 0 && body.length > 0; n--) body[rng.int(body.length)] = rng.int(256);
        break;
      case 3:
        body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]);
        break;
      case 4:
        body = Buffer.concat([Buffer.from(rng.pick([' \n\t', '\r\n', '  '])), body, Buffer.from(rng.pick(['', ' ', 'x', '}', ',{}', '\u0000']))]);
        break;
      default:
        body = Buffer.alloc(0);
    }
  }
  return body.length > MAX_BODY ? body.subarray(0, MAX_BODY) : body;
}

const METHODS = ['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'FOO', 'post', 'PROPFIND', 'CONNECT'];

function path(rng: Rng, endpoint: Endpoint): string {
  const p = `${MOUNT}/${endpoint}`;
  if (rng.chance(0.75)) return p;
  return rng.pick([
    `${p}?x=1`,
    `${p}?`,
    `${p}?a=%ZZ&&b`,
    `${p}/`,
    `${p}//`,
    `${MOUNT}//${endpoint}`,
    `${MOUNT}/%6${endpoint === 'open' ? 'f' : '0'}pen`,
    `${p}%00`,
    `${p}%2F`,
    `${MOUNT}/../${MOUNT.slice(1)}/${endpoint}`,
    `${MOUNT}/./${endpoint}`,
    `${MOUNT}X/${endpoint}`,
    MOUNT,
    `${MOUNT}/`,
    '/',
    `${p};x`,
    `${p}#frag`,
    `${MOUNT}/${endpoint.toUpperCase()}`,
    `${MOUNT}/nope`,
    `${MOUNT}/${'a'.repeat(rng.range(100, 6_000, true))}`,
    '*',
    `http://127.0.0.1${p}`,
    `${MOUNT}/é${endpoint}`,
  ]);
}

function origin(rng: Rng, port: number): string | undefined {
  // Mostly none: a refused Origin is answered before anything else is looked at.
  if (rng.chance(0.82)) return undefined;
  if (rng.chance(0.4)) return rng.pick([ALLOWED_ORIGIN, `http://127.0.0.1:${port}`]);
  return rng.pick([
    ALLOWED_ORIGIN,
    `http://127.0.0.1:${port}`,
    'null',
    'http://evil.example',
    '',
    'http://[::1',
    'file://',
    'http://allowed.example.evil',
    `http://${'a'.repeat(4_000)}.example`,
    'HTTP://ALLOWED.EXAMPLE',
  ]);
}

function contentType(rng: Rng): string | undefined {
  if (rng.chance(0.7)) return 'text/plain;charset=UTF-8';
  const t = rng.pick([
    'none',
    'text/plain',
    'TEXT/PLAIN',
    'text/plain; charset=latin1',
    'text/plainx',
    'text/plain ;',
    'application/json',
    'multipart/form-data; boundary=x',
    '',
    'text/plain\u0001',
    'text/html',
  ]);
  return t === 'none' ? undefined : t;
}

interface Built {
  input: RawInput;
  endpoint: Endpoint;
  slot: number;
}

/** One HTTP request, its head and body as the input says (Content-Length lies, chunked, duplicate headers). */
function request(method: string, target: string, headers: Array<[string, string]>, body: Buffer, framing: string, eol = '\r\n'): Buffer {
  const lines = [`${method} ${target} HTTP/1.1`, ...headers.map(([k, v]) => `${k}: ${v}`)];
  let payload = body;
  switch (framing) {
    case 'length':
      lines.push(`Content-Length: ${body.length}`);
      break;
    case 'shorter':
      lines.push(`Content-Length: ${Math.max(0, body.length - 1 - (body.length >> 2))}`);
      break;
    case 'longer':
      lines.push(`Content-Length: ${body.length + 1 + (body.length >> 3)}`);
      break;
    case 'chunked': {
      lines.push('Transfer-Encoding: chunked');
      payload = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
      break;
    }
    case 'both':
      lines.push(`Content-Length: ${body.length}`, 'Transfer-Encoding: chunked');
      payload = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
      break;
    case 'twice':
      lines.push(`Content-Length: ${body.length}`, `Content-Length: ${body.length + 1}`);
      break;
    case 'nonsense':
      lines.push(`Content-Length: ${['abc', '-1', '+5', '1e3', ' ', '99999999999999999999', '0x10'][body.length % 7] ?? ''}`);
      break;
    case 'none':
      break;
  }
  return Buffer.concat([Buffer.from(lines.join(eol) + eol + eol, 'latin1'), payload]);
}

class Inputs {
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
   * finishes (see the test "pipelined polls" below).
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

// ---- the run ----

interface Failure {
  label: string;
  problem: string;
  bytes: string;
}

/** The start of an input's bytes, printable. */
function preview(input: RawInput): string {
  const all = Buffer.concat(input.pieces);
  const text = JSON.stringify(all.subarray(0, 600).toString('latin1'));
  return all.length > 600 ? `${text}... (${all.length} bytes)` : text;
}

describe('HTTP fuzzer against a real HoldlineServer', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  let h: StartedServer;
  let target: Target;
  const processErrors: string[] = [];
  const serverErrors: unknown[] = [];
  let healthySid: string | undefined;

  before(async () => {
    const onUncaught = (e: unknown) => processErrors.push(`uncaughtException: ${String(e)}`);
    const onRejection = (e: unknown) => processErrors.push(`unhandledRejection: ${String(e)}`);
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onRejection);
    cleanup.add(() => {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onRejection);
    });
    h = await startServer({
      maxMessageBytes: MAX_MESSAGE,
      maxBatchBytes: MAX_BATCH,
      maxSessions: 2_000,
      pollTimeoutMs: 1_000,
      sessionIdleTimeoutMs: 20_000,
      allowedOrigins: [ALLOWED_ORIGIN],
      trustProxy: true,
    });
    cleanup.add(() => h.close());
    target = targetOf(h.url);
    h.hl.on('error', (e) => serverErrors.push(e));
    // Every session echoes what it gets; fuzz sessions never ack, so their echoes may be refused: that is fine.
    h.hl.on('session', (s: Session) => {
      s.on('message', (d) => {
        s.send(d).catch((e: unknown) => {
          if (s.id === healthySid) serverErrors.push(e);
        });
      });
    });
  });

  it(`survives ${INPUTS} inputs (seed ${SEED}); a healthy session keeps echoing throughout`, async () => {
    // The healthy session: an echo every 20 ms for the whole run.
    const client = new HoldlineClient(h.url, { reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
    cleanup.add(() => client.close());
    const clientEvents: string[] = [];
    const sentAt = new Map<string, number>();
    const echoes: string[] = [];
    const latencies: number[] = [];
    const arrived = new Condition();
    client.on('message', (d) => {
      const text = typeof d === 'string' ? d : `binary ${d.byteLength}`;
      echoes.push(text);
      const t = sentAt.get(text);
      if (t !== undefined) latencies.push(performance.now() - t);
      arrived.notify();
    });
    client.on('error', (e: HoldlineError) => clientEvents.push(`error ${e.code}: ${e.message}`));
    client.on('reset', (e) => clientEvents.push(`reset ${e.reason.code}`));
    client.on('close', (r) => clientEvents.push(`close ${r.code}`));
    await client.connect();
    healthySid = client.sessionId;
    assert.ok(healthySid !== undefined);

    let echoing = true;
    const sent: string[] = [];
    const echoLoop = (async () => {
      for (let i = 0; echoing; i++) {
        const text = `echo-${i}`;
        sentAt.set(text, performance.now());
        sent.push(text);
        await client.send(text);
        await sleep(20);
      }
    })();
    // Stopped before the client closes (cleanups run last-in first-out), whatever happens meanwhile.
    cleanup.add(async () => {
      echoing = false;
      await echoLoop.catch((e: unknown) => clientEvents.push(`echo loop: ${String(e)}`));
    });

    // Fuzz sessions to aim envelopes at, reopened when an input closes or loses one; one slot holds the healthy sid with a wrong token.
    const sessions: RawSession[] = [];
    for (let i = 0; i < 12; i++) sessions.push(await openRaw(h.url));
    sessions.push({ sid: healthySid, token: 'not-the-token' });
    const reopening = new Set<number>();
    const reopen = (slot: number) => {
      if (reopening.has(slot) || slot >= 12) return;
      reopening.add(slot);
      openRaw(h.url)
        .then((s) => {
          sessions[slot] = s;
        })
        .catch(() => undefined) // at maxSessions (503) the old credentials stay: they get 404/410
        .finally(() => reopening.delete(slot));
    };

    const inputs = new Inputs(target.port, () => sessions);
    const histogram = new Map<string, number>();
    const count = (k: string) => histogram.set(k, (histogram.get(k) ?? 0) + 1);
    /** Holdline's error codes among the answers. */
    const codes = new Map<string, number>();
    const failures: Failure[] = [];
    const started = performance.now();
    let next = 0;
    let tried = 0;

    const check = (built: Built, r: ExchangeResult) => {
      const { input } = built;
      const fail = (problem: string) => {
        failures.push({ label: input.label, problem, bytes: preview(input) });
        // HOLDLINE_FUZZ_DUMP=<dir>: every failing input's bytes, whole, for a reproducer.
        const dir = process.env.HOLDLINE_FUZZ_DUMP;
        if (dir) writeFileSync(join(dir, `fuzz-${SEED}-${input.label.split(' ')[0]?.slice(1) ?? 'x'}.bin`), Buffer.concat(input.pieces));
      };
      if (r.hung) fail(`no answer and no close within ${DEADLINE_MS} ms (${r.responses.length}/${input.expect} answers)`);
      if (r.responses.length === 0) count(input.after === 'destroy' ? 'reset by us' : r.closed ? 'closed' : 'none');
      for (const res of r.responses) {
        count(String(res.status));
        if (res.status >= 500 && res.status !== 503) fail(`status ${res.status}: ${res.body.toString('utf8').slice(0, 300)}`);
        if (/^application\/json/.test(res.headers.get('content-type') ?? '') && res.method !== 'HEAD') {
          try {
            const o = JSON.parse(res.body.toString('utf8')) as { error?: { code?: unknown; message?: unknown } };
            if (typeof o.error?.code !== 'string' || typeof o.error.message !== 'string') fail(`error body without code/message: ${res.body.toString('utf8').slice(0, 200)}`);
          } catch {
            fail(`error body is not JSON: ${res.body.toString('utf8').slice(0, 200)}`);
          }
        }
        const body = res.body.toString('utf8');
        const code = /"error":\{"code":"([a-z_]+)"/.exec(body)?.[1];
        if (code !== undefined) codes.set(code, (codes.get(code) ?? 0) + 1);
        if (/"session_unknown"|"session_closed"|"code":"(client_closed|idle_timeout)"/.test(body)) reopen(built.slot);
      }
      if (r.garbage) fail('a response that does not parse as HTTP/1.1');
    };

    const worker = async () => {
      while (next < INPUTS && performance.now() - started < BUDGET_MS) {
        const built = inputs.build(next++);
        const r = await exchange(target, built.input, DEADLINE_MS);
        tried++;
        check(built, r);
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, () => worker()));
    const fuzzMs = performance.now() - started;

    // The healthy session: every echo back, in order.
    echoing = false;
    await echoLoop;
    assert.equal(h.hl.session(healthySid)?.id, healthySid, 'the healthy session is still open');
    await arrived.until(() => echoes.length >= sent.length, 10_000, () => `all ${sent.length} echoes (got ${echoes.length})`);
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);

    // The server still opens sessions afterwards.
    await openRaw(h.url);

    const statuses = [...histogram.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}:${v}`).join(' ');
    console.log(
      `http fuzz: seed ${SEED}, ${tried} inputs in ${(fuzzMs / 1000).toFixed(1)} s; statuses ${statuses}; ` +
        `failures ${failures.length}; crashes ${processErrors.length}; server errors ${serverErrors.length}; ` +
        `healthy echoes ${echoes.length}/${sent.length}, p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`,
    );
    console.log(`http fuzz error codes: ${[...codes.entries()].sort(([, a], [, b]) => b - a).map(([k, v]) => `${k}:${v}`).join(' ')}`);
    for (const f of failures.slice(0, 20)) console.log(`  FAIL ${f.label}: ${f.problem}\n    input: ${f.bytes}`);

    assert.deepEqual(processErrors, [], 'nothing thrown or rejected unhandled in the process');
    assert.deepEqual(serverErrors.map(String), [], 'the server reported no error');
    assert.deepEqual(failures, [], 'no 5xx but 503, no hang, no malformed answer');
    assert.deepEqual(echoes, sent, 'every echo of the healthy session came back, once, in order');
    assert.deepEqual(clientEvents, [], 'the healthy session saw no error, reset or close');
    assert.ok(tried >= Math.min(INPUTS, 500), `a real run: ${tried} inputs`);
  });

  // Found by this fuzzer (seed 2, input #578): HttpHandler.gone() took a pipelined response with no socket yet for a client gone.
  it(
    'pipelined polls: a poll queued behind a held poll on the same connection is answered',
    async () => {
      const a = await openRaw(h.url);
      const b = await openRaw(h.url);
      const poll = (s: RawSession, hold?: number) => {
        const body = JSON.stringify(hold === undefined ? { sid: s.sid, token: s.token, ack: 0 } : { sid: s.sid, token: s.token, ack: 0, hold });
        return `POST ${MOUNT}/poll HTTP/1.1\r\nHost: 127.0.0.1:${target.port}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
      };
      // A's poll is held (up to pollTimeoutMs, 1 s); B's, behind it on the same connection, asks for no hold.
      const input: RawInput = { label: 'held poll A, then poll B hold 0', pieces: [Buffer.from(poll(a) + poll(b, 0))], after: 'keep', expect: 2, methods: ['POST', 'POST'] };
      const r = await exchange(target, input, 3_000);
      assert.deepEqual(
        { hung: r.hung, statuses: r.responses.map((res) => res.status) },
        { hung: false, statuses: [200, 200] },
        'both polls answered within 3 s',
      );
    },
  );
});
