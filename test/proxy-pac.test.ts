/**
 * Issue 18, PAC: `proxy: { pac }` picks the proxy for each URL by the PAC
 * file's FindProxyForURL, run in a QuickJS sandbox. One server is sent
 * through squid, another DIRECT; both work, and squid's log shows only the
 * first. The PAC file is read from a file for one client and fetched over
 * HTTP for the other. A PAC file that reaches for Node (require, process)
 * fails in its sandbox, with an error naming it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HoldlineClient } from '../client/index.js';
import type { HoldlineError } from '../shared/index.js';
import { sessionIdOf, startHoldline } from './helpers/holdline.js';
import { noProxyEnv } from './helpers/proxy-auth.js';
import { startSquid } from './middlebox/squid.js';

async function pacFile(t: import('node:test').TestContext, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'holdline-pac-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'proxy.pac');
  await writeFile(file, text);
  return file;
}

async function servePac(t: import('node:test').TestContext, text: string): Promise<string> {
  const server = http.createServer((_req, res) => res.end(text));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as import('node:net').AddressInfo;
  return `http://127.0.0.1:${port}/proxy.pac`;
}

async function roundTrip(c: HoldlineClient, hl: Awaited<ReturnType<typeof startHoldline>>, text: string): Promise<void> {
  await c.connect();
  const session = hl.server.session(sessionIdOf(c));
  assert.ok(session);
  const down = new Promise((r) => c.once('message', r));
  const up = new Promise((r) => session.once('message', r));
  await session.send(`${text} down`);
  await c.send(`${text} up`);
  assert.equal(await down, `${text} down`);
  assert.equal(String(await up), `${text} up`);
}

test('a PAC file sends one server through squid and another DIRECT: both work, squid sees only the first', { timeout: 60_000 }, async (t) => {
  noProxyEnv(t);
  const squid = await startSquid();
  t.after(() => squid.stop());
  const proxied = await startHoldline(t);
  const direct = await startHoldline(t);
  const pac = `function FindProxyForURL(url, host) {
    if (shExpMatch(url, "http://127.0.0.1:${proxied.port}/*")) return "PROXY 127.0.0.1:${squid.port}; DIRECT";
    return "DIRECT";
  }`;
  const file = await pacFile(t, pac);
  const url = await servePac(t, pac);

  const a = new HoldlineClient(proxied.url, { proxy: { pac: file }, transports: ['polling'] });
  t.after(() => a.close());
  const b = new HoldlineClient(direct.url, { proxy: { pac: url }, transports: ['polling'] });
  t.after(() => b.close());
  await roundTrip(a, proxied, 'via squid');
  await roundTrip(b, direct, 'direct');

  await squid.waitForAccessEntry((e) => e.url.endsWith('/send'));
  const log = await squid.accessLog();
  assert.ok(log.some((e) => e.url.startsWith(`http://127.0.0.1:${proxied.port}/holdline/open`) && e.httpStatus === 200), 'the first server was reached through squid');
  assert.deepEqual(log.filter((e) => e.url.includes(`:${direct.port}/`)).map((e) => e.url), [], 'the DIRECT one never went through squid');
});

test('a PAC file that reaches for Node fails in its sandbox: invalid_argument naming the file', { timeout: 30_000 }, async (t) => {
  noProxyEnv(t);
  const hl = await startHoldline(t);
  let escaped = false;
  const g = globalThis as { holdlinePacEscaped?: () => void };
  g.holdlinePacEscaped = () => (escaped = true);
  t.after(() => delete g.holdlinePacEscaped);
  const file = await pacFile(t, `function FindProxyForURL(url, host) {
    if (typeof holdlinePacEscaped === 'function') holdlinePacEscaped();
    return require('fs') ? "DIRECT" : process.exit(1);
  }`);
  const c = new HoldlineClient(hl.url, { proxy: { pac: file }, transports: ['polling'], connectTimeoutMs: 2_000 });
  t.after(() => c.close());
  const errors: HoldlineError[] = [];
  c.on('error', (e) => errors.push(e));
  const err = (await c.connect().then(
    () => undefined,
    (e: unknown) => e,
  )) as HoldlineError | undefined;
  assert.ok(err !== undefined, 'connect() failed');
  assert.match(`${err.message} ${errors.map((e) => e.message).join(' ')}`, new RegExp(`PAC file ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} failed for`));
  assert.equal(escaped, false, 'the PAC code did not see the host\'s globals');
  assert.equal(hl.server.sessionCount, 0);
});
