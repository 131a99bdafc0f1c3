/**
 * The command path of the Redis store (server/redis-store.ts): every command
 * the store sends goes through one `Pipeliner`, which sends the commands
 * issued in one turn (the code running now and the promise callbacks it
 * sets off: a flush is a process.nextTick, so it waits for no I/O) as one
 * ioredis pipeline (one write, one read of the replies) instead of one
 * round trip each. A broadcast to 10,000 sessions is then a few dozen
 * pipelines, not 10,000 round trips: the per-command cost in Node (a write,
 * a parser callback each) is what bound it. (A setImmediate flush, as
 * ioredis's autoPipelining does, made each store call wait for the loop's
 * I/O phase, and a poll's chain of calls slower under load.)
 *
 * In flight: while a flush waits for its replies, the commands issued
 * meanwhile wait too, and go out as one pipeline when they come
 * (MAX_IN_FLIGHT). An idle connection sends at once; a busy one sends a
 * round trip's worth of requests' commands in one write, where each poll
 * and send used to cost a write and a read of its own.
 *
 * Order: commands go out in the order they were issued (one queue, one
 * connection per Redis node, pipelines sent in order), so a caller that
 * issues a write and then a read of the same session without awaiting sees
 * the write. That is why every command goes through here, not only scripts.
 *
 * Redis Cluster: a pipeline may only hold keys of slots one node serves, so
 * a batch is split by the node group that serves each command's slot
 * (the slot of its first key, as ioredis computes it; keyless commands such
 * as PUBLISH ride with any group). Each per-session script's keys share a
 * `{sid}` hash tag, so a script never spans slots.
 *
 * Scripts: EVALSHA, and for those Redis answers NOSCRIPT (a restart, a new
 * replica or primary after a failover) EVAL with the source, once.
 */
import type { Cluster, Redis } from 'ioredis';
import type { Arg } from './redis-codec.js';
import type { Script } from './redis-scripts.js';

export type RedisClient = Redis | Cluster;

/** Commands per pipeline at most (a bounded write and reply buffer). */
const MAX_BATCH = 1000;
/**
 * Flushes whose replies are not all in, at most. Past it, commands wait and
 * go out together when a reply comes: under load one write carries what a
 * whole round trip's worth of requests issued, instead of a write (and a
 * read of replies) per request; when idle, a command goes out at once.
 */
const MAX_IN_FLIGHT = 1;
/** Calls per many-session script at most (each script holds Redis for its run). */
const MAX_MANY = 256;

interface Command {
  readonly name: string;
  readonly args: readonly Arg[];
  readonly buffers: boolean;
  /** The key that decides the slot on Redis Cluster; '' for none. */
  readonly key: string;
  /** For EVALSHA: the script, to EVAL when Redis has not got it. */
  readonly script: Script | undefined;
  /** For EVALSHA: the number of keys. */
  readonly keys: number;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

type ExecReply = [Error | null, unknown][] | null;

export class Pipeliner {
  readonly #client: RedisClient;
  #queue: Command[] = [];
  /** Commands (or a beforeFlush) wait for a flush. */
  #wanted = false;
  /** A flush is queued (process.nextTick). */
  #ticking = false;
  /** Flushes sent whose replies are not all in. */
  #inFlight = 0;
  /** Called at the start of each flush: may add commands to it (the store's coalesced PUBLISH). */
  #beforeFlush: (() => void) | undefined;

  constructor(client: RedisClient) {
    this.#client = client;
  }

  /** Run `fn` at the start of every flush; its commands go out in that flush. */
  set beforeFlush(fn: () => void) {
    this.#beforeFlush = fn;
  }

  /** Have a flush at the end of this turn (for a caller that queues its commands in beforeFlush). */
  schedule(): void {
    this.#wanted = true;
    this.#kick();
  }

