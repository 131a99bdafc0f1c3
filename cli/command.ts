/**
 * What a CLI command is: one file in cli/commands/ exporting `command`, and
 * one line naming it in cli/main.ts. Commands print to the streams they are
 * given (tests run them in a child process and read them) and return the
 * process's exit code.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export interface Io {
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
  /** Aborted on SIGINT / SIGTERM: a long-running command stops cleanly. */
  readonly signal: AbortSignal;
}

export interface Command {
  /** One line for `holdline --help`. */
  readonly summary: string;
  /** The command's `--help` text. */
  readonly help: string;
  run(args: string[], io: Io): Promise<number>;
}

/** A usage error: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Partial<Record<string, string | boolean>>;
  positionals: string[];
}

/** Parse a command's arguments (strict: unknown flags are usage errors). */
export function parse(args: string[], options: Options): Parsed {
  try {
    const { values, positionals } = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    return { values: values as Parsed['values'], positionals };
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
}

/** A flag's value as an integer within [min, max], or `fallback` when absent. */
export function intFlag(value: string | boolean | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  return n;
}

/** A flag given as a string, or undefined. */
export function stringFlag(value: string | boolean | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** The one URL argument of connect, bench and doctor. */
export function urlArg(positionals: string[]): string {
  const [url, ...rest] = positionals;
  if (url === undefined) throw new UsageError('a URL is needed, e.g. http://localhost:3000/holdline');
  if (rest.length > 0) throw new UsageError(`one URL only; also got ${rest.join(' ')}`);
  if (!/^https?:\/\//.test(url)) throw new UsageError(`the URL must start with http:// or https://, got ${url}`);
  return url;
}

export function line(stream: NodeJS.WritableStream, text: string): void {
  stream.write(text + '\n');
}
