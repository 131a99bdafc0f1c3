/**
 * A bounded HTTP fuzzer against every endpoint of a real HoldlineServer
 * (open, poll, send, close, the paths around them, preflights), in process.
 *
 * Inputs come from a seeded PRNG (HOLDLINE_FUZZ_SEED replays a run; the count
 * is HOLDLINE_FUZZ_INPUTS, 3,000 by default, within a time budget): envelopes
 * for live sessions with fields dropped, retyped, huge, negative, NaN-ish,
 * nested a few thousand deep, very long, with invalid UTF-8 or cut short;
 * headers (content types, Content-Length lies, Origins, X-Forwarded-*,
 * missing ones); methods; paths (below and beside the mount, query strings,
 * encoded characters); and framing on raw sockets (bare LF, Content-Length
 * with Transfer-Encoding, bad chunk sizes, an early close mid-body,
 * pipelining, a byte-by-byte drip, oversized heads, junk). Bodies stay within
 * 64 KB.
 *
 * Asserted: nothing is thrown or rejected unhandled in the process and the
 * server reports no error; no input gets a 5xx other than 503; every complete
 * request is answered or its connection closed within 5 s; every error body
 * Holdline writes is its JSON error; and a healthy HoldlineClient echoing a
 * message every 20 ms through the whole run gets every echo back, in order.
 * Its echo latency is printed, never asserted (a busy 2-core box).
 *
 * The server and the run's settings are in helpers.ts; the inputs are made
 * in inputs.ts (bodies in envelopes.ts, requests around them in
 * requests.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoldlineClient, type HoldlineError } from '../../client/index.js';
import { exchange, percentile, type ExchangeResult, type RawInput } from '../helpers/fuzz.js';
import { Condition, openRaw, type RawSession } from '../helpers/server.js';
import { BUDGET_MS, DEADLINE_MS, fuzzServer, INPUTS, SEED, WORKERS } from './helpers.js';
import { Inputs, type Built } from './inputs.js';

interface Failure {
  label: string;
  problem: string;
  bytes: string;
}

/** The start of an input's bytes, printable. */
function preview(input: RawInput): string {
  const all = Buffer.concat(input.pieces);
  const text = JSON.stringify(all.subarray(0, 600).toString('latin1'));
  return all.length > 600 ? `${text}... (${all.length} bytes)` : text;
}

