/**
 * `npm run test:https`: the integration tests whose servers come from the
 * test helpers, run once more over https and wss, the path users deploy.
 * `tsx scripts/test-https.ts FILE...` runs just the files named, the same way.
 *
 * Makes a self-signed certificate for 127.0.0.1 in a temporary directory
 * (openssl; see test/helpers/tls.ts), then runs the files with
 *   HOLDLINE_TEST_TLS=1, HOLDLINE_TEST_TLS_DIR=<dir>, NODE_EXTRA_CA_CERTS=<dir>/cert.pem
 * node --test runs each file in a child process that inherits them: the
 * helpers (startServer, startHoldline, createTestServer, and the nodes and
 * round-robin balancer of test/helpers/nodes.ts and round-robin.ts) start
 * https servers, and the client (undici for requests, `ws` for its
 * WebSocket) trusts the certificate as node does any CA from
 * NODE_EXTRA_CA_CERTS, with no test-only option in the product API.
 *
 * What runs (the lists below): the wire protocol by hand and its bad input;
 * the client's send, ack and early-poll paths; the WebSocket fast path over
 * wss, the server's endpoint and the Node client on it, across forced
 * switches down to polling and up again; several nodes on one store behind
 * a round-robin balancer that terminates TLS and speaks https to each node
 * (handover, takeover of a dead node, remote sends); session resume, send
 * commits, replies (rpc), and closes racing requests; exactly-once under
 * faults, through the FaultProxy, which here terminates TLS on both sides
 * (test/helpers/fault-proxy.ts) and breaks exchanges it reads in the clear.
 * A check in the WebSocket, multi-node and fault files (assertTestScheme,
 * upgradesOverTls in tls.ts) fails the run if what should be TLS was not.
 *
 * Not run here, and why:
 * - fault-proxy.test.ts, the FaultProxy's own tests against plain node:http
 *   targets;
 * - files that build their own plain node:http servers or speak raw TCP to
 *   the server (mounting, api-errors, client-queued-limits, client-reconnect,
 *   client-hostile-server, reset-backoff, redis-sentinel, slow-reader), and
 *   origin.test.ts, which writes http:// origins by design;
 * - middlebox set-ups, plain http by design: squid, nginx and the NAT
 *   labs in network namespaces (middlebox/, reverse-proxy, forward-proxy,
 *   proxy-*, websocket-middlebox, doctor, metrics (one test through squid),
 *   nat, nat-blackhole, and redis-cluster, redis-cluster-crash: node
 *   processes behind nginx);
 * - tests of a store, a limit or a measurement rather than of the wire
 *   (memory-store, redis-store/* but two-servers, redis-cluster-mode,
 *   redis-poll-cost, limits, client-memory, and the idle-heap budgets, which
 *   run the shipped build in child processes): TLS would add run time and
 *   no path of its own.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestCertificate } from '../test/helpers/tls.js';

/** Servers from startServer() (test/helpers/server.ts) or createTestServer() (tls.ts). */
const FILES = [
  'test/keepalive-reuse.test.ts',
  'test/bad-input/access.test.ts',
  'test/bad-input/body.test.ts',
  'test/bad-input/limits.test.ts',
  'test/bad-input/request-form.test.ts',
  'test/bad-input/sequence-and-ack.test.ts',
  'test/held-poll-store-failure.test.ts',
];

/**
 * Servers from startHoldline() (test/helpers/holdline.ts, which speaks TLS in
 * this mode), some behind a FaultProxy that terminates TLS.
 * origin.test.ts writes http:// origins by design.
 */
const HOLDLINE_FILES = [
  'test/client-send-path.test.ts',
  'test/ack-path.test.ts',
  'test/app-failures.test.ts',
  'test/client-callbacks.test.ts',
  'test/request-cost.test.ts',
  'test/early-poll/next-header.test.ts',
  'test/early-poll/from.test.ts',
  'test/early-poll/client.test.ts',
  'test/early-poll/recovery.test.ts',
  'test/early-poll/send-ack-order.test.ts',
  'test/lifecycle.test.ts',
  'test/client-reconnecting-state.test.ts',
  'test/body-limit.test.ts',
];

