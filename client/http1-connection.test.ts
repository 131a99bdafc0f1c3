/**
 * Http1Connection against a raw TCP server on 127.0.0.1 that writes
 * answers byte by byte as each test scripts them: framing (Content-Length,
 * chunked, close-delimited), interim answers, keep-alive and its end, abort,
 * and answers it must refuse.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { Http1Connection, type Headers, type Http1Controller } from './http1-connection.js';

interface Received {
  /** The request head and body as the server read them. */
  raw: string;
  socket: net.Socket;
  connection: number;
}

/** A TCP server that hands each complete request (Content-Length framed) to `answer`. */
async function rawServer(t: TestContext, answer: (r: Received) => void): Promise<{ origin: string; connections: () => number }> {
  let connections = 0;
  const server = net.createServer((socket) => {
    const id = ++connections;
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const headEnd = buf.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const length = Number(/content-length: (\d+)/i.exec(buf.slice(0, headEnd))?.[1] ?? 0);
        if (buf.length < headEnd + 4 + length) return;
        const raw = buf.slice(0, headEnd + 4 + length);
        buf = buf.slice(raw.length);
        answer({ raw, socket, connection: id });
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections };
}

interface Outcome {
  status: number;
  headers: Headers;
  body: string;
}

function post(conn: Http1Connection, body = 'hello', reset = false): { done: Promise<Outcome>; controller: () => Http1Controller } {
  let controller: Http1Controller | undefined;
  const done = new Promise<Outcome>((resolve, reject) => {
    let status = 0;
    let headers: Headers = {};
    const chunks: Buffer[] = [];
    conn.dispatch(
      { method: 'POST', path: '/x', body, headers: ['content-type', 'text/plain'], reset },
      {
        onRequestStart: (c) => (controller = c),
        onResponseStart: (_c, s, h) => {
          status = s;
          headers = h;
        },
        onResponseData: (_c, chunk) => void chunks.push(chunk),
        onResponseEnd: () => resolve({ status, headers, body: Buffer.concat(chunks).toString('utf8') }),
        onResponseError: (_c, err) => reject(err),
      },
    );
  });
  return { done, controller: () => controller as Http1Controller };
}

/** Write `text` one byte at a time (every split a parser must survive). */
async function dribble(socket: net.Socket, text: string): Promise<void> {
  for (const b of Buffer.from(text, 'latin1')) {
    socket.write(Buffer.from([b]));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('Http1Connection', () => {
  it('sends one request with host, its headers and Content-Length, and reads a Content-Length answer', async (t) => {
    let seen = '';
    const srv = await rawServer(t, (r) => {
      seen = r.raw;
      r.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Two: a\r\nx-two: b\r\n\r\nworld');
    });
    const conn = new Http1Connection(srv.origin, { keepAliveTimeoutMs: 4_000 });
    t.after(() => conn.destroy());
    const res = await post(conn, 'héllo').done;
    assert.deepEqual(res, { status: 200, headers: { 'content-length': '5', 'x-two': ['a', 'b'] }, body: 'world' });
    const host = srv.origin.slice('http://'.length);
    // Keep-alive is HTTP/1.1's default: no Connection header (a server holding a poll holds each of its header lines).
    assert.equal(seen, `POST /x HTTP/1.1\r\nhost: ${host}\r\ncontent-type: text/plain\r\ncontent-length: 6\r\n\r\n${Buffer.from('héllo').toString('latin1')}`);
  });

  it('reads answers split at every byte: Content-Length, chunked with extensions and trailers, after a 100 Continue', async (t) => {
    const answers = [
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc',
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n',
      'HTTP/1.1 204 No Content\r\n\r\n',
    ];
    let n = 0;
    const srv = await rawServer(t, (r) => void dribble(r.socket, answers[n++]));
    const conn = new Http1Connection(srv.origin, { keepAliveTimeoutMs: 4_000 });
    t.after(() => conn.destroy());
    assert.equal((await post(conn).done).body, 'abc');
    const chunked = await post(conn).done;
    assert.equal(chunked.status, 201);
    assert.equal(chunked.body, 'wikipedia');
    assert.equal((await post(conn).done).status, 204);
    assert.equal(srv.connections(), 1, 'all three on one kept-alive connection');
  });

  it('reads a chunked answer of many small chunks, whose size lines add up to more than a head may hold', async (t) => {
    const chunks = 20_000; // 20,000 size lines and CRLFs: about 100 KB of framing
    const srv = await rawServer(t, (r) => {
      let body = '';
      for (let i = 0; i < chunks; i++) body += `1\r\n${String.fromCharCode(97 + (i % 26))}\r\n`;
      r.socket.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${body}0\r\n\r\n`);
    });
    const conn = new Http1Connection(srv.origin, { keepAliveTimeoutMs: 4_000 });
    t.after(() => conn.destroy());
    const res = await post(conn).done;
    assert.equal(res.body.length, chunks);
    assert.equal(res.body.slice(0, 3), 'abc');
  });

  it('queues requests one at a time on one connection, in order', async (t) => {
    const order: string[] = [];
    const srv = await rawServer(t, (r) => {
      const body = r.raw.slice(r.raw.indexOf('\r\n\r\n') + 4);
      order.push(body);
      setTimeout(() => r.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`), 5);
    });
    const conn = new Http1Connection(srv.origin, { keepAliveTimeoutMs: 4_000 });
    t.after(() => conn.destroy());
    const got = await Promise.all(['one', 'two', 'three'].map((b) => post(conn, b).done));
    assert.deepEqual(got.map((g) => g.body), ['one', 'two', 'three']);
    assert.deepEqual(order, ['one', 'two', 'three']);
    assert.equal(srv.connections(), 1);
  });

  it('reads a close-delimited answer, and opens a new connection after Connection: close, HTTP/1.0 or reset', async (t) => {
    const answers = [
      'HTTP/1.1 200 OK\r\n\r\nuntil the end',
      'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok',
      'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok',
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
    ];
    let n = 0;
    const closeAsked: boolean[] = [];
    const srv = await rawServer(t, (r) => {
      closeAsked.push(/\r\nconnection: close\r\n/i.test(r.raw));
      const a = answers[n++];
      r.socket.write(a);
      if (n === 1) r.socket.end();
    });
    const conn = new Http1Connection(srv.origin, { keepAliveTimeoutMs: 4_000 });
    t.after(() => conn.destroy());
    assert.equal((await post(conn).done).body, 'until the end');
    assert.equal((await post(conn).done).body, 'ok');
    assert.equal((await post(conn).done).body, 'ok');
    assert.equal((await post(conn, 'x', true).done).body, 'ok');
    assert.equal((await post(conn).done).body, 'ok');
    assert.equal(srv.connections(), 5, 'each answer above ended its connection');
    assert.deepEqual(closeAsked, [false, false, false, true, false], 'reset asks the server to close');
  });

  it('closes an idle connection after keepAliveTimeoutMs and reconnects for the next request', async (t) => {
    const closed: number[] = [];
    const srv = await rawServer(t, (r) => {
      r.socket.once('close', () => closed.push(r.connection));
      r.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    });
    const conn = new Http1Connection(srv.origin, { keepAliveTimeoutMs: 50 });
    t.after(() => conn.destroy());
    await post(conn).done;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(closed, [1], 'the idle connection was closed by the client');
    await post(conn).done;
    assert.equal(srv.connections(), 2);
  });

  it('fails the request in flight, and only it, when the server closes mid-answer or sends garbage', async (t) => {
    const answers = [
      (s: net.Socket) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort'),
      (s: net.Socket) => s.write('SMTP ready\r\n'),
      (s: net.Socket) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nx'),
      (s: net.Socket) => s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'),
      (s: net.Socket) => s.write(`HTTP/1.1 200 OK\r\nX-Big: ${'x'.repeat(70 * 1024)}\r\n\r\n`),
      (s: net.Socket) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nfine'),
      (s: net.Socket) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'),
    ];
    let n = 0;
    const srv = await rawServer(t, (r) => answers[n++](r.socket));
    const conn = new Http1Connection(srv.origin, { keepAliveTimeoutMs: 4_000 });
    t.after(() => conn.destroy());
    await assert.rejects(post(conn).done, /closed the connection before the answer was complete/);
    await assert.rejects(post(conn).done, /not an HTTP\/1\.x status line/);
    await assert.rejects(post(conn).done, /bad content-length/);
    await assert.rejects(post(conn).done, /bad chunk size/);
    await assert.rejects(post(conn).done, /head is over 64 KiB/);
    // Bytes past the answer: the answer stands, the connection is not used again.
    assert.equal((await post(conn).done).body, 'fi');
    assert.equal((await post(conn).done).body, 'ok');
    assert.equal(srv.connections(), 7);
  });

  it('abort() ends a held request by closing its connection; a queued one just leaves the queue', async (t) => {
    const held: net.Socket[] = [];
    const srv = await rawServer(t, (r) => {
      if (r.connection === 1) held.push(r.socket); // never answered
      else r.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext');
    });
    const conn = new Http1Connection(srv.origin, { keepAliveTimeoutMs: 4_000 });
    t.after(() => conn.destroy());
    const first = post(conn);
    const queued = post(conn, 'never sent');
    const third = post(conn, 'third');
    let firstSettled = false;
    void first.done.then(
      () => (firstSettled = true),
      () => (firstSettled = true),
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(held.length, 1);
    const closedByClient = new Promise((resolve) => held[0].once('close', resolve));
    queued.controller().abort(new Error('not wanted'));
    first.controller().abort(new Error('deadline'));
    await closedByClient;
    // An aborted request is reported by whoever aborted it, not by the connection.
    assert.equal(firstSettled, false);
    assert.equal((await third.done).body, 'next');
    assert.equal(srv.connections(), 2);
  });

  it('fails at once when nothing listens, with the socket error', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const conn = new Http1Connection(`http://127.0.0.1:${port}`, { keepAliveTimeoutMs: 4_000 });
    await assert.rejects(post(conn).done, /ECONNREFUSED/);
    await conn.destroy();
    await assert.rejects(post(conn).done, /closed/);
  });

  it('refuses https origins (those go through undici)', () => {
    assert.throws(() => new Http1Connection('https://example.test', { keepAliveTimeoutMs: 1 }), /plain http only/);
  });
});
