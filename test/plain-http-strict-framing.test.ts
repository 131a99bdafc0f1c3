/**
 * Core v2: plain http goes through undici (client/node/requester.ts), whose
 * parser (llhttp) rejects the framing the old hand-written HTTP/1.1 client
 * accepted: both Content-Length and Transfer-Encoding: chunked (that client
 * then reused the connection), bare LF line endings, and a CR or a NUL byte
 * inside a header value.
 *
 * A raw `net` front on 127.0.0.1 passes each request to a real HoldlineServer
 * (node:http, plain http whatever the test mode) and writes the real answer
 * back, its status, headers and body unchanged, with one framing fault. The
 * client must not take such an answer: each /open fails as network_error,
 * caused by undici's parser error (named, with its reason), is not sent again
 * at once, and connect() gives up with `timeout` after connectTimeoutMs. The
 * same front with clean framing opens a session and echoes a message on kept
 * connections. A parser that accepted any of these answers, or a client that
 * no longer parsed plain http with undici, fails here.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { errors } from 'undici';
import { HoldlineClient } from '../client/index.js';
import { HoldlineServer } from '../server/index.js';
import type { Payload } from '../shared/index.js';
import { Cleanup, closeHttpServer, listen, nextMessage, withTimeout } from './helpers/server.js';

/** The real server's answer, without its framing headers. */
interface Answer {
  status: number;
  reason: string;
  /** Name and value, as the server wrote them; no Content-Length, Transfer-Encoding, Connection or Keep-Alive. */
  headers: Array<[string, string]>;
  body: Buffer;
}

/** Writes an answer on the wire. */
type Framing = (a: Answer) => Buffer;

const FRAMING_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive']);

/** The head: status line, `lines`, the empty line, each ended by `eol`. */
function head(a: Answer, lines: readonly string[], eol = '\r\n'): string {
  return `HTTP/1.1 ${a.status} ${a.reason}${eol}${lines.map((l) => l + eol).join('')}${eol}`;
}

function lines(a: Answer): string[] {
  return a.headers.map(([n, v]) => `${n}: ${v}`);
}

function chunked(body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
}

const clean: Framing = (a) => Buffer.concat([Buffer.from(head(a, [...lines(a), `Content-Length: ${a.body.length}`, 'Connection: keep-alive'])), a.body]);

/** A request read off the front's socket. */
interface Incoming {
  method: string;
  path: string;
  contentType: string | undefined;
  body: Buffer;
}

/** The first whole request in `buf`, and the bytes after it; undefined while it is incomplete. */
function takeRequest(buf: Buffer): { req: Incoming; rest: Buffer } | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const [requestLine = '', ...fields] = buf.subarray(0, end).toString('latin1').split('\r\n');
  const [method = '', path = ''] = requestLine.split(' ');
  const header = (name: string) => fields.find((f) => f.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim();
  const length = Number(header('content-length') ?? 0);
  if (buf.length < end + 4 + length) return undefined;
  const body = buf.subarray(end + 4, end + 4 + length);
  return { req: { method, path, contentType: header('content-type'), body }, rest: buf.subarray(end + 4 + length) };
}

interface Front {
  /** Base URL of the Holdline endpoints through the front. */
  url: string;
  /** Each request passed through, as `<path> <status>` (the real server's answer, before the framing). */
  answered: string[];
  /** Connections the client opened to the front. */
  connections(): number;
}