describe('HTTP fuzzer against a real HoldlineServer', () => {
  const server = fuzzServer();

  it(`survives ${INPUTS} inputs (seed ${SEED}); a healthy session keeps echoing throughout`, async () => {
    const { h, target, cleanup, processErrors, serverErrors } = server;
    // The healthy session: an echo every 20 ms for the whole run.
    const client = new HoldlineClient(h.url, { reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
    cleanup.add(() => client.close());
    const clientEvents: string[] = [];
    const sentAt = new Map<string, number>();
    const echoes: string[] = [];
    const latencies: number[] = [];
    const arrived = new Condition();
    client.on('message', (d) => {
      const text = typeof d === 'string' ? d : `binary ${d.byteLength}`;
      echoes.push(text);
      const t = sentAt.get(text);
      if (t !== undefined) latencies.push(performance.now() - t);
      arrived.notify();
    });
    client.on('error', (e: HoldlineError) => clientEvents.push(`error ${e.code}: ${e.message}`));
    client.on('reset', (e) => clientEvents.push(`reset ${e.reason.code}`));
    client.on('close', (r) => clientEvents.push(`close ${r.code}`));
    await client.connect();
    const healthySid = client.sessionId;
    server.healthySid = healthySid;
    assert.ok(healthySid !== undefined);

    let echoing = true;
    const sent: string[] = [];
    const echoLoop = (async () => {
      for (let i = 0; echoing; i++) {
        const text = `echo-${i}`;
        sentAt.set(text, performance.now());
        sent.push(text);
        await client.send(text);
        await sleep(20);
      }
    })();
    // Stopped before the client closes (cleanups run last-in first-out), whatever happens meanwhile.
    cleanup.add(async () => {
      echoing = false;
      await echoLoop.catch((e: unknown) => clientEvents.push(`echo loop: ${String(e)}`));
    });

    // Fuzz sessions to aim envelopes at, reopened when an input closes or loses one; one slot holds the healthy sid with a wrong token.
    const sessions: RawSession[] = [];
    for (let i = 0; i < 12; i++) sessions.push(await openRaw(h.url));
    sessions.push({ sid: healthySid, token: 'not-the-token' });
    const reopening = new Set<number>();
    const reopen = (slot: number) => {
      if (reopening.has(slot) || slot >= 12) return;
      reopening.add(slot);
      openRaw(h.url)
        .then((s) => {
          sessions[slot] = s;
        })
        .catch(() => undefined) // at maxSessions (503) the old credentials stay: they get 404/410
        .finally(() => reopening.delete(slot));
    };

    const inputs = new Inputs(target.port, () => sessions);
    const histogram = new Map<string, number>();
    const count = (k: string) => histogram.set(k, (histogram.get(k) ?? 0) + 1);
    /** Holdline's error codes among the answers. */
    const codes = new Map<string, number>();
    const failures: Failure[] = [];
    const started = performance.now();
    let next = 0;
    let tried = 0;

    const check = (built: Built, r: ExchangeResult) => {
      const { input } = built;
      const fail = (problem: string) => {
        failures.push({ label: input.label, problem, bytes: preview(input) });
        // HOLDLINE_FUZZ_DUMP=<dir>: every failing input's bytes, whole, for a reproducer.
        const dir = process.env.HOLDLINE_FUZZ_DUMP;
        if (dir) writeFileSync(join(dir, `fuzz-${SEED}-${input.label.split(' ')[0]?.slice(1) ?? 'x'}.bin`), Buffer.concat(input.pieces));
      };
      if (r.hung) fail(`no answer and no close within ${DEADLINE_MS} ms (${r.responses.length}/${input.expect} answers)`);
      if (r.responses.length === 0) count(input.after === 'destroy' ? 'reset by us' : r.closed ? 'closed' : 'none');
      for (const res of r.responses) {
        count(String(res.status));
        if (res.status >= 500 && res.status !== 503) fail(`status ${res.status}: ${res.body.toString('utf8').slice(0, 300)}`);
        if (/^application\/json/.test(res.headers.get('content-type') ?? '') && res.method !== 'HEAD') {
          try {
            const o = JSON.parse(res.body.toString('utf8')) as { error?: { code?: unknown; message?: unknown } };
            if (typeof o.error?.code !== 'string' || typeof o.error.message !== 'string') fail(`error body without code/message: ${res.body.toString('utf8').slice(0, 200)}`);
          } catch {
            fail(`error body is not JSON: ${res.body.toString('utf8').slice(0, 200)}`);
          }
        }
        const body = res.body.toString('utf8');
        const code = /"error":\{"code":"([a-z_]+)"/.exec(body)?.[1];
        if (code !== undefined) codes.set(code, (codes.get(code) ?? 0) + 1);
        if (/"session_unknown"|"session_closed"|"code":"(client_closed|idle_timeout)"/.test(body)) reopen(built.slot);
      }
      if (r.garbage) fail('a response that does not parse as HTTP/1.1');
    };

    const worker = async () => {
      while (next < INPUTS && performance.now() - started < BUDGET_MS) {
        const built = inputs.build(next++);
        const r = await exchange(target, built.input, DEADLINE_MS);
        tried++;
        check(built, r);
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, () => worker()));
    const fuzzMs = performance.now() - started;

    // The healthy session: every echo back, in order.
    echoing = false;
    await echoLoop;
    assert.equal(h.hl.session(healthySid)?.id, healthySid, 'the healthy session is still open');
    await arrived.until(() => echoes.length >= sent.length, 10_000, () => `all ${sent.length} echoes (got ${echoes.length})`);
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);

    // The server still opens sessions afterwards.
    await openRaw(h.url);

    const statuses = [...histogram.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}:${v}`).join(' ');
    console.log(
      `http fuzz: seed ${SEED}, ${tried} inputs in ${(fuzzMs / 1000).toFixed(1)} s; statuses ${statuses}; ` +
        `failures ${failures.length}; crashes ${processErrors.length}; server errors ${serverErrors.length}; ` +
        `healthy echoes ${echoes.length}/${sent.length}, p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`,
    );
    console.log(`http fuzz error codes: ${[...codes.entries()].sort(([, a], [, b]) => b - a).map(([k, v]) => `${k}:${v}`).join(' ')}`);
    for (const f of failures.slice(0, 20)) console.log(`  FAIL ${f.label}: ${f.problem}\n    input: ${f.bytes}`);

    assert.deepEqual(processErrors, [], 'nothing thrown or rejected unhandled in the process');
    assert.deepEqual(serverErrors.map(String), [], 'the server reported no error');
    assert.deepEqual(failures, [], 'no 5xx but 503, no hang, no malformed answer');
    assert.deepEqual(echoes, sent, 'every echo of the healthy session came back, once, in order');
    assert.deepEqual(clientEvents, [], 'the healthy session saw no error, reset or close');
    assert.ok(tried >= Math.min(INPUTS, 500), `a real run: ${tried} inputs`);
  });
});
