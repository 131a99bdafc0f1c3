/**
 * FaultProxy, tested against a plain node:http server and node:http clients
 * (an implementation independent of Holdline). Everything is on loopback,
 * port 0, bounded in count and time, and closed in `t.after`.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { FaultProxy, startFaultProxy, type FaultDecision, type FaultKind, type FaultProxyOptions } from './helpers/fault-proxy.js';

const REQUEST_TIMEOUT_MS = 5000;

/** Deterministic body bytes, different per (size, salt). */
function pattern(size: number, salt: number): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + salt * 7 + (i >>> 8)) & 0xff;
  return bytes;
}

/**
 * The target: GET/HEAD /bytes?n=&i= (Content-Length), /chunked?n=&i= (chunked,
 * 10 000-byte chunks), /status?code=, and POST /echo (echoes the body).
 */
async function startTarget(t: TestContext): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://target');
    const n = Number(url.searchParams.get('n') ?? 0);
    const salt = Number(url.searchParams.get('i') ?? 0);
    if (url.pathname === '/bytes') {
      res.writeHead(200, { 'content-length': n });
      res.end(pattern(n, salt));
    } else if (url.pathname === '/chunked') {
      const body = pattern(n, salt);
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      for (let at = 0; at < n; at += 10_000) res.write(body.subarray(at, at + 10_000));
      res.end();
    } else if (url.pathname === '/status') {
      res.writeHead(Number(url.searchParams.get('code'))).end();
    } else if (url.pathname === '/echo') {
      const parts: Buffer[] = [];
      req.on('data', (part: Buffer) => parts.push(part));
      req.on('end', () => {
        const body = Buffer.concat(parts);
        res.writeHead(200, { 'content-length': body.length }).end(body);
      });
    } else {
      res.writeHead(404).end();
    }
  });
  server.keepAliveTimeout = 30_000;
  t.after(() => closeServer(server));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function closeServer(server: http.Server | net.Server): Promise<void> {
  if (server instanceof http.Server) server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function portOf(server: net.Server): number {
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

async function proxyTo(t: TestContext, server: net.Server, options: Omit<FaultProxyOptions, 'target'> = {}): Promise<FaultProxy> {
  const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: portOf(server) }, ...options });
  t.after(() => proxy.close());
  return proxy;
}

function keepAliveAgent(t: TestContext, maxSockets: number): http.Agent {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  t.after(() => agent.destroy());
  return agent;
}

interface Outcome {
  /** A complete response arrived (all body bytes, then `end`). */
  ok: boolean;
  status: number;
  body: Buffer;
  error: string | undefined;
  socket: net.Socket | undefined;
  ms: number;
}

interface SendOptions {
  method?: string;
  body?: Buffer;
  /** Send the body with Transfer-Encoding: chunked. */
  chunkedBody?: boolean;
}

/** One request, never rejects, never outlives REQUEST_TIMEOUT_MS. */
function send(port: number, agent: http.Agent | false, path: string, options: SendOptions = {}): Promise<Outcome> {
  const { method = options.body ? 'POST' : 'GET', body, chunkedBody = false } = options;
  return new Promise((resolve) => {
    const started = performance.now();
    let socket: net.Socket | undefined;
    let settled = false;
    const finish = (ok: boolean, status: number, data: Buffer, error: string | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ok, status, body: data, error, socket, ms: performance.now() - started });
    };
    const headers: http.OutgoingHttpHeaders = body && !chunkedBody ? { 'content-length': body.length } : {};
    const req = http.request({ host: '127.0.0.1', port, path, method, agent, headers });
    const timer = setTimeout(() => req.destroy(new Error('client timeout')), REQUEST_TIMEOUT_MS);
    req.on('socket', (s) => (socket = s));
    req.on('error', (err) => finish(false, 0, Buffer.alloc(0), err.message));
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('end', () => finish(res.complete, res.statusCode ?? 0, Buffer.concat(parts), res.complete ? undefined : 'incomplete'));
      res.on('error', (err) => finish(false, res.statusCode ?? 0, Buffer.concat(parts), err.message));
      res.on('close', () => finish(false, res.statusCode ?? 0, Buffer.concat(parts), 'closed before end'));
    });
    if (body && chunkedBody) {
      req.write(body.subarray(0, body.length >> 1));
      req.end(body.subarray(body.length >> 1));
    } else {
      req.end(body);
    }
  });
}

