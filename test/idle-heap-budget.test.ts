/**
 * Idle-heap budget: what an idle session (one held poll, nothing queued)
 * costs the server's heap, above what node:http itself costs for one held
 * request on its own connection.
 *
 * 2,000 sessions against a server in a child process run with
 * `node --expose-gc` (so the heap measured is the server's alone, after full
 * collections), opened by raw HTTP clients in another child (POST /open, then
 * a held POST /poll on the same connection: bench/workloads/idle-heap.ts).
 * The same clients against a bare node:http server that answers /open and
 * holds /poll give the floor, in the same run. The server is the shipped
 * build, dist/ (built first when stale, by bench/lib/dist-build.ts), and the
 * children are plain node (the bench's harness compiled by esbuild, no tsx:
 * bench/lib/agent-bundle.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureDist } from '../bench/lib/dist-build.js';
import { measureIdleHeap } from '../bench/workloads/idle-heap.js';

const SESSIONS = 2_000;

/**
 * Bytes per idle session Holdline may keep above the bare node:http floor.
 *
 * Measured with this test's set-up (Node 20.20.2, 2,000 sessions, on a busy
 * 2-core VM), the bare node:http floor 4,706-4,888 B per held request:
 * - the code of d68a379, eleven runs: Holdline 5,004-5,247 B per idle
 *   session, its own share 191-463 B;
 * - the store-seam server of 0fca5a2 (plus work in progress), four runs:
 *   Holdline 5,399-5,469 B, its own share 512-725 B;
 * - with the Session at 88 B and the Hold at 56 B (32 B less per session,
 *   by heap snapshot), three runs (two with the Hold still at 64 B):
 *   Holdline 5,302-5,341 B, its own share 403-475 B.
 * Adding a closure, a timer, an AbortController and a 'close' listener per
 * session (on the 'session' event) measured +530 B.
 *
 * 1.5 KB leaves 800 B over the largest share seen (four times the
 * run-to-run spread of about 200 B), so it does not flake; 2 KB more per
 * session (at least 2,560 B) fails it, and so would two of the additions
 * above on top of today's code. The floor is measured in the same run, so a
 * Node version that changes node:http's own cost moves both figures and not
 * the verdict. The bound was 1,536 B; it was lowered by the 32 B the
 * Session and the Hold gave up, and then by the 104 B of the next round
 * (heap snapshots at 10,000 sessions: the Session 112 -> 96 B, the Hold 64
 * -> 56 B and out of its Map, 46 B; sessions of one address share one
 * identity, 32 B), so that the margin stays what it was. After that round,
 * two runs: its own share 429 B alone, 680 B during the whole unit suite.
 */
const BUDGET_ABOVE_FLOOR = 1_400;

test(`an idle session costs the server at most ${BUDGET_ABOVE_FLOOR} bytes of heap above a bare held node:http request`, { timeout: 150_000 }, async (t) => {
  await ensureDist();
  const options = { sessions: SESSIONS, warmup: 50, settleMs: 300 };
  const floor = await measureIdleHeap('node:http', options);
  const holdline = await measureIdleHeap('holdline', options);
  const above = holdline.heapPerSession - floor.heapPerSession;
  t.diagnostic(`heap per idle session: Holdline ${holdline.heapPerSession} B, bare node:http ${floor.heapPerSession} B, Holdline's own ${above} B (budget ${BUDGET_ABOVE_FLOOR} B)`);
  assert.deepEqual(holdline.errors, [], 'the server reported no errors');
  // The floor itself is sane: a held request and its connection cost node:http a few KB.
  assert.ok(floor.heapPerSession > 1_000 && floor.heapPerSession < 20_000, `bare node:http: ${floor.heapPerSession} B per held request`);
  assert.ok(
    above <= BUDGET_ABOVE_FLOOR,
    `an idle Holdline session costs ${holdline.heapPerSession} B of heap, ${above} B above a bare held node:http request (${floor.heapPerSession} B); the budget is ${BUDGET_ABOVE_FLOOR} B`,
  );
});
