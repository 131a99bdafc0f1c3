#!/usr/bin/env node
/**
 * `holdline`: the command line. `holdline <command> [options]`; each command
 * lives in cli/commands/<name>.ts and is loaded only when it runs.
 */
import { HoldlineError } from '../shared/errors.js';
import { line, UsageError, type Command, type Io } from './command.js';

/** Adding a command: a file in cli/commands/ and a line here. */
const COMMANDS: Record<string, () => Promise<{ command: Command }>> = {
  serve: () => import('./commands/serve.js'),
  connect: () => import('./commands/connect.js'),
  bench: () => import('./commands/bench.js'),
  doctor: () => import('./commands/doctor.js'),
};

async function usage(): Promise<string> {
  const rows: string[] = [];
  for (const [name, load] of Object.entries(COMMANDS)) rows.push(`  ${name.padEnd(9)}${(await load()).command.summary}`);
  return `Usage: holdline <command> [options]

Commands:
${rows.join('\n')}

Run holdline <command> --help for a command's options.
Debug logging: DEBUG=holdline:* holdline ...`;
}

export async function main(argv: string[], io: Io): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    line(name === undefined ? io.stderr : io.stdout, await usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    const { readFile } = await import('node:fs/promises');
    for (const p of ['../package.json', '../../package.json']) {
      try {
        const pkg = JSON.parse(await readFile(new URL(p, import.meta.url), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'holdline') {
          line(io.stdout, pkg.version ?? '');
          return 0;
        }
      } catch {
        // not there: try the next
      }
    }
    return 1;
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!load) {
    line(io.stderr, `holdline: unknown command '${name}'. Commands: ${Object.keys(COMMANDS).join(', ')} (holdline --help)`);
    return 2;
  }
  const { command } = await load();
  if (args.includes('--help') || args.includes('-h')) {
    line(io.stdout, command.help);
    return 0;
  }
  try {
    return await command.run(args, io);
  } catch (e) {
    if (e instanceof UsageError) {
      line(io.stderr, `holdline ${name}: ${e.message} (holdline ${name} --help)`);
      return 2;
    }
    if (e instanceof HoldlineError) {
      line(io.stderr, `holdline ${name}: ${e.code}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

const ac = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => ac.abort());
}
main(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env, signal: ac.signal }).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    line(process.stderr, `holdline: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exitCode = 1;
  },
);
