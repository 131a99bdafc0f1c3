/**
 * The HTTP fuzzer's requests around a body: methods other than POST, paths
 * below and beside the mount (query strings, encoded characters, dot
 * segments, very long ones), Origins allowed and not, content types, and
 * the request's bytes on the wire (request()): the head as given, with a
 * Content-Length that is right, short, long, doubled or nonsense, chunked,
 * or both Content-Length and chunked, or neither.
 */
import type { Rng } from '../helpers/fuzz.js';
import type { Endpoint } from './envelopes.js';
import { ALLOWED_ORIGIN, MOUNT } from './helpers.js';

export const METHODS = ['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'FOO', 'post', 'PROPFIND', 'CONNECT'];

export function path(rng: Rng, endpoint: Endpoint): string {
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

export function origin(rng: Rng, port: number): string | undefined {
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

export function contentType(rng: Rng): string | undefined {
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

/** One HTTP request, its head and body as the input says (Content-Length lies, chunked, duplicate headers). */
export function request(method: string, target: string, headers: Array<[string, string]>, body: Buffer, framing: string, eol = '\r\n'): Buffer {
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
