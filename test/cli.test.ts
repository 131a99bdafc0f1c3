/**
 * Issue 16, item 5: the `holdline` command, driven as a user drives it: a
 * child process per command (node + tsx on cli/main.ts), lines typed on its
 * stdin, its output read line by line. Every wait is bounded.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startSquid } from './middlebox/squid.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = join(ROOT, 'cli', 'main.ts');
/** A clean environment: no proxy from the machine, no debug output. */
const ENV = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };

/** A running `holdline` process whose stdout and stderr are read line by line. */
class Cli {
  readonly child: ChildProcessWithoutNullStreams;
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<number | null>;
  #waiters: Array<() => void> = [];

  constructor(args: string[], env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, env: { ...ENV, ...env } });
    for (const [stream, lines] of [[this.child.stdout, this.stdout], [this.child.stderr, this.stderr]] as const) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (l) => {
        lines.push(l);
        for (const w of this.#waiters.splice(0)) w();
      });
    }
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** The first line of `which` output matching `re` (waiting for it up to `ms`). */
  async line(which: 'stdout' | 'stderr', re: RegExp, ms = 15_000): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const found = this[which].find((l) => re.test(l));
      if (found !== undefined) return found;
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no ${which} line matching ${re} within ${ms} ms; stdout: ${this.stdout.join(' | ')}; stderr: ${this.stderr.join(' | ')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  type(text: string): void {
    this.child.stdin.write(text + '\n');
  }

  /** Its exit code, waiting up to `ms` (then it is killed and the test fails). */
  async exitCode(ms = 15_000): Promise<number | null> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_r, reject) => {
      timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        reject(new Error(`did not exit within ${ms} ms; stdout: ${this.stdout.join(' | ')}; stderr: ${this.stderr.join(' | ')}`));
      }, ms);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function run(t: TestContext, args: string[], env?: Record<string, string>): Cli {
  const cli = new Cli(args, env);
  t.after(() => {
    if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
  });
  return cli;
}

/** `holdline serve` on a free loopback port: the process and its URL. */
async function serve(t: TestContext, ...args: string[]): Promise<{ cli: Cli; url: string }> {
  const cli = run(t, ['serve', '--port', '0', '--host', '127.0.0.1', ...args]);
  const ready = await cli.line('stdout', /^listening on /);
  const url = /(http:\/\/\S+)/.exec(ready)?.[1];
  assert.ok(url, ready);
  return { cli, url };
}

test('holdline --help lists the commands; each command has --help; bad input is a usage error', async (t) => {
  const help = run(t, ['--help']);
  assert.equal(await help.exitCode(), 0);
  for (const name of ['serve', 'connect', 'bench', 'doctor']) assert.ok(help.stdout.some((l) => l.trimStart().startsWith(name)), `--help lists ${name}`);
  for (const name of ['serve', 'connect', 'bench', 'doctor']) {
    const c = run(t, [name, '--help']);
    assert.equal(await c.exitCode(), 0, `${name} --help`);
    assert.match(c.stdout[0] ?? '', new RegExp(`^Usage: holdline ${name}`));
  }
  const unknown = run(t, ['frobnicate']);
  assert.equal(await unknown.exitCode(), 2);
  assert.match(unknown.stderr.join('\n'), /unknown command 'frobnicate'/);
  const badFlag = run(t, ['bench', 'http://127.0.0.1:1/holdline', '--nope']);
  assert.equal(await badFlag.exitCode(), 2);
  assert.match(badFlag.stderr.join('\n'), /holdline bench: .*--nope.*\(holdline bench --help\)/);
  const noUrl = run(t, ['doctor']);
  assert.equal(await noUrl.exitCode(), 2);
  assert.match(noUrl.stderr.join('\n'), /a URL is needed/);
});

test('serve + connect: typed lines come back from the echo server; states on stderr; Ctrl-D closes', async (t) => {
  const server = await serve(t);
  const c = run(t, ['connect', server.url, '--transports', 'polling']);
  const open = await c.line('stderr', /^\* open: session \S+/);
  const sid = /session (\S+)/.exec(open)?.[1] ?? '';
  await server.cli.line('stdout', new RegExp(`^session ${sid} opened`));
  c.type('hello');
  c.type('wörld ✓');
  assert.equal(await c.line('stdout', /^hello$/), 'hello');
  assert.equal(await c.line('stdout', /^wörld/), 'wörld ✓');
  c.child.stdin.end();
  assert.equal(await c.exitCode(), 0);
  assert.match(c.stderr.join('\n'), /^\* closed: client_closed$/m);
  await server.cli.line('stdout', new RegExp(`^session ${sid} closed: client_closed`));
  server.cli.child.kill('SIGTERM');
  assert.equal(await server.cli.exitCode(), 0);
  assert.ok(server.cli.stdout.includes('stopping'));
});

test('serve --mode relay: a line typed in one client reaches the other, not itself', async (t) => {
  const server = await serve(t, '--mode', 'relay', '--path', '/rt');
  assert.match(server.url, /\/rt$/);
  const a = run(t, ['connect', server.url]);
  const b = run(t, ['connect', server.url]);
  await a.line('stderr', /^\* open:/);
  await b.line('stderr', /^\* open:/);
  a.type('from a');
  assert.equal(await b.line('stdout', /^from a$/), 'from a');
  b.type('from b');
  assert.equal(await a.line('stdout', /^from b$/), 'from b');
  assert.deepEqual(a.stdout, ['from b']);
  assert.deepEqual(b.stdout, ['from a']);
  a.child.stdin.end();
  b.child.stdin.end();
  assert.equal(await a.exitCode(), 0);
  assert.equal(await b.exitCode(), 0);
});

test('serve on a port in use says so in one line, and how to pick another', async (t) => {
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.after(() => busy.close());
  const port = (busy.address() as AddressInfo).port;
  const c = run(t, ['serve', '--port', String(port), '--host', '127.0.0.1']);
  assert.equal(await c.exitCode(), 1);
  assert.deepEqual(c.stderr, [`holdline serve: port ${port} is in use; pick another with --port N (or PORT=N), 0 for any free port`]);
});

test('bench through squid, found through HTTP_PROXY: progress, a summary, every echo back in order', { timeout: 120_000 }, async (t) => {
  const squid = await startSquid();
  t.after(() => squid.stop());
  const server = await serve(t, '--quiet');
  const bench = run(t, ['bench', server.url, '--pings', '5', '--messages', '300', '--size', '100', '--json'], { HTTP_PROXY: squid.url });
  assert.equal(await bench.exitCode(60_000), 0, bench.stdout.join('\n'));
  const summary = JSON.parse(bench.stdout.join('\n')) as { ok: boolean; received: number; lost: number; outOfOrder: number; burst: { messages: number } };
  assert.equal(summary.ok, true);
  assert.equal(summary.received, 300);
  assert.equal(summary.lost, 0);
  assert.equal(summary.outOfOrder, 0);
  assert.match(bench.stderr.join('\n'), /^burst: echoed 300\/300$/m);
  const log = await squid.accessLog();
  assert.ok(log.some((e) => e.url.includes('/holdline/open')), 'the requests went through squid');
});

test('bench against nothing fails clearly, within its timeout', async (t) => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const bench = run(t, ['bench', `http://127.0.0.1:${port}/holdline`, '--connect-timeout', '500', '--timeout', '10']);
  assert.equal(await bench.exitCode(), 1);
  assert.match(bench.stdout.join('\n'), /^FAILED: .*could not open a session/m);
  assert.match(bench.stdout.join('\n'), /errors +network_error x\d+/);
});
