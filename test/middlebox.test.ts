// Tests of the middlebox test infrastructure itself (test/middlebox/*): real
// squid, nginx and network namespaces against plain node:http / node:net
// servers. Needs root for the NAT lab (CI runs as root); without it that test
// fails with a message saying what is missing. Nothing here leaves the
// machine: squid only forwards to loopback, namespaces use addresses that
// exist only inside them.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { md5Crypt } from './middlebox/htpasswd.js';
import { createNatLab, type NatLab } from './middlebox/netns.js';
import { startNginx, type NginxProxy } from './middlebox/nginx.js';
import { basicProxyAuthorization, startSquid, type SquidProxy } from './middlebox/squid.js';
import { run } from './middlebox/system.js';

// ---------------------------------------------------------------------------
// Helpers

interface Origin {
  readonly port: number;
  /** Requests seen, by path. */
  readonly hits: Map<string, number>;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

async function startOrigin(handler: Handler): Promise<Origin> {
  const hits = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://origin').pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => handler(req, res, body));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  assert.ok(typeof address === 'object' && address !== null);
  return {
    port: address.port,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One HTTP request on a fresh connection, bounded by `timeoutMs`. */
function httpRequest(options: {
  port: number;
  path: string;
  method?: string;
  headers?: OutgoingHttpHeaders;
  body?: string;
  timeoutMs?: number;
}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: options.port,
        method: options.method ?? 'GET',
        path: options.path,
        headers: options.headers,
        agent: false,
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A request through a forward proxy: absolute-form request target. */
function viaProxy(
  proxy: SquidProxy,
  url: string,
  options: { method?: string; headers?: OutgoingHttpHeaders; body?: string; timeoutMs?: number } = {},
): Promise<Reply> {
  return httpRequest({ ...options, port: proxy.port, path: url, headers: { host: new URL(url).host, ...options.headers } });
}

/** Sends CONNECT through the proxy and returns the status (the tunnel, if any, is closed at once). */
function connectStatus(proxy: SquidProxy, authority: string, headers: OutgoingHttpHeaders): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port: proxy.port,
      method: 'CONNECT',
      path: authority,
      headers: { host: authority, ...headers },
      agent: false,
      signal: AbortSignal.timeout(10_000),
    });
    req.on('connect', (res: IncomingMessage, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------

describe('htpasswd', () => {
  it('computes APR1 hashes identical to `openssl passwd -apr1`', () => {
    assert.equal(md5Crypt('secret', 'abcdefgh'), '$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/');
    assert.equal(md5Crypt('x', 'salt', '$1$'), '$1$salt$9GHNWvCB1UrDZjPi7uags0');
  });
});

describe('middlebox options', () => {
  it('are validated before anything starts, naming the option', async () => {
    await assert.rejects(startSquid({ readTimeoutSec: 0 }), { name: 'TypeError', message: /options\.readTimeoutSec/ });
    await assert.rejects(startSquid({ auth: { user: 'a:b', password: 'x' } }), { name: 'TypeError', message: /options\.auth\.user/ });
    await assert.rejects(startNginx({ upstreams: [] }), { name: 'TypeError', message: /options\.upstreams/ });
    // Upstreams must be loopback: nothing leaves the machine.
    await assert.rejects(startNginx({ upstreams: [{ host: '192.0.2.1', port: 80 }] }), {
      name: 'TypeError',
      message: /options\.upstreams\[0\]\.host/,
    });
    await assert.rejects(startNginx({ upstreams: [{ host: '127.0.0.1', port: 80 }], locationPath: '/x; return 200' }), {
      name: 'TypeError',
      message: /options\.locationPath/,
    });
  });
});

describe('squid forward proxy with Basic auth', { timeout: 60_000 }, () => {
  const user = 'alice';
  const password = 's3cret-pass';
  let origin: Origin | undefined;
  let squid: SquidProxy | undefined;
  after(async () => {
    await squid?.stop();
    await origin?.close();
  });

  before(async () => {
    origin = await startOrigin((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`origin saw ${req.method} ${req.url}`);
    });
    squid = await startSquid({ auth: { user, password } });
  });

  it('forwards an absolute-form request carrying Proxy-Authorization, and logs it', async () => {
    assert.ok(squid && origin);
    const url = `http://127.0.0.1:${origin.port}/x`;
    const reply = await viaProxy(squid, url, { headers: { 'proxy-authorization': basicProxyAuthorization(user, password) } });
    assert.equal(reply.status, 200);
    assert.equal(reply.body, 'origin saw GET /x');
    assert.equal(origin.hits.get('/x'), 1);
    const entry = await squid.waitForAccessEntry((e) => e.url === url && e.httpStatus === 200);
    assert.equal(entry.method, 'GET');
    assert.equal(entry.user, user);
    assert.equal(entry.hierarchy, 'HIER_DIRECT');
    assert.equal(entry.peer, '127.0.0.1');
  });

  it('answers 407 without credentials or with a wrong password, without reaching the origin', async () => {
    assert.ok(squid && origin);
    const url = `http://127.0.0.1:${origin.port}/needs-auth`;
    const anonymous = await viaProxy(squid, url);
    assert.equal(anonymous.status, 407);
    assert.match(String(anonymous.headers['proxy-authenticate']), /^Basic realm="holdline-test"/);
    const wrong = await viaProxy(squid, url, { headers: { 'proxy-authorization': basicProxyAuthorization(user, 'nope') } });
    assert.equal(wrong.status, 407);
    assert.equal(origin.hits.get('/needs-auth'), undefined);
    await squid.waitForAccessEntry((e) => e.url === url && e.httpStatus === 407);
  });

  it('denies CONNECT to a port other than 443 with 403 (stock rule)', async () => {
    assert.ok(squid && origin);
    const authority = `127.0.0.1:${origin.port}`;
    const status = await connectStatus(squid, authority, { 'proxy-authorization': basicProxyAuthorization(user, password) });
    assert.equal(status, 403);
    const entry = await squid.waitForAccessEntry((e) => e.method === 'CONNECT' && e.url === authority);
    assert.equal(entry.squidStatus, 'TCP_DENIED');
  });

  it('denies non-loopback destinations before contacting anything', async () => {
    assert.ok(squid);
    // RFC 5737 TEST-NET-1 and the RFC 6761 .invalid TLD: never real hosts.
    for (const url of ['http://192.0.2.1/', 'http://example.invalid/', 'http://127.0.0.1.example.invalid/']) {
      const reply = await viaProxy(squid, url, { headers: { 'proxy-authorization': basicProxyAuthorization(user, password) } });
      assert.equal(reply.status, 403, url);
      assert.match(String(reply.headers['x-squid-error']), /^ERR_ACCESS_DENIED/, url);
      const entry = await squid.waitForAccessEntry((e) => e.url === url);
      assert.equal(entry.squidStatus, 'TCP_DENIED', url);
      // HIER_NONE with no peer: squid neither resolved nor connected.
      assert.equal(entry.hierarchy, 'HIER_NONE', url);
      assert.equal(entry.peer, null, url);
      assert.ok(entry.elapsedMs < 1_000, `${url} took ${entry.elapsedMs} ms (a lookup or connect?)`);
    }
  });

  it('stop() waits for squid and its helpers to exit and removes its temp dir', async () => {
    const extra = await startSquid({ auth: { user, password } });
    try {
      assert.ok(groupAlive(extra.pid));
      assert.ok(existsSync(extra.dir));
    } finally {
      await extra.stop();
    }
    assert.equal(groupAlive(extra.pid), false);
    assert.equal(existsSync(extra.dir), false);
    assert.match(await extra.cacheLog(), /Exiting normally/);
    await extra.stop(); // idempotent
  });
});

describe('squid caching', { timeout: 60_000 }, () => {
  let origin: Origin | undefined;
  let squid: SquidProxy | undefined;
  after(async () => {
    await squid?.stop();
    await origin?.close();
  });

  before(async () => {
    origin = await startOrigin((req, res) => {
      const path = new URL(req.url ?? '/', 'http://origin').pathname;
      const cacheControl = path === '/no-store' ? 'no-store' : 'public, max-age=60';
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': cacheControl });
      res.end(`response for ${path}`);
    });
    squid = await startSquid({ caching: true });
  });

  it('serves a cacheable response from its cache the second time', async () => {
    assert.ok(squid && origin);
    const url = `http://127.0.0.1:${origin.port}/cacheable`;
    const first = await viaProxy(squid, url);
    assert.equal(first.status, 200);
    await squid.waitForAccessEntry((e) => e.url === url && e.squidStatus === 'TCP_MISS');
    const second = await viaProxy(squid, url);
    assert.equal(second.status, 200);
    assert.equal(second.body, first.body);
    assert.equal(second.body, 'response for /cacheable');
    await squid.waitForAccessEntry((e) => e.url === url && /^TCP_(MEM_)?HIT$/.test(e.squidStatus));
    assert.equal(origin.hits.get('/cacheable'), 1);
  });

  it('passes every request for a Cache-Control: no-store response to the origin', async () => {
    assert.ok(squid && origin);
    const url = `http://127.0.0.1:${origin.port}/no-store`;
    for (let i = 0; i < 3; i++) {
      const reply = await viaProxy(squid, url);
      assert.equal(reply.status, 200);
    }
    assert.equal(origin.hits.get('/no-store'), 3);
    const entries = (await squid.accessLog()).filter((e) => e.url === url);
    assert.ok(entries.every((e) => !e.squidStatus.endsWith('HIT')), JSON.stringify(entries.map((e) => e.squidStatus)));
  });
});

describe('squid read_timeout', { timeout: 60_000 }, () => {
  let origin: Origin | undefined;
  let squid: SquidProxy | undefined;
  after(async () => {
    await squid?.stop();
    await origin?.close();
  });

  before(async () => {
    // Holds every request without answering, like a long poll with no data.
    origin = await startOrigin(() => undefined);
    squid = await startSquid({ readTimeoutSec: 2 });
  });

  it('cuts a held response with 504 ERR_READ_TIMEOUT', async () => {
    assert.ok(squid && origin);
    const url = `http://127.0.0.1:${origin.port}/hold`;
    const started = Date.now();
    const reply = await viaProxy(squid, url, { method: 'POST', body: '{}', timeoutMs: 20_000 });
    const elapsedMs = Date.now() - started;
    assert.equal(reply.status, 504);
    assert.match(String(reply.headers['x-squid-error']), /^ERR_READ_TIMEOUT/);
    assert.equal(origin.hits.get('/hold'), 1);
    assert.ok(elapsedMs >= 1_500 && elapsedMs < 10_000, `cut after ${elapsedMs} ms`);
  });
});

describe('nginx reverse proxy', { timeout: 60_000 }, () => {
  let a: Origin | undefined;
  let b: Origin | undefined;
  let nginx: NginxProxy | undefined;
  after(async () => {
    await nginx?.stop();
    await a?.close();
    await b?.close();
  });

  const echo =
    (id: string): Handler =>
    (req, res, body) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id, method: req.method, url: req.url, connection: req.headers.connection ?? null, body }));
    };

