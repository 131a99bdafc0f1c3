/**
 * Issue 17, item 4: black-holed polls through a real NAT. The client sits
 * behind a router namespace that masquerades and whose connection tracking
 * forgets a TCP connection idle for 8 s (the router then refuses what the
 * server writes on it: the client hears nothing). The server holds polls for
 * its default 25 s, so an idle poll dies without a sound.
 * - After the first silent death (found at the poll's deadline), the client
 *   holds for less than the NAT's limit: a message from the server arrives
 *   within 3 s of being sent, whatever the idle time.
 * - A client that keeps sending learns from a send's answer (Holdline-Written)
 *   that its poll is dead, and replaces it within one send round trip.
 * Needs root (CAP_SYS_ADMIN for `ip netns`), like test/nat.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createNatLab, type NatLab } from './middlebox/netns.js';
import type { ManagedProcess } from './middlebox/process.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NAT_IDLE_S = 8;

interface Line {
  event: string;
  id?: string;
  idleMs?: number;
  delayMs?: number;
  sessionId?: string;
  stats?: { silentDeaths?: number; holdMs: number; holdCeilingMs?: number; resets: number };
  port?: number;
}

function lines(p: ManagedProcess): Line[] {
  return p.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);
}

async function waitLine(p: ManagedProcess, event: string, timeoutMs: number): Promise<Line> {
  await p.waitForStdout(new RegExp(`"event":"${event}"`), timeoutMs).catch((e: unknown) => {
    throw new Error(`${p.name}: no "${event}" within ${timeoutMs} ms: ${String(e)}\nstdout:\n${p.stdout()}\nstderr:\n${p.stderr()}`);
  });
  const line = lines(p).find((l) => l.event === event);
  if (line === undefined) throw new Error(`${p.name}: no JSON "${event}" line\nstdout:\n${p.stdout()}`);
  return line;
}

const tsx = (script: string, args: string[]) => [process.execPath, ['--import', 'tsx', script, ...args]] as const;

async function natLab(): Promise<{ lab: NatLab; url: string; server: ManagedProcess }> {
  const lab = await createNatLab();
  // The router forgets an established TCP connection after 8 s without a packet.
  await lab.exec('router', 'sysctl', ['-w', `net.netfilter.nf_conntrack_tcp_timeout_established=${NAT_IDLE_S}`]);
  const [cmd, args] = tsx('test/nat/blackhole-server.ts', [lab.serverAddr]);
  const server = lab.spawn('server', cmd, args, { name: 'blackhole-server', cwd: ROOT });
  const { port } = await waitLine(server, 'listening', 30_000);
  return { lab, url: `http://${lab.serverAddr}:${String(port)}/holdline`, server };
}

test('after the first silent death, server messages arrive within 3 s whatever the idle time', { timeout: 150_000 }, async (t) => {
  const { lab, url } = await natLab();
  t.after(() => lab.destroy());
  const [cmd, args] = tsx('test/nat/blackhole-client.ts', [url, 'idle']);
  const client = lab.spawn('lan', cmd, args, { name: 'blackhole-client', cwd: ROOT });
  const done = await waitLine(client, 'done', 130_000);
  const open = lines(client).find((l) => l.event === 'open');
  const arrived = lines(client).filter((l) => l.event === 'arrived');
  const report = JSON.stringify(arrived);
  t.diagnostic(arrived.map((l) => `${l.id ?? '?'}: after ${l.idleMs ?? '?'} ms idle, ${l.delayMs ?? '?'} ms late (hold ${l.stats?.holdMs ?? '?'} ms, silent deaths ${l.stats?.silentDeaths ?? '?'})`).join('; '));
  assert.equal(arrived.length, 3, report);
  const [first, second, third] = arrived as [Line, Line, Line];
  // The first one waited for the dead poll's deadline: the silent death the client learns from.
  assert.ok((first.delayMs ?? -1) >= 0, `the first message arrived: ${report}`);
  assert.ok((first.stats?.silentDeaths ?? 0) >= 1, `the first poll died silently: ${report}`);
  assert.ok((first.stats?.holdMs ?? Infinity) < NAT_IDLE_S * 1000, `the hold went under the NAT's limit: ${report}`);
  for (const later of [second, third]) {
    assert.ok(later.delayMs !== undefined && later.delayMs >= 0 && later.delayMs < 3_000, `"${later.id}" after ${later.idleMs} ms idle came ${later.delayMs} ms late: ${report}`);
  }
  assert.equal(third.stats?.resets, 0, 'the same session throughout');
  assert.equal(done.sessionId, open?.sessionId);
});

test('a client that keeps sending finds a black-holed poll within one send round trip', { timeout: 120_000 }, async (t) => {
  const { lab, url } = await natLab();
  t.after(() => lab.destroy());
  const [cmd, args] = tsx('test/nat/blackhole-client.ts', [url, 'sending']);
  // With the transport's debug log on: what the client learned is logged (stderr), as well as counted.
  const env = { ...process.env, DEBUG: 'holdline:client:transport', DEBUG_COLORS: '0' };
  const client = lab.spawn('lan', cmd, args, { name: 'blackhole-client', cwd: ROOT, env });
  await waitLine(client, 'done', 100_000);
  const arrived = lines(client).filter((l) => l.event === 'arrived');
  const report = JSON.stringify(arrived);
  t.diagnostic(arrived.map((l) => `${l.id ?? '?'}: after ${l.idleMs ?? '?'} ms idle, ${l.delayMs ?? '?'} ms late (hold ${l.stats?.holdMs ?? '?'} ms, silent deaths ${l.stats?.silentDeaths ?? '?'})`).join('; '));
  const [first] = arrived;
  // Its poll (held 25 s, dead at 8 s) would have waited for its deadline, 30 s
  // after it went out. A send every 500 ms answered with Holdline-Written shows
  // it dead within a send interval plus a round trip (and the wait for the poll's answer).
  assert.ok(first?.delayMs !== undefined && first.delayMs >= 0 && first.delayMs < 2_000, `came ${first?.delayMs} ms late: ${report}`);
  assert.equal(first.stats?.silentDeaths, 1, report);
  assert.ok((first.stats?.holdMs ?? Infinity) < NAT_IDLE_S * 1000, report);
  assert.match(client.stderr(), /poll died silently after \d+ ms \(the server had written what it never brought\): hold now \d+ ms, kept below \d+ ms/);
});