/** True once the socket closed, false if it is still open after `ms`. */
function closedWithin(socket: net.Socket, ms: number): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onClose = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      socket.off('close', onClose);
      resolve(false);
    }, ms);
    socket.once('close', onClose);
  });
}

/** Polls `check` every 10 ms, for at most `ms`. */
async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

test('killRate 0 is transparent for keep-alive traffic of every framing', async (t) => {
  const server = await startTarget(t);
  const proxy = await proxyTo(t, server);
  const agent = keepAliveAgent(t, 2);
  const sizes = [0, 1, 100, 1000, 16 * 1024, 64 * 1024 + 1, 200 * 1024, 1024 * 1024];
  let sent = 0;

  for (let round = 0; round < 3; round++) {
    // Two at a time, so both keep-alive sockets carry many exchanges.
    const outcomes = await Promise.all(
      sizes.flatMap((n, k) => {
        const salt = round * 100 + k;
        return [
          send(proxy.port, agent, `/bytes?n=${n}&i=${salt}`).then((o) => ({ o, want: pattern(n, salt) })),
          send(proxy.port, agent, `/chunked?n=${n}&i=${salt}`).then((o) => ({ o, want: pattern(n, salt) })),
          send(proxy.port, agent, '/echo', { body: pattern(n, salt + 1) }).then((o) => ({ o, want: pattern(n, salt + 1) })),
        ];
      }),
    );
    for (const { o, want } of outcomes) {
      assert.equal(o.error, undefined);
      assert.equal(o.status, 200);
      assert.ok(o.body.equals(want), `body of ${want.length} bytes arrived intact`);
    }
    sent += outcomes.length;
  }
  // Bodiless responses (HEAD with a Content-Length, 204, 304) and an empty 404 keep the framer in sync.
  const head = await send(proxy.port, agent, '/bytes?n=5000', { method: 'HEAD' });
  assert.equal(head.ok, true);
  assert.equal(head.body.length, 0);
  for (const code of [204, 304, 404]) {
    const o = await send(proxy.port, agent, `/status?code=${code}`);
    assert.equal(o.ok, true);
    assert.equal(o.status, code);
  }
  const after = await send(proxy.port, agent, '/bytes?n=10&i=9');
  assert.ok(after.ok && after.body.equals(pattern(10, 9)), 'still in sync after bodiless responses');
  sent += 5;

  const stats = proxy.stats;
  assert.equal(stats.requests, sent);
  assert.equal(stats.responses, sent);
  assert.equal(stats.faults.total, 0);
  assert.equal(stats.passThroughConnections, 0);
  assert.ok(stats.connections <= 2, `keep-alive reused sockets (${stats.connections} connections for ${sent} requests)`);
});

/**
 * 4 keep-alive workers send GET Content-Length, GET chunked and POST echo
 * requests through a proxy with killRate 0.3, then check every exchange the
 * proxy saw against its fault decision (matched by the unique request target).
 */
