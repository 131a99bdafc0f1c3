/**
 * FaultProxy: a loopback TCP proxy for integration tests and benchmarks that
 * breaks HTTP/1.1 exchanges on purpose, reproducibly (seeded PRNG).
 *
 *   client ──► [client socket] ──── up lane ────► [upstream socket] ──► target
 *          ◄──                 ◄─── down lane ───                   ◄──
 *
 * - A Link is one proxied connection; a Lane is one direction of it: an
 *   ordered queue that applies latency, bandwidth pacing and stalls, and runs
 *   "kill" markers in order with the data (fault-proxy/link.ts).
 * - An HttpFramer per lane finds message boundaries (head, then Content-Length
 *   or chunked body), so faults are drawn per *exchange*, not per connection:
 *   keep-alive clients reuse a handful of sockets for thousands of requests
 *   (fault-proxy/http-framer.ts).
 * - Whatever the framer cannot follow (bad syntax, chunked request bodies, 101
 *   upgrades, close-delimited responses) turns the connection into plain
 *   pass-through (no more faults), counted in `stats.passThroughConnections`.
 *
 * Fault kinds, drawn when a request head is parsed:
 *   request          forward part of the request, then destroy both sockets
 *   before-response  the request was delivered; destroy as the response starts
 *   mid-response     forward part of the response (never all of it), destroy
 *   after-response   forward the whole response, destroy as soon as its last
 *                    byte is in the kernel: the client has it, the server
 *                    considers it delivered, the connection is gone
 * The two partial kinds hold the message back until its end (at most 1 MiB),
 * then forward a random prefix of it: cut points need the total length.
 *
 * In the tests' TLS mode (HOLDLINE_TEST_TLS=1, scripts/test-https.ts) it
 * terminates TLS on both sides, as a TLS-inspecting middlebox does: clients
 * speak https to it (`url`), it reads and breaks the exchanges in the clear,
 * and speaks TLS to the target (test/helpers/tls.ts). Elsewhere, the bench
 * among them, it is plain TCP.
 *
 * This file is the public entry: the options and their validation, the fault
 * decisions (seeded PRNG), the listening server and its counters.
 */
import net from 'node:net';
import { createRelayServer, testScheme } from './tls.js';
import { Link, type LinkContext } from './fault-proxy/link.js';

export type FaultKind = 'request' | 'mid-response' | 'after-response' | 'before-response';
export const FAULT_KINDS: readonly FaultKind[] = ['request', 'mid-response', 'after-response', 'before-response'];

export interface FaultProxyOptions {
  /** Where every connection is forwarded. Loopback only. */
  target: { host: string; port: number };
  /** Probability (0..1) that an exchange is faulted. Default 0. */
  killRate?: number;
  /** Kinds to choose from, uniformly. Default: all four. */
  faults?: readonly FaultKind[];
  /** Delay added to every chunk, in each direction. Default 0. */
  latencyMs?: number;
  /** Cap per direction per connection. Default: unlimited. */
  bandwidthBytesPerSec?: number;
  /** Drawn per incoming chunk: hold both directions of that connection for durationMs. */
  stall?: { probability: number; durationMs: number };
  /** PRNG seed (uint32). Default: random; read it back as `proxy.seed`. */
  seed?: number;
  /** Called synchronously with the decision for every request head parsed. */
  onDecision?: (decision: FaultDecision) => void;
}

export interface FaultDecision {
  /** 0-based index of the request across the whole proxy. */
  readonly request: number;
  readonly method: string;
  readonly target: string;
  readonly fault: FaultKind | null;
}

export interface FaultProxyStats {
  connections: number;
  /** Request heads parsed. */
  requests: number;
  /** Final (non-1xx) responses fully received from the target. */
  responses: number;
  /** Faults executed (sockets destroyed), by kind. */
  faults: { request: number; midResponse: number; afterResponse: number; beforeResponse: number; total: number };
  stalls: number;
  passThroughConnections: number;
}