/**
 * Exactly once through the FaultProxy, which kills exchanges at random (the
 * request, before, during or after the response), reading them in the clear
 * between its own TLS ends.
 */
const FAULT_FILES = ['test/exactly-once.test.ts', 'test/rpc-exactly-once.test.ts', 'test/degraded-link.test.ts'];

/**
 * The WebSocket fast path over wss: the server's endpoint spoken by hand with
 * `ws`, and the client in Node (client/node/websocket.ts) on its own
 * WebSocket, servers from startServer(). The UpgradeProxy that kills,
 * refuses, mutes, records or rewrites upgraded connections
 * (test/client-websocket/helpers.ts) terminates TLS here on both sides, as a
 * TLS-inspecting middlebox does: it reads the frames in the clear between a
 * wss client and a wss server. websocket.test.ts and
 * client-websocket/{on-websocket,switches,no-websocket,resume-jump} check
 * that the upgrades they make came over TLS.
 */
const WEBSOCKET_FILES = [
  'test/websocket.test.ts',
  'test/client-websocket/on-websocket.test.ts',
  'test/client-websocket/switches.test.ts',
  'test/client-websocket/no-websocket.test.ts',
  'test/client-websocket/resume-jump.test.ts',
  'test/redis-websocket-cost.test.ts',
];

/**
 * Several nodes on one store behind the round-robin balancer
 * (test/helpers/nodes.ts and round-robin.ts, which speak TLS in this mode:
 * https from the client to the balancer and from the balancer to each node;
 * an upgrade it passes is wss to it and TLS to the node). The multi-node
 * files check that the balancer and the nodes are https.
 */
const MULTI_NODE_FILES = [
  'test/multi-node/round-robin.test.ts',
  'test/multi-node/round-robin-websocket.test.ts',
  'test/multi-node/stale-poll.test.ts',
  'test/multi-node/remote-acks.test.ts',
  'test/multi-node/websocket-takeover.test.ts',
  'test/multi-node/self-fence.test.ts',
  'test/multi-node/paused-owner.test.ts',
  'test/multi-node/abandoned-poll.test.ts',
  'test/multi-node/any-node.test.ts',
  'test/multi-node/handover.test.ts',
  'test/redis-store/two-servers.test.ts',
  'test/identity.test.ts',
];

/** Delivery exactly once without a proxy in front: session resume, commits, replies, closes, acks (startServer, startHoldline). */
const DELIVERY_FILES = [
  'test/session-resume.test.ts',
  'test/send-commit.test.ts',
  'test/rpc.test.ts',
  'test/close-race.test.ts',
  'test/poll-ack.test.ts',
  'test/immediate-reply.test.ts',
  'test/broadcast.test.ts',
];

/**
 * The longest any test or hook may run (as test:unit in package.json): a
 * hook that hangs (a clean-up after a failure) fails the run instead of
 * holding it until CI's own limit. node's --test-timeout also caps a test's
 * own larger `timeout`, so this is the largest of those (the package test's).
 */
const TEST_TIMEOUT_MS = 600_000;

function main(): number {
  // `tsx scripts/test-https.ts FILE...` runs just those files, in this mode.
  const asked = process.argv.slice(2);
  const files = asked.length > 0 ? asked : [...FILES, ...HOLDLINE_FILES, ...WEBSOCKET_FILES, ...MULTI_NODE_FILES, ...DELIVERY_FILES, ...FAULT_FILES];
  const dir = mkdtempSync(join(tmpdir(), 'holdline-tls-'));
  try {
    const { certFile } = makeTestCertificate(dir);
    const env = { ...process.env, HOLDLINE_TEST_TLS: '1', HOLDLINE_TEST_TLS_DIR: dir, NODE_EXTRA_CA_CERTS: certFile };
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-timeout=${TEST_TIMEOUT_MS}`, ...files], { stdio: 'inherit', env });
    if (r.error) throw r.error;
    return r.status ?? 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = main();