  /** Queue a flush if one is wanted and there is room in flight. */
  #kick(): void {
    if (!this.#wanted || this.#ticking || this.#inFlight >= MAX_IN_FLIGHT) return;
    this.#ticking = true;
    process.nextTick(this.#flush);
  }

  /** A flush's replies are all in (or failed): the commands waiting meanwhile go. */
  readonly #landed = (): void => {
    this.#inFlight--;
    this.#kick();
  };

  /** A command with its arguments; `key` is the one that decides its Cluster slot ('' for none). */
  command(name: string, key: string, args: readonly Arg[], buffers = false): Promise<unknown> {
    return this.#add(name, key, args, buffers, undefined, 0);
  }

  /** Run a script on `keys` with `args` (after the keys: ARGV). */
  script(script: Script, keys: readonly string[], args: readonly Arg[], buffers = false): Promise<unknown> {
    return this.#add('EVALSHA', keys[0] ?? '', [script.sha, keys.length, ...keys, ...args], buffers, script, keys.length);
  }

  #add(name: string, key: string, args: readonly Arg[], buffers: boolean, script: Script | undefined, keys: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ name, args, buffers, key, script, keys, resolve, reject });
      this.schedule();
    });
  }

  readonly #flush = (): void => {
    this.#ticking = false;
    this.#wanted = false;
    try {
      this.#beforeFlush?.();
    } catch {
      // The hook reports to its own callers; the queued commands still go.
    }
    const queue = this.#queue;
    this.#queue = [];
    if (queue.length === 0) return;
    const sends: Promise<void>[] = [];
    for (const group of this.#groups(queue)) {
      for (let i = 0; i < group.length; i += MAX_BATCH) sends.push(this.#send(group.slice(i, i + MAX_BATCH)));
    }
    this.#inFlight++;
    if (sends.length === 1) void sends[0]?.then(this.#landed);
    else void Promise.all(sends).then(this.#landed);
  };

  /** The queue split by the Cluster node group each command goes to (one group on plain Redis), in order. */
  #groups(queue: Command[]): Command[][] {
    const c = this.#client;
    if (!c.isCluster) return [queue];
    const cluster = c as Cluster;
    const groups = new Map<string, Command[]>();
    let keyless: Command[] | undefined;
    for (const cmd of queue) {
      if (cmd.key === '') {
        (keyless ??= []).push(cmd);
        continue;
      }
      const slot = keySlot(`${cluster.options.keyPrefix ?? ''}${cmd.key}`);
      const nodes = cluster.slots[slot];
      const id = nodes === undefined ? `#${slot}` : nodes.join(',');
      let g = groups.get(id);
      if (g === undefined) groups.set(id, (g = []));
      g.push(cmd);
    }
    const out = [...groups.values()];
    if (keyless !== undefined) {
      const first = out[0];
      if (first === undefined) out.push(keyless);
      else first.push(...keyless);
    }
    return out;
  }

  /** One pipeline; resolves (never rejects) once its commands are settled. */
  #send(commands: Command[]): Promise<void> {
    const batch = this.#client.isCluster ? commands : merge(commands);
    const [only] = batch;
    // One command (an idle connection's usual case, an echo's every step): no pipeline object around it.
    if (batch.length === 1 && only !== undefined) return this.#sendOne(only);
    const p = this.#client.pipeline();
    for (const cmd of batch) {
      if (cmd.buffers) p.callBuffer(cmd.name, cmd.args as Arg[]);
      else p.call(cmd.name, cmd.args as Arg[]);
    }
    return p.exec().then(
      (replies: ExecReply) => this.#settle(batch, replies),
      (e: unknown) => {
        for (const cmd of batch) cmd.reject(e);
      },
    );
  }

  #sendOne(cmd: Command): Promise<void> {
    const c = this.#client;
    const args = cmd.args as Arg[];
    return (cmd.buffers ? c.callBuffer(cmd.name, args) : c.call(cmd.name, args)).then(cmd.resolve, (e: unknown) => {
      if (cmd.script !== undefined && e instanceof Error && e.message.startsWith('NOSCRIPT')) this.#evalSource(cmd, cmd.script);
      else cmd.reject(e);
    });
  }

  #settle(batch: Command[], replies: ExecReply): void {
    batch.forEach((cmd, i) => {
      const reply = replies?.[i];
      if (reply === undefined) {
        cmd.reject(new Error('Redis pipeline: no reply'));
        return;
      }
      const [err, value] = reply;
      if (err === null) cmd.resolve(value);
      else if (cmd.script !== undefined && err.message.startsWith('NOSCRIPT')) this.#evalSource(cmd, cmd.script);
      else cmd.reject(err);
    });
  }

  /** EVAL with the script's source (Redis lost its script cache): once, outside the batches. */
  #evalSource(cmd: Command, script: Script): void {
    const args: Arg[] = [script.source, ...cmd.args.slice(1)];
    const c = this.#client;
    (cmd.buffers ? c.callBuffer('EVAL', args) : c.call('EVAL', args)).then(cmd.resolve, cmd.reject);
  }
}

