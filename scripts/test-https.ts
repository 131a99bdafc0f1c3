/**
 * `npm run test:https`: the integration tests whose servers come from the
 * test helpers, run once more over https, the path users deploy.
 *
 * Makes a self-signed certificate for 127.0.0.1 in a temporary directory
 * (openssl; see test/helpers/tls.ts), then runs the files with
 *   HOLDLINE_TEST_TLS=1, HOLDLINE_TEST_TLS_DIR=<dir>, NODE_EXTRA_CA_CERTS=<dir>/cert.pem
 * node --test runs each file in a child process that inherits them: the
 * helpers start https servers, and the client (undici) trusts the
 * certificate as node does any CA from NODE_EXTRA_CA_CERTS, with no
 * test-only option in the product API.
 *
 * Not run here:
 * - files whose faults come from test/helpers/fault-proxy.ts (exactly-once,
 *   fault-proxy, degraded-link): it parses HTTP/1.1 framing to draw faults
 *   per exchange; TLS bytes are opaque to it, so it would pass everything
 *   through and those tests would prove nothing (or wait for faults that
 *   never come);
 * - files that build their own plain node:http servers (mounting, nat,
 *   middlebox, reverse-proxy, forward-proxy: squid and nginx set-ups are
 *   plain http by design).
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
];

/**
 * Servers from startHoldline() (test/helpers/holdline.ts, which speaks TLS in
 * this mode). Their tests that put a plain-http proxy in front (FaultProxy, a
 * black-holing or 413 proxy) skip themselves here (testTls()).
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
];

/**
 * The longest any test or hook may run (as test:unit in package.json): a
 * hook that hangs (a clean-up after a failure) fails the run instead of
 * holding it until CI's own limit. node's --test-timeout also caps a test's
 * own larger `timeout`, so this is the largest of those (the package test's).
 */
const TEST_TIMEOUT_MS = 600_000;

function main(): number {
  const files = [...FILES, ...HOLDLINE_FILES];
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
