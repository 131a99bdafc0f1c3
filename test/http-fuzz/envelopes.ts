/**
 * The HTTP fuzzer's request bodies: envelopes for the four endpoints, built
 * valid for a live session (validFields), then with fields dropped,
 * retyped, duplicated or added (mutateFields) and values no field expects:
 * out of range, NaN-ish, huge, nested a few thousand deep, very long, not JSON
 * at all (oddValue); a send's messages good and bad (text, binary tags, sizes
 * around maxMessageBytes, thousands of small ones). The bytes are then
 * sometimes spoiled (spoilBody): cut short, invalid UTF-8, flipped bytes, a
 * BOM, junk around them; never past 64 KB.
 */
import type { Rng } from '../helpers/fuzz.js';
import { attemptId, type RawSession } from '../helpers/server.js';
import { MAX_BODY, MAX_MESSAGE } from './helpers.js';

export type Endpoint = 'open' | 'poll' | 'send' | 'close';
export const ENDPOINTS: readonly Endpoint[] = ['open', 'poll', 'send', 'close'];

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
export function oddValue(rng: Rng): string {
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

export function validFields(rng: Rng, endpoint: Endpoint, s: RawSession): Fields {
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
export function mutateFields(rng: Rng, fields: Fields): Fields {
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

export const encodeFields = (fields: Fields) => '{' + fields.map(([k, v]) => `${json(k)}:${v}`).join(',') + '}';

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
export function spoilBody(rng: Rng, text: string): Buffer {
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
