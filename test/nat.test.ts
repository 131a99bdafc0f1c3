/**
 * Issue 3, item 4: real NAT. The client sits in a private LAN namespace
 * behind a router namespace that masquerades; the server is in a third
 * namespace. The server cannot open a connection to the client (the callback
 * design fails here), while Holdline messages flow both ways.
 * Needs root (CAP_SYS_ADMIN for `ip netns`); without it the test fails with
 * a message naming what is missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createNatLab } from './middlebox/netns.js';
import type { ManagedProcess } from './middlebox/process.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const COUNT = 500;

interface Line {
  event: string;
  [k: string]: unknown;
}

function lines(p: ManagedProcess): Line[] {
  return p
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);
}

async function waitLine(p: ManagedProcess, event: string, timeoutMs: number): Promise<Line> {
  await p.waitForStdout(new RegExp(`"event":"${event}"`), timeoutMs).catch((e: unknown) => {
    throw new Error(`${p.name}: no "${event}" within ${timeoutMs} ms: ${String(e)}\nstdout:\n${p.stdout()}\nstderr:\n${p.stderr()}`);
  });
  const line = lines(p).find((l) => l.event === event);
  if (line === undefined) throw new Error(`${p.name}: stdout matched "${event}" but no JSON line has it\nstdout:\n${p.stdout()}`);
  return line;
}

test('behind a masquerading NAT: no callback possible, messages flow both ways', { timeout: 120_000 }, async (t) => {
  const lab = await createNatLab();
  t.after(() => lab.destroy());

  const node = (script: string, args: string[]) => [process.execPath, ['--import', 'tsx', script, ...args]] as const;
  const [cmd, serverArgs] = node('test/nat/server-main.ts', [lab.serverAddr, String(COUNT)]);
  const server = lab.spawn('server', cmd, serverArgs, { name: 'nat-server', cwd: ROOT });
  const { port } = (await waitLine(server, 'listening', 30_000)) as Line & { port: number };

  const url = `http://${lab.serverAddr}:${port}/holdline`;
  const [ccmd, clientArgs] = node('test/nat/client-main.ts', [url, String(COUNT)]);
  const client = lab.spawn('lan', ccmd, clientArgs, { name: 'nat-client', cwd: ROOT });
  const { port: callbackPort } = (await waitLine(client, 'callback-listening', 30_000)) as Line & { port: number };

  // The callback design: the server dials the client's address. It cannot.
  const probe = await lab
    .exec(
      'server',
      process.execPath,
      [
        '-e',
        `const s=require('net').connect(${callbackPort}, '${lab.clientAddr}');` +
          `s.setTimeout(3000,()=>{console.log('timeout');process.exit(0)});` +
          `s.on('connect',()=>{console.log('connected');process.exit(0)});` +
          `s.on('error',e=>{console.log(e.code);process.exit(0)})`,
      ],
      { timeoutMs: 10_000 },
    )
    .then((r) => r.stdout.trim());
  assert.notEqual(probe, 'connected', 'the server must not be able to call the client back');
  assert.match(probe, /ENETUNREACH|EHOSTUNREACH|ECONNREFUSED|timeout/);

  // Holdline: everything starts at the client, so it works.
  const up = await waitLine(server, 'received', 60_000);
  const down = await waitLine(client, 'received', 60_000);
  assert.deepEqual({ count: up.count, inOrder: up.inOrder }, { count: COUNT, inOrder: true });
  assert.deepEqual({ count: down.count, inOrder: down.inOrder }, { count: COUNT, inOrder: true });

  // The server only ever saw the router's public address: the NAT was in the path.
  const peers = lines(server).filter((l) => l.event === 'peer').map((l) => String(l.address).replace(/^::ffff:/, ''));
  assert.deepEqual(peers, [lab.routerPublicAddr]);
  assert.ok(!lines(client).some((l) => l.event === 'callback-connected'));

  await Promise.all([client.stop(), server.stop()]);
});