async function faultStorm(t: TestContext, perWorker: number, options: Omit<FaultProxyOptions, 'target'>): Promise<void> {
  const server = await startTarget(t);
  const decisions = new Map<string, FaultKind | null>();
  const proxy = await proxyTo(t, server, { killRate: 0.3, ...options, onDecision: (d) => decisions.set(d.target, d.fault) });
  const agent = keepAliveAgent(t, 4);
  const results: Array<{ path: string; want: Buffer; outcome: Outcome; closed: boolean | undefined }> = [];

  const worker = async (w: number): Promise<void> => {
    for (let k = 0; k < perWorker; k++) {
      const i = w * 1000 + k;
      const n = [0, 10, 3000, 20_000, 70_000][i % 5] ?? 0; // i % 5 is always an index of the list
      const want = pattern(n, i);
      const path = `/${['bytes', 'chunked', 'echo'][i % 3]}?n=${n}&i=${i}`;
      const outcome = await send(proxy.port, agent, path, i % 3 === 2 ? { body: want } : {});
      // After-response: the client has the whole response; the socket must close next.
      const closed = decisions.get(path) === 'after-response' && outcome.socket ? await closedWithin(outcome.socket, 2000) : undefined;
      results.push({ path, want, outcome, closed });
    }
  };
  await Promise.all([0, 1, 2, 3].map(worker));
  assert.equal(results.length, 4 * perWorker);

  const seen = { request: 0, 'mid-response': 0, 'after-response': 0, 'before-response': 0 };
  for (const { path, want, outcome, closed } of results) {
    if (outcome.ok) assert.ok(outcome.body.equals(want), `${path}: a complete response is intact`);
    if (!decisions.has(path)) continue; // written to a socket the proxy had just killed
    const fault = decisions.get(path) ?? null;
    if (fault === null) {
      assert.equal(outcome.ok, true, `${path}: unfaulted exchange succeeds (${outcome.error})`);
      continue;
    }
    seen[fault]++;
    if (fault === 'after-response') {
      assert.equal(outcome.ok, true, `${path}: after-response delivers the full response (${outcome.error})`);
      assert.equal(closed, true, `${path}: then the connection closes`);
    } else {
      assert.equal(outcome.ok, false, `${path}: a ${fault} fault leaves the client without a complete response`);
    }
  }
  for (const [kind, count] of Object.entries(seen)) assert.ok(count >= 1, `${kind} injected at least once`);

  // Every decided fault is executed and counted (a kill may trail the client by a tick).
  const decided = [...decisions.values()].filter((f) => f !== null).length;
  assert.ok(await eventually(() => proxy.stats.faults.total === decided, 2000), `${proxy.stats.faults.total} executed of ${decided} decided`);
  const { faults, requests } = proxy.stats;
  assert.equal(faults.total, faults.request + faults.midResponse + faults.afterResponse + faults.beforeResponse);
  const executed = [faults.request, faults.midResponse, faults.afterResponse, faults.beforeResponse];
  assert.deepEqual(executed, [seen.request, seen['mid-response'], seen['after-response'], seen['before-response']]);
  assert.equal(requests, decisions.size);
  assert.ok(decided > 0.15 * requests && decided < 0.45 * requests, `about 30% of ${requests} exchanges faulted (${decided})`);

  // Neither the proxy nor the target crashed: both still serve, cleanly.
  proxy.setKillRate(0);
  for (let k = 0; k < 20; k++) {
    const o = await send(proxy.port, agent, `/bytes?n=5000&i=${k}`);
    assert.ok(o.ok && o.body.equals(pattern(5000, k)), `clean request ${k} after the storm (${o.error})`);
  }
  assert.ok(server.listening);
}

test('killRate 0.3 injects every fault kind, per request; after-response delivers whole responses', { timeout: 60_000 }, (t) =>
  faultStorm(t, 75, { seed: 20240611 }),
);

test('faults stay exact with latency, bandwidth pacing and stalls', { timeout: 60_000 }, (t) =>
  faultStorm(t, 40, { seed: 99, latencyMs: 2, bandwidthBytesPerSec: 5_000_000, stall: { probability: 0.02, durationMs: 20 } }),
);

test('latencyMs delays each direction', async (t) => {
  const server = await startTarget(t);
  const proxy = await proxyTo(t, server, { latencyMs: 50 });
  const agent = keepAliveAgent(t, 1);
  for (let k = 0; k < 3; k++) {
    const o = await send(proxy.port, agent, `/bytes?n=100&i=${k}`);
    assert.ok(o.ok && o.body.equals(pattern(100, k)));
    assert.ok(o.ms >= 2 * 50 - 1, `round trip ${o.ms.toFixed(1)} ms >= 100 ms`);
  }
});

test('a stall pauses a connection, then forwarding resumes', async (t) => {
  const server = await startTarget(t);
  const proxy = await proxyTo(t, server, { stall: { probability: 1, durationMs: 150 } });
  const agent = keepAliveAgent(t, 1);
  for (let k = 0; k < 2; k++) {
    const o = await send(proxy.port, agent, `/bytes?n=3000&i=${k}`);
    assert.ok(o.ok && o.body.equals(pattern(3000, k)), 'the response arrives after the stall');
    assert.ok(o.ms >= 150 - 1, `stalled ${o.ms.toFixed(1)} ms >= 150 ms`);
  }
  assert.ok(proxy.stats.stalls >= 2);

  // The stallNow() knob: freeze an open keep-alive connection on demand.
  const plain = await proxyTo(t, server);
  const warm = await send(plain.port, agent, '/bytes?n=10');
  assert.ok(warm.ok);
  plain.stallNow(200);
  const o = await send(plain.port, agent, '/bytes?n=10&i=3');
  assert.ok(o.ok && o.body.equals(pattern(10, 3)));
  assert.ok(o.ms >= 200 - 1, `stallNow held the request ${o.ms.toFixed(1)} ms`);
});

