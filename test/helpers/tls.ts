/**
 * The integration tests' TLS mode. With HOLDLINE_TEST_TLS=1 the test servers
 * are https servers (https://127.0.0.1:PORT) with a self-signed certificate
 * made for the run; the clients trust it through NODE_EXTRA_CA_CERTS, which
 * node reads at start-up, so no test-only option reaches the product API.
 * scripts/test-https.ts sets all three variables and runs the files.
 *
 *   HOLDLINE_TEST_TLS=1
 *   HOLDLINE_TEST_TLS_DIR=<dir with key.pem and cert.pem>
 *   NODE_EXTRA_CA_CERTS=<dir>/cert.pem
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import tls, { TLSSocket } from 'node:tls';

export const KEY_FILE = 'key.pem';
export const CERT_FILE = 'cert.pem';

/** True when this test process runs in TLS mode. */
export function testTls(): boolean {
  return process.env.HOLDLINE_TEST_TLS === '1';
}

/** 'https' in TLS mode, else 'http'. */
export function testScheme(): 'http' | 'https' {
  return testTls() ? 'https' : 'http';
}

/**
 * Fails unless `url` has this mode's scheme: https: or wss: in TLS mode,
 * http: or ws: otherwise. A file in the https run asserts it, so that a
 * server or balancer made in the clear cannot pass for a TLS one.
 */
export function assertTestScheme(url: string, what: string): void {
  const scheme = new URL(url).protocol;
  const want = testTls() ? ['https:', 'wss:'] : ['http:', 'ws:'];
  assert.ok(want.includes(scheme), `${what} is ${scheme}, expected ${want.join(' or ')} (${testTls() ? 'TLS' : 'plain'} mode): ${url}`);
}

/**
 * Notes, for every upgrade request `server` gets (any path), whether it came
 * over TLS, in the order they came. It adds an 'upgrade' listener: a
 * HoldlineServer leaves upgrades to paths other than its own to the other
 * listeners when it has any (instead of answering 404), so use it only
 * where no upgrade goes elsewhere.
 */
export function upgradesOverTls(server: http.Server): boolean[] {
  const seen: boolean[] = [];
  server.on('upgrade', (req: http.IncomingMessage) => seen.push(req.socket instanceof TLSSocket && req.socket.encrypted));
  return seen;
}

let material: { key: Buffer; cert: Buffer } | undefined;

function tlsMaterial(): { key: Buffer; cert: Buffer } {
  if (material) return material;
  const dir = process.env.HOLDLINE_TEST_TLS_DIR;
  if (dir === undefined || dir === '') {
    throw new Error('HOLDLINE_TEST_TLS=1 needs HOLDLINE_TEST_TLS_DIR (a directory with key.pem and cert.pem): run the files through `npm run test:https`');
  }
  material = { key: readFileSync(join(dir, KEY_FILE)), cert: readFileSync(join(dir, CERT_FILE)) };
  return material;
}

/** A node:http server, or in TLS mode an https server with the run's certificate. */
export function createTestServer(listener?: http.RequestListener): http.Server {
  if (!testTls()) return http.createServer(listener);
  return https.createServer(tlsMaterial(), listener);
}

/**
 * The listening side of a test middlebox (a proxy that reads what it
 * relays): a TCP server, or in TLS mode a TLS server with the run's
 * certificate, which terminates the client's TLS so that `onConnection`
 * gets the bytes in the clear. Clients trust it as they trust the test
 * servers (NODE_EXTRA_CA_CERTS).
 */
export function createRelayServer(onConnection: (client: net.Socket) => void, options: net.ServerOpts = {}): net.Server {
  if (!testTls()) return net.createServer(options, onConnection);
  return tls.createServer({ ...options, ...tlsMaterial() }, onConnection);
}

/**
 * The upstream side of a test middlebox: a TCP connection to `host`
 * (127.0.0.1 unless given), or in TLS mode a TLS connection that checks the
 * test server's certificate (as a TLS-terminating proxy re-encrypts to its
 * backend), so that what is written goes in the clear to the relay and
 * encrypted on the wire.
 */
export function connectRelayUpstream(port: number, options: { host?: string; allowHalfOpen?: boolean; noDelay?: boolean } = {}): net.Socket {
  const { host = '127.0.0.1', ...rest } = options;
  if (!testTls()) return net.connect({ ...rest, host, port });
  return tls.connect({ ...rest, host, port, ca: tlsMaterial().cert });
}

/** `openssl`'s path; installs the Debian package when missing and running as root, else throws naming it. */
export function ensureOpenssl(): string {
  const which = spawnSync('which', ['openssl'], { encoding: 'utf8' });
  if (which.status === 0) return which.stdout.trim();
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) throw new Error('the openssl binary is missing: install the Debian package with `sudo apt-get install -y openssl`');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'openssl'], { stdio: 'inherit', env });
  const again = spawnSync('which', ['openssl'], { encoding: 'utf8' });
  if (again.status !== 0) throw new Error('apt-get installed openssl, but no openssl binary is on the PATH');
  return again.stdout.trim();
}

/**
 * Write a self-signed certificate for 127.0.0.1, ::1 and localhost, valid for
 * two days, and its key into `dir` (KEY_FILE, CERT_FILE). It is its own CA:
 * NODE_EXTRA_CA_CERTS=<dir>/cert.pem makes node trust it.
 */
export function makeTestCertificate(dir: string): { keyFile: string; certFile: string } {
  const openssl = ensureOpenssl();
  const keyFile = join(dir, KEY_FILE);
  const certFile = join(dir, CERT_FILE);
  execFileSync(
    openssl,
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=holdline test',
      '-addext',
      'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return { keyFile, certFile };
}