// ---- many sessions in one script (plain Redis) ----

/**
 * Consecutive calls of one script that has a many-session form (a
 * broadcast's enqueues, the reads of the polls it answers) become one call
 * of that form, in their place: one script run instead of hundreds, the
 * same order.
 */
function merge(batch: Command[]): Command[] {
  const out: Command[] = [];
  let run: Command[] = [];
  const end = (): void => {
    const [first] = run;
    const form = first?.script?.many;
    if (first === undefined) return;
    if (run.length === 1 || form === undefined) out.push(...run);
    else out.push(many(run, form));
    run = [];
  };
  for (const cmd of batch) {
    const first = run[0];
    const joins = first !== undefined && cmd.script?.many !== undefined && cmd.script === first.script && cmd.buffers === first.buffers && cmd.keys === first.keys;
    if (!joins || run.length >= MAX_MANY) end();
    run.push(cmd);
  }
  end();
  return out;
}

/** One call of the many-session form for `calls` (EVALSHA sha numkeys keys... ARGV...). */
function many(calls: Command[], form: { readonly sha: string; readonly source: string }): Command {
  const per = calls[0]?.keys ?? 0;
  const keys: Arg[] = [];
  const argv: Arg[] = [per];
  for (const c of calls) {
    // c.args: sha, numkeys, keys..., ARGV...
    keys.push(...c.args.slice(2, 2 + per));
    const own = c.args.slice(2 + per);
    argv.push(own.length, ...own);
  }
  const manyScript = { sha: form.sha, source: form.source, many: undefined } as Script;
  return {
    name: 'EVALSHA',
    args: [form.sha, keys.length, ...keys, ...argv],
    buffers: calls[0]?.buffers ?? false,
    key: calls[0]?.key ?? '',
    script: manyScript,
    keys: keys.length,
    resolve: (reply: unknown) => {
      if (!Array.isArray(reply) || reply.length !== calls.length) {
        const e = new Error(`Redis: unexpected reply to a many-session script: ${typeof reply}`);
        for (const c of calls) c.reject(e);
        return;
      }
      calls.forEach((c, k) => c.resolve(reply[k]));
    },
    reject: (e: unknown) => {
      for (const c of calls) c.reject(e);
    },
  };
}

// ---- Redis Cluster key slots (CRC16/XMODEM of the key's hash tag, mod 16384) ----

const CRC16 = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let c = i << 8;
  for (let k = 0; k < 8; k++) c = c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1;
  CRC16[i] = c & 0xffff;
}

/** The Cluster slot of `key`: of the part inside its first non-empty `{...}`, if any. */
export function keySlot(key: string): number {
  let bytes = Buffer.from(key);
  const open = bytes.indexOf(0x7b); // {
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1); // }
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  let crc = 0;
  for (const b of bytes) crc = ((crc << 8) & 0xffff) ^ (CRC16[((crc >> 8) ^ b) & 0xff] ?? 0);
  return crc & 0x3fff;
}
