/**
 * Entry point of every bench child process. It loads every workload (which
 * registers their roles) and Holdline from dist/, then runs the roles the parent asks for over IPC,
 * one message per call, and answers each with its result or error.
 * It exits when the parent goes away.
 */
import { loadHoldline } from './holdline-dist.js';
import { findRole } from './roles.js';
import type { AgentReply, AgentRequest } from './harness.js';
import '../workloads/throughput.js';
import '../workloads/latency.js';
import '../workloads/fanout.js';
import '../workloads/loss.js';
import '../workloads/baseline.js';
import '../workloads/idle-heap.js';
import '../workloads/ackpaced.js';
import '../workloads/websocket.js';
import '../workloads/redis-rtt.js';

function reply(msg: AgentReply): void {
  process.send?.(msg);
}

process.on('message', (raw: unknown) => {
  const msg = raw as AgentRequest;
  if (msg?.type !== 'call') return;
  const run = findRole(msg.role);
  if (!run) {
    reply({ type: 'result', id: msg.id, ok: false, error: `unknown role "${msg.role}"` });
    return;
  }
  run(msg.args).then(
    (value) => reply({ type: 'result', id: msg.id, ok: true, value: value ?? null }),
    (e: unknown) => reply({ type: 'result', id: msg.id, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
  );
});

// The parent went away (finished, crashed, or was killed): so do we.
process.on('disconnect', () => process.exit(0));
// A library may leave a rejection unhandled (engine.io-client's fetch transport
// does when a response is cut mid-body): report each kind once, carry on.
const seen = new Set<string>();
process.on('unhandledRejection', (e) => {
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  if (seen.has(text)) return;
  seen.add(text);
  console.error(`\n[bench child ${process.pid}: unhandled rejection in a library: ${text}]`);
});
// Holdline from dist/ (checked there), loaded before any role runs: no
// workload pays for loading it, and a child that cannot load it never starts.
await loadHoldline();
reply({ type: 'ready', pid: process.pid });
