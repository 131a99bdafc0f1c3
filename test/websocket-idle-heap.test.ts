/**
 * Idle-heap budget of the WebSocket transport: what an idle session carried
 * by a WebSocket costs the server's heap, above what a raw `ws` connection
 * costs.
 *
 * 2,000 clients, each after one echo (so Holdline's WebSocket has carried
 * its session), then idle, against a server in a child process run with
 * `node --expose-gc`; the same with raw `ws` (a WebSocketServer and one text
 * frame per message: bench/lib/adapters/raw-ws.ts) in the same run. This is
 * the bench's WebSocket idle-heap part (bench/workloads/websocket.ts): the
 * shipped build, dist/ (built first when stale), plain node children. The
 * reading waits until the server holds one connection per session: the
 * HTTP connection a Holdline session opened on is kept alive by node:http
 * for a few seconds after (about 3.4 KB each), and is not what an idle
 * session keeps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureDist } from '../bench/lib/dist-build.js';
import { measureWsIdleHeap } from '../bench/workloads/websocket.js';

const SESSIONS = 2_000;
const WARMUP = 200;

/**
 * Bytes per idle WebSocket session Holdline may keep above raw `ws`.
 *
 * Measured with this set-up (Node 20.20.2, a busy 2-core VM), raw `ws`
 * 4,374-4,535 B per connection:
 * - before f98b957 (a heartbeat timer, an OrderedFrames object and four
 *   closures per connection, and ws's clientTracking beside the
 *   transport's own set): Holdline 5,764 B, its own share about 1,390 B;
 * - after: Holdline 4,935-4,944 B, its own share 400-510 B (the Session,
 *   its send state after the echo, the store's record, the Connection, the
 *   Map entries; see bench/README.md, "WebSocket").
 * 1,100 B leaves about 600 B over the largest share seen; the code before
 * f98b957 fails it, and so would a timer and two closures per connection
 * on today's code. Raw `ws` is measured in the same run, so a Node or `ws`
 * version that changes `ws`'s own cost moves both figures.
 */
const BUDGET_ABOVE_WS = 1_100;

test(`an idle WebSocket session costs the server at most ${BUDGET_ABOVE_WS} bytes of heap above a raw ws connection`, { timeout: 180_000 }, async (t) => {
  await ensureDist();
  const ws = await measureWsIdleHeap('ws', SESSIONS, WARMUP);
  const holdline = await measureWsIdleHeap('holdline', SESSIONS, WARMUP);
  const above = holdline.heapPerSession - ws.heapPerSession;
  t.diagnostic(`heap per idle WebSocket session: Holdline ${holdline.heapPerSession} B, raw ws ${ws.heapPerSession} B, Holdline's own ${above} B (budget ${BUDGET_ABOVE_WS} B)`);
  assert.deepEqual(holdline.errors, [], 'no errors on the Holdline server or its clients');
  assert.deepEqual(ws.errors, [], 'no errors on the ws server or its clients');
  // One connection per session at the reading: the opens' HTTP connections are gone.
  assert.equal(holdline.connections, SESSIONS + WARMUP, 'the Holdline server holds one connection per session');
  assert.ok(ws.heapPerSession > 1_000 && ws.heapPerSession < 20_000, `raw ws: ${ws.heapPerSession} B per connection`);
  assert.ok(
    above <= BUDGET_ABOVE_WS,
    `an idle Holdline WebSocket session costs ${holdline.heapPerSession} B of heap, ${above} B above a raw ws connection (${ws.heapPerSession} B); the budget is ${BUDGET_ABOVE_WS} B`,
  );
});