  before(async () => {
    a = await startOrigin(echo('a'));
    b = await startOrigin(echo('b'));
    nginx = await startNginx({
      upstreams: [
        { host: '127.0.0.1', port: a.port },
        { host: '127.0.0.1', port: b.port },
      ],
    });
  });

  it('round-robins requests across both upstreams, over HTTP/1.1 keep-alive', async () => {
    assert.ok(nginx && a && b);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const reply = await httpRequest({ port: nginx.port, path: `/rr/${i}` });
      assert.equal(reply.status, 200);
      const parsed = JSON.parse(reply.body) as { id: string; connection: string | null };
      ids.push(parsed.id);
      // proxy_set_header Connection "": no "Connection: close" to the upstream.
      assert.equal(parsed.connection, null);
    }
    assert.deepEqual([...ids].sort(), ['a', 'a', 'b', 'b']);
    assert.notEqual(ids[0], ids[1]);
    const entry = await nginx.waitForAccessEntry((e) => e.uri === '/rr/3');
    assert.equal(entry.status, 200);
    const upstreams = new Set((await nginx.accessLog()).filter((e) => e.uri.startsWith('/rr/')).map((e) => e.upstream));
    assert.deepEqual([...upstreams].sort(), [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`].sort());
  });

  it('passes a POST body through, including one large enough to be buffered to a temp file', async () => {
    assert.ok(nginx);
    for (const body of ['{"hello":"world"}', 'x'.repeat(200_000)]) {
      const reply = await httpRequest({
        port: nginx.port,
        path: '/holdline/send',
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      assert.equal(reply.status, 200);
      const parsed = JSON.parse(reply.body) as { method: string; url: string; body: string };
      assert.equal(parsed.method, 'POST');
      assert.equal(parsed.url, '/holdline/send');
      assert.equal(parsed.body.length, body.length);
      assert.equal(parsed.body, body);
    }
  });

  it('stop() waits for the master and workers and removes its temp dir', async () => {
    assert.ok(a);
    const extra = await startNginx({ upstreams: [{ host: '127.0.0.1', port: a.port }], locationPath: '/holdline/' });
    try {
      assert.ok(groupAlive(extra.pid));
      const outside = await httpRequest({ port: extra.port, path: '/elsewhere' });
      assert.equal(outside.status, 404);
      const inside = await httpRequest({ port: extra.port, path: '/holdline/open' });
      assert.equal(inside.status, 200);
    } finally {
      await extra.stop();
    }
    assert.equal(groupAlive(extra.pid), false);
    assert.equal(existsSync(extra.dir), false);
  });
});

describe('NAT lab (network namespaces; needs root)', { timeout: 60_000 }, () => {
  let lab: NatLab | undefined;
  after(async () => {
    await lab?.destroy();
  });

  const hostForwarding = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');

  // Prints one line per connection: "PEER <address>", and tells the peer its address.
  const tcpServer = `
    const net = require('node:net');
    const [host, port] = process.argv.slice(1);
    net.createServer((socket) => {
      console.log('PEER ' + socket.remoteAddress);
      socket.end('peer=' + socket.remoteAddress + '\\n');
    }).listen(Number(port), host, () => console.log('LISTENING'));
  `;
  // Connects once; prints "OK <data>" or "ERR <code>"; always exits 0 within 5 s.
  const tcpClient = `
    const net = require('node:net');
    const [host, port] = process.argv.slice(1);
    const socket = net.connect({ host, port: Number(port) });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => { data += chunk; });
    socket.on('end', () => { console.log('OK ' + data.trim()); process.exit(0); });
    socket.on('error', (error) => { console.log('ERR ' + error.code); process.exit(0); });
    setTimeout(() => { console.log('ERR ETIMEDOUT'); process.exit(0); }, 5000);
  `;

  it('lets the LAN reach the server through NAT, and the server cannot call the client back', async () => {
    lab = await createNatLab();
    assert.match(lab.namespaces.server, /^hl-[0-9a-f]{6}-srv$/);
    const listed = (await run('ip', ['netns', 'list'])).stdout;
    for (const name of Object.values(lab.namespaces)) assert.match(listed, new RegExp(`^${name}\\b`, 'm'));

    const server = lab.spawn('server', process.execPath, ['-e', tcpServer, lab.serverAddr, '7000']);
    await server.waitForStdout(/LISTENING/, 10_000);
    const client = lab.spawn('lan', process.execPath, ['-e', tcpServer, lab.clientAddr, '7001']);
    await client.waitForStdout(/LISTENING/, 10_000);

    // LAN -> server works, and the server sees the router's public address.
    const out = await lab.exec('lan', process.execPath, ['-e', tcpClient, lab.serverAddr, '7000'], { timeoutMs: 15_000 });
    assert.equal(out.stdout.trim(), `OK peer=${lab.routerPublicAddr}`);
    await server.waitForStdout(new RegExp(`PEER ${lab.routerPublicAddr.replaceAll('.', '\\.')}`), 5_000);
    assert.doesNotMatch(server.stdout(), new RegExp(lab.clientAddr.replaceAll('.', '\\.')));

    // The client listens, reachable inside its LAN ...
    const local = await lab.exec('lan', process.execPath, ['-e', tcpClient, lab.clientAddr, '7001'], { timeoutMs: 15_000 });
    assert.equal(local.stdout.trim(), `OK peer=${lab.clientAddr}`);
    // ... but the server has no way to it.
    const back = await lab.exec('server', process.execPath, ['-e', tcpClient, lab.clientAddr, '7001'], { timeoutMs: 15_000 });
    assert.match(back.stdout.trim(), /^ERR (ENETUNREACH|EHOSTUNREACH|ECONNREFUSED|ETIMEDOUT)$/);
    assert.doesNotMatch(client.stdout(), /PEER 172\./);

    // The host itself is untouched: no lab addresses, same ip_forward.
    const hostAddrs = (await run('ip', ['-o', 'addr'])).stdout;
    assert.doesNotMatch(hostAddrs, /10\.213\.|172\.29\./);
    assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), hostForwarding);

    await lab.destroy();
    assert.equal(server.hasExited() && client.hasExited(), true);
    const remaining = (await run('ip', ['netns', 'list'])).stdout;
    for (const name of Object.values(lab.namespaces)) assert.doesNotMatch(remaining, new RegExp(`^${name}\\b`, 'm'));
    await lab.destroy(); // idempotent
  });
});