test('bandwidthBytesPerSec paces a large response', async (t) => {
  const server = await startTarget(t);
  const proxy = await proxyTo(t, server, { bandwidthBytesPerSec: 400_000 });
  const agent = keepAliveAgent(t, 1);
  const o = await send(proxy.port, agent, '/bytes?n=200000&i=1');
  assert.ok(o.ok && o.body.equals(pattern(200_000, 1)));
  // 200 kB at 400 kB/s is 500 ms; the first 50 ms slice goes out at once.
  assert.ok(o.ms >= 400, `200 kB took ${o.ms.toFixed(0)} ms at 400 kB/s`);
});

test('the same seed gives the same fault decisions', { timeout: 30_000 }, async (t) => {
  const server = await startTarget(t);
  const run = async (seed: number): Promise<Array<FaultKind | null>> => {
    const log: FaultDecision[] = [];
    const proxy = await proxyTo(t, server, { killRate: 0.5, seed, onDecision: (d) => log.push(d) });
    assert.equal(proxy.seed, seed);
    // One fresh connection per request, strictly in sequence: the proxy sees the same request sequence.
    for (let k = 0; k < 40; k++) await send(proxy.port, false, `/bytes?n=${k * 100}&i=${k}`);
    await proxy.close();
    assert.deepEqual(log.map((d) => d.request), [...Array(40).keys()]);
    return log.map((d) => d.fault);
  };
  const first = await run(7);
  assert.ok(first.some((f) => f !== null) && first.some((f) => f === null));
  assert.deepEqual(await run(7), first);
  assert.notDeepEqual(await run(8), first);

  const random = await proxyTo(t, server);
  assert.ok(Number.isInteger(random.seed) && random.seed >= 0 && random.seed < 2 ** 32);
});

test('unframeable traffic falls back to counted pass-through', async (t) => {
  // A raw TCP echo target: not HTTP at all.
  const sockets = new Set<net.Socket>();
  const echo = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.pipe(socket);
  });
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    return closeServer(echo);
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  const proxy = await proxyTo(t, echo, { killRate: 1 });
  const socket = net.connect(proxy.port, '127.0.0.1');
  t.after(() => socket.destroy());
  const message = 'HELLO, NOT HTTP\r\n\r\nmore bytes';
  const echoed = await new Promise<string>((resolve, reject) => {
    let got = '';
    socket.on('data', (part: Buffer) => {
      got += part.toString('latin1');
      if (got.length >= message.length) resolve(got);
    });
    socket.on('error', reject);
    socket.write(message);
  });
  assert.equal(echoed, message);
  assert.equal(proxy.stats.passThroughConnections, 1);
  assert.equal(proxy.stats.faults.total, 0);

  // A chunked request body is not followed: the exchange is unfaulted pass-through.
  const server = await startTarget(t);
  const httpProxy = await proxyTo(t, server, { killRate: 1 });
  const body = pattern(30_000, 5);
  const o = await send(httpProxy.port, keepAliveAgent(t, 1), '/echo', { body, chunkedBody: true });
  assert.ok(o.ok && o.body.equals(body), `chunked upload echoed (${o.error})`);
  assert.equal(httpProxy.stats.passThroughConnections, 1);
  assert.equal(httpProxy.stats.faults.total, 0);
});

test('options are validated at construction', () => {
  const target = { host: '127.0.0.1', port: 8080 };
  assert.throws(() => new FaultProxy({ target: { host: '10.0.0.1', port: 80 } }), /"target\.host" must be a loopback address/);
  assert.throws(() => new FaultProxy({ target: { host: 'example.com', port: 80 } }), /loopback/);
  assert.throws(() => new FaultProxy({ target, killRate: 1.5 }), (err: unknown) => err instanceof RangeError && /"killRate"/.test(err.message));
  assert.throws(() => new FaultProxy({ target, faults: JSON.parse('["request","bogus"]') as FaultKind[] }), /"faults"/);
  assert.throws(() => new FaultProxy({ target, latencyMs: -1 }), /"latencyMs"/);
  assert.throws(() => new FaultProxy({ target, stall: { probability: 2, durationMs: 10 } }), /"stall\.probability"/);
  assert.throws(() => new FaultProxy({ target, seed: 1.5 }), /"seed"/);
  assert.doesNotThrow(() => new FaultProxy({ target: { host: '::1', port: 80 } }));
  assert.doesNotThrow(() => new FaultProxy({ target: { host: 'localhost', port: 80 } }));
});