/** A real HoldlineServer that echoes every message, and the front that writes its answers with `framing`. */
async function startFront(t: TestContext, framing: Framing): Promise<Front> {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const hl = new HoldlineServer();
  hl.on('session', (s) => s.on('message', (d: Payload) => void s.send(d).catch(() => {})));
  const real = http.createServer();
  hl.attach(real, { path: '/holdline' });
  const origin = new URL(await listen(real));
  cleanup.add(async () => {
    await hl.close();
    await closeHttpServer(real);
  });
  const agent = new http.Agent({ keepAlive: true });
  cleanup.add(() => agent.destroy());

  const forward = (r: Incoming, onOutgoing: (o: http.ClientRequest) => void) =>
    new Promise<Answer>((resolve, reject) => {
      const headers = r.contentType === undefined ? {} : { 'content-type': r.contentType };
      const out = http.request({ host: origin.hostname, port: origin.port, method: r.method, path: r.path, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const raw = res.rawHeaders;
          const kept: Array<[string, string]> = [];
          for (let i = 0; i + 1 < raw.length; i += 2) {
            const [n = '', v = ''] = [raw[i], raw[i + 1]];
            if (!FRAMING_HEADERS.has(n.toLowerCase())) kept.push([n, v]);
          }
          resolve({ status: res.statusCode ?? 0, reason: res.statusMessage ?? '', headers: kept, body: Buffer.concat(chunks) });
        });
      });
      out.on('error', reject);
      onOutgoing(out);
      out.end(r.body);
    });

  const answered: string[] = [];
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const front = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    let buf: Buffer = Buffer.alloc(0);
    let busy = false;
    let outgoing: http.ClientRequest | undefined;
    // One request at a time, as undici sends them on a connection (no pipelining).
    const pump = (): void => {
      const taken = busy ? undefined : takeRequest(buf);
      if (!taken) return;
      buf = taken.rest;
      busy = true;
      forward(taken.req, (o) => (outgoing = o)).then(
        (a) => {
          answered.push(`${taken.req.path.replace(/^\/holdline/, '')} ${a.status}`);
          if (socket.destroyed) return;
          socket.write(framing(a));
          busy = false;
          pump();
        },
        () => socket.destroy(),
      );
    };
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      pump();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      outgoing?.destroy(); // a held poll the client gave up
    });
  });
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(0, '127.0.0.1', () => resolve());
  });
  cleanup.add(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        front.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(front.address() as AddressInfo).port}/holdline`, answered, connections: () => connections };
}

const CONNECT_TIMEOUT_MS = 1_000;

/** A polling-only client of `url` (the front speaks no WebSocket), closed when the test ends. */
function clientOf(t: TestContext, url: string) {
  const client = new HoldlineClient(url, { transports: ['polling'], connectTimeoutMs: CONNECT_TIMEOUT_MS, reconnect: { minDelayMs: 100, maxDelayMs: 200 } });
  t.after(() => client.close());
  const reconnecting: Error[] = [];
  const errors: string[] = [];
  client.on('reconnecting', (e) => reconnecting.push(e.error));
  client.on('error', (e) => errors.push(e.code));
  return { client, reconnecting, errors };
}

interface Rejected {
  /** What undici fails the request with. */
  cause: new (...args: never[]) => Error;
  message: string;
}

const PARSER = (reason: string): Rejected => ({ cause: errors.HTTPParserError, message: `Response does not match the HTTP/1.1 protocol (${reason})` });

const CASES: Array<{ name: string; framing: Framing; rejected: Rejected }> = [
  {
    name: 'Content-Length, then Transfer-Encoding: chunked',
    framing: (a) => Buffer.concat([Buffer.from(head(a, [...lines(a), `Content-Length: ${a.body.length}`, 'Transfer-Encoding: chunked'])), chunked(a.body)]),
    // llhttp refuses the pair; undici names it by the Content-Length it had seen (Parser.createError).
    rejected: { cause: errors.ResponseContentLengthMismatchError, message: 'Response body length does not match content-length header' },
  },
  {
    name: 'Transfer-Encoding: chunked, then Content-Length',
    framing: (a) => Buffer.concat([Buffer.from(head(a, [...lines(a), 'Transfer-Encoding: chunked', `Content-Length: ${a.body.length}`])), chunked(a.body)]),
    rejected: PARSER("Content-Length can't be present with Transfer-Encoding"),
  },
  {
    name: 'bare LF line endings in the head',
    framing: (a) => Buffer.concat([Buffer.from(head(a, [...lines(a), `Content-Length: ${a.body.length}`], '\n')), a.body]),
    rejected: PARSER('Missing expected CR after response line'),
  },
  {
    name: 'a CR inside a header value',
    framing: (a) => Buffer.concat([Buffer.from(head(a, ['X-Holdline-Test: before\rafter', ...lines(a), `Content-Length: ${a.body.length}`])), a.body]),
    rejected: PARSER('Missing expected LF after header value'),
  },
  {
    name: 'a NUL byte inside a header value',
    framing: (a) => Buffer.concat([Buffer.from(head(a, ['X-Holdline-Test: before\0after', ...lines(a), `Content-Length: ${a.body.length}`])), a.body]),
    rejected: PARSER('Invalid header value char'),
  },
];

for (const { name, framing, rejected } of CASES) {
  test(`plain http: a Holdline answer framed with ${name} is refused (network_error from undici's parser), and connect() times out`, { timeout: 20_000 }, async (t) => {
    const front = await startFront(t, framing);
    const { client, reconnecting, errors: errorCodes } = clientOf(t, front.url);
    const started = performance.now();
    await assert.rejects(withTimeout(client.connect(), 10_000, 'connect() to settle'), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'timeout', e.message);
      assert.ok(e.message.includes(`(last error: network_error: POST ${front.url}/open failed: ${rejected.message})`), e.message);
      return true;
    });
    t.diagnostic(`connect() rejected after ${Math.round(performance.now() - started)} ms, ${reconnecting.length} reconnecting`);
    assert.equal(client.state, 'closed');
    assert.deepEqual(errorCodes, ['timeout']);
    // Every try was refused the same way, for the framing: the server had granted it (200).
    assert.ok(reconnecting.length >= 1, 'at least one open was refused and tried again');
    for (const e of reconnecting) {
      assert.equal((e as Error & { code?: string }).code, 'network_error', e.message);
      assert.equal(e.message, `POST ${front.url}/open failed: ${rejected.message}`);
      assert.ok(e.cause instanceof rejected.cause, `caused by undici's ${rejected.cause.name}: ${String(e.cause)}`);
    }
    // One request per try (a refused answer is not sent again at once), each on a connection of its own (never reused after it).
    assert.deepEqual(front.answered, Array.from({ length: reconnecting.length + 1 }, () => '/open 200'));
    assert.equal(front.connections(), front.answered.length);
  });
}

test('plain http: the same front with clean framing opens a session and echoes a message, on kept connections', { timeout: 20_000 }, async (t) => {
  const front = await startFront(t, clean);
  const { client, reconnecting, errors: errorCodes } = clientOf(t, front.url);
  await withTimeout(client.connect(), 10_000, 'connect()');
  const echo = nextMessage(client, 10_000);
  await withTimeout(client.send('ping'), 10_000, 'send()');
  assert.equal(await echo, 'ping');
  assert.equal(client.state, 'open');
  assert.deepEqual(reconnecting, []);
  assert.deepEqual(errorCodes, []);
  assert.ok(front.answered.includes('/open 200') && front.answered.includes('/send 200'), front.answered.join(', '));
  assert.ok(front.connections() < front.answered.length, `connections kept: ${front.connections()} for ${front.answered.length} answers`);
});
