/**
 * `holdline bench URL`: a quick echo and throughput check against an echo
 * server (`holdline serve`), through whatever proxy is on the way.
 */
import { HoldlineClient } from '../../client/index.js';
import type { Payload } from '../../shared/index.js';
import { CLIENT_FLAGS, CLIENT_FLAGS_HELP, clientOptions } from '../client-flags.js';
import { intFlag, line, parse, urlArg, type Command } from '../command.js';

const help = `Usage: holdline bench URL [options]

Checks a Holdline echo server (holdline serve) at URL, through any proxy on
the way: opens a session, times round trips of single messages, then sends a
burst and waits for every echo, checking that none is lost, repeated or out
of order. A progress line goes to stderr; the summary to stdout. Exit code 0
when every echo came back in order, 1 otherwise.

  --pings N      round trips to time, one at a time (default 20)
  --messages N   messages in the throughput burst (default 2000)
  --size B       payload bytes of each burst message (default 256)
  --timeout S    give up after S seconds (default 60)
  --json         print the summary as JSON

${CLIENT_FLAGS_HELP}`;

interface Summary {
  url: string;
  transport: string;
  openMs: number;
  rttMs: { min: number; p50: number; p95: number; max: number };
  burst: { messages: number; bytes: number; seconds: number; messagesPerSecond: number; megabytesPerSecond: number };
  received: number;
  lost: number;
  outOfOrder: number;
  reconnects: number;
  resets: number;
  pollCuts: number;
  transportSwitches: number;
  ok: boolean;
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

export const command: Command = {
  summary: 'echo round trips and throughput against an echo server, through any proxy',
  help,
  async run(args, io) {
    const { values, positionals } = parse(args, {
      ...CLIENT_FLAGS,
      pings: { type: 'string' },
      messages: { type: 'string' },
      size: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
    });
    const url = urlArg(positionals);
    const pings = intFlag(values.pings, 'pings', 20, 1, 10_000);
    const count = intFlag(values.messages, 'messages', 2000, 1, 10_000_000);
    const size = intFlag(values.size, 'size', 256, 16, 1_048_576);
    const timeoutS = intFlag(values.timeout, 'timeout', 60, 1, 86_400);
    const client = new HoldlineClient(url, clientOptions(values));
    const tty = (io.stderr as { isTTY?: boolean }).isTTY === true;
    let lastProgress = 0;
    const progress = (text: string, force = false) => {
      const now = Date.now();
      if (!force && now - lastProgress < (tty ? 100 : 1000)) return;
      lastProgress = now;
      io.stderr.write(tty ? `\r\x1b[K${text}` : `${text}\n`);
    };

    let onMessage: (m: Payload) => void = () => {};
    client.on('message', (m) => onMessage(m));
    client.on('error', () => {}); // counted in stats.errors, shown in the summary
    const deadline = AbortSignal.any([io.signal, AbortSignal.timeout(timeoutS * 1000)]);
    const stopped = new Promise<never>((_resolve, reject) => {
      const fail = () => reject(new Error(io.signal.aborted ? 'interrupted' : `timed out after ${timeoutS} s`));
      if (deadline.aborted) fail();
      deadline.addEventListener('abort', fail, { once: true });
    });
    stopped.catch(() => undefined);

    try {
      progress(`connecting to ${url}`, true);
      const t0 = performance.now();
      await Promise.race([client.connect(), stopped]);
      const openMs = performance.now() - t0;

      // Round trips, one at a time.
      const rtts: number[] = [];
      for (let i = 0; i < pings; i++) {
        const tag = `ping ${i}`;
        const back = new Promise<void>((resolve) => (onMessage = (m) => m === tag && resolve()));
        const t = performance.now();
        await client.send(tag);
        await Promise.race([back, stopped]);
        rtts.push(performance.now() - t);
        progress(`round trips ${i + 1}/${pings}`);
      }
      rtts.sort((a, b) => a - b);

      // The burst: every message numbered; echoes must come back in order.
      const pad = 'x'.repeat(size);
      let received = 0;
      let outOfOrder = 0;
      let next = 0;
      let done: () => void = () => {};
      const all = new Promise<void>((resolve) => (done = resolve));
      onMessage = (m) => {
        if (typeof m !== 'string' || !m.startsWith('b')) return;
        const n = Number.parseInt(m.slice(1, m.indexOf(' ')), 10);
        if (n !== next) outOfOrder++;
        next = n + 1;
        received++;
        if (received === count) done();
      };
      const t1 = performance.now();
      const sending = (async () => {
        for (let i = 0; i < count; i++) {
          const head = `b${i} `;
          await client.send(head + pad.slice(head.length));
        }
      })();
      const ticker = setInterval(() => progress(`burst: sent ${client.stats.messagesSent - pings}/${count}, echoed ${received}/${count}`), 100);
      try {
        await Promise.race([Promise.all([sending, all]), stopped]);
      } finally {
        clearInterval(ticker);
      }
      const seconds = (performance.now() - t1) / 1000;
      progress(`burst: echoed ${received}/${count}`, true);
      if (tty) io.stderr.write('\n');

      const s = client.stats;
      const summary: Summary = {
        url,
        transport: client.transport,
        openMs: round(openMs),
        rttMs: { min: round(rtts[0] ?? 0), p50: round(quantile(rtts, 0.5)), p95: round(quantile(rtts, 0.95)), max: round(rtts.at(-1) ?? 0) },
        burst: {
          messages: count, bytes: count * size, seconds: round(seconds, 3),
          messagesPerSecond: Math.round(count / seconds), megabytesPerSecond: round((count * size) / seconds / 1e6, 2),
        },
        received, lost: count - received, outOfOrder,
        reconnects: s.reconnects, resets: s.resets, pollCuts: s.pollCuts, transportSwitches: s.transportSwitches ?? 0,
        ok: received === count && outOfOrder === 0 && s.resets === 0,
      };
      if (values.json === true) line(io.stdout, JSON.stringify(summary, null, 2));
      else {
        line(io.stdout, `${summary.ok ? 'OK' : 'FAILED'}: ${url} over ${summary.transport}`);
        line(io.stdout, `  open         ${summary.openMs} ms`);
        line(io.stdout, `  round trip   min ${summary.rttMs.min} / p50 ${summary.rttMs.p50} / p95 ${summary.rttMs.p95} / max ${summary.rttMs.max} ms (${pings} pings)`);
        line(io.stdout, `  throughput   ${summary.burst.messagesPerSecond} msg/s, ${summary.burst.megabytesPerSecond} MB/s (${count} x ${size} B echoed in ${summary.burst.seconds} s)`);
        line(io.stdout, `  echoes       ${received}/${count} received, ${summary.lost} lost, ${outOfOrder} out of order`);
        line(io.stdout, `  path         ${summary.reconnects} reconnects, ${summary.resets} resets, ${summary.pollCuts} polls cut, ${summary.transportSwitches} transport switches`);
      }
      return summary.ok ? 0 : 1;
    } catch (e) {
      if (tty) io.stderr.write('\n');
      line(io.stdout, `FAILED: ${url}: ${e instanceof Error ? e.message : String(e)}`);
      const errors = Object.entries(client.stats.errors ?? {}).map(([code, n]) => `${code} x${n}`);
      if (errors.length > 0) line(io.stdout, `  errors       ${errors.join(', ')}`);
      return 1;
    } finally {
      await client.close();
    }
  },
};