/** mulberry32: tiny and fast; good enough to make a failing run reproducible. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------
// The proxy, and option validation (once, at construction).

function invalid(option: string, expected: string, value: unknown, range = false): never {
  const shown = typeof value === 'string' || Array.isArray(value) ? JSON.stringify(value) : String(value);
  const type = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  throw new (range ? RangeError : TypeError)(`FaultProxy: option "${option}" must be ${expected}; got ${shown} (${type})`);
}

function checkNumber(option: string, value: unknown, min: number, max: number, expected: string): number {
  if (typeof value !== 'number' || Number.isNaN(value)) return invalid(option, expected, value);
  return value >= min && value <= max ? value : invalid(option, expected, value, true);
}

export class FaultProxy {
  readonly seed: number;
  readonly #server: net.Server;
  readonly #links = new Set<Link>();
  readonly #stats: FaultProxyStats = {
    ...{ connections: 0, requests: 0, responses: 0, stalls: 0, passThroughConnections: 0 },
    faults: { request: 0, midResponse: 0, afterResponse: 0, beforeResponse: 0, total: 0 },
  };
  #killRate: number;
  #enabled = true;
  #closing: Promise<void> | undefined;

  constructor(options: FaultProxyOptions) {
    const { target, killRate = 0, faults = FAULT_KINDS, latencyMs = 0, bandwidthBytesPerSec, stall, seed, onDecision } = options;
    if (typeof target !== 'object' || target === null) invalid('target', '{ host, port }', target);
    const { host, port } = target;
    const loopback = host === 'localhost' || host === '::1' || (net.isIPv4(host) && host.startsWith('127.'));
    if (!loopback) invalid('target.host', 'a loopback address (127.x.x.x, ::1 or localhost)', host, true);
    checkNumber('target.port', port, 1, 65535, 'a port number in 1..65535');
    this.#killRate = checkNumber('killRate', killRate, 0, 1, 'a number in 0..1');
    if (!Array.isArray(faults) || faults.length === 0 || !faults.every((f) => FAULT_KINDS.includes(f))) {
      invalid('faults', `a non-empty array of ${FAULT_KINDS.map((k) => `'${k}'`).join(', ')}`, faults);
    }
    checkNumber('latencyMs', latencyMs, 0, 60_000, 'a number of ms in 0..60000');
    if (bandwidthBytesPerSec !== undefined) checkNumber('bandwidthBytesPerSec', bandwidthBytesPerSec, 1, 2 ** 40, 'a positive number');
    if (stall !== undefined) {
      if (typeof stall !== 'object' || stall === null) invalid('stall', '{ probability, durationMs }', stall);
      checkNumber('stall.probability', stall.probability, 0, 1, 'a number in 0..1');
      checkNumber('stall.durationMs', stall.durationMs, 0, 600_000, 'a number of ms in 0..600000');
    }
    if (seed !== undefined && !Number.isInteger(seed)) invalid('seed', 'an integer', seed);
    if (onDecision !== undefined && typeof onDecision !== 'function') invalid('onDecision', 'a function', onDecision);

    this.seed = seed === undefined ? Math.floor(Math.random() * 2 ** 32) : seed >>> 0;
    // Two streams, so stalls (drawn per chunk, timing-dependent) never shift fault decisions.
    const faultRng = mulberry32(this.seed);
    const stallRng = mulberry32(this.seed ^ 0x9e3779b9);
    const kinds = [...faults];
    const stats = this.#stats;
    const ctx: LinkContext = {
      stats,
      latencyMs,
      bandwidth: bandwidthBytesPerSec ?? 0,
      decide: (head) => {
        // Always three draws per request, so decision N depends only on the seed and N.
        const [roll, pick, frac] = [faultRng(), faultRng(), faultRng()];
        const faulted = this.#enabled && head.framing !== 'raw' && roll < this.#killRate;
        const fault = faulted ? kinds[Math.floor(pick * kinds.length)] : null;
        const request = stats.requests++;
        onDecision?.({ request, method: head.method, target: head.target, fault });
        return { method: head.method, fault, frac, started: false };
      },
      drawStall: () => {
        if (stall === undefined || stall.durationMs === 0 || stallRng() >= stall.probability) return 0;
        stats.stalls++;
        return stall.durationMs;
      },
    };
    this.#server = createRelayServer(
      (client) => {
        if (this.#closing !== undefined) return void client.destroy();
        stats.connections++;
        const link = new Link(ctx, client, { host, port });
        this.#links.add(link);
        void link.closed.then(() => this.#links.delete(link));
      },
      { allowHalfOpen: true, noDelay: true },
    );
  }

  /** Starts listening on 127.0.0.1, on a free port. */
  listen(): Promise<this> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', () => {
        this.#server.off('error', reject);
        resolve(this);
      });
    });
  }

  get port(): number {
    const address = this.#server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  get url(): string {
    return `${testScheme()}://127.0.0.1:${this.port}`;
  }

  /** A snapshot of the counters. */
  get stats(): FaultProxyStats {
    return { ...this.#stats, faults: { ...this.#stats.faults } };
  }

  setKillRate(rate: number): void {
    this.#killRate = checkNumber('killRate', rate, 0, 1, 'a number in 0..1');
  }

  /** Turns fault injection on or off; the PRNG keeps advancing, so a seed's sequence stays aligned. */
  setFaults(enabled: boolean): void {
    this.#enabled = enabled;
  }

  /** Stalls every open connection now, both directions, for durationMs. */
  stallNow(durationMs: number): void {
    const until = performance.now() + checkNumber('durationMs', durationMs, 0, 600_000, 'a number of ms in 0..600000');
    for (const link of this.#links) {
      link.stallUntil = Math.max(link.stallUntil, until);
      this.#stats.stalls++;
    }
  }

  /** Destroys every connection and stops listening; resolves once every socket has closed. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      const links = [...this.#links];
      for (const link of links) link.destroy();
      this.#server.close(() => void Promise.all(links.map((link) => link.closed)).then(() => resolve()));
    });
    return this.#closing;
  }
}

/** Creates a FaultProxy and waits until it listens. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  return new FaultProxy(options).listen();
}
