/**
 * A plain round-robin load balancer for tests: every request goes to the
 * next upstream in turn (no stickiness of any kind), on 127.0.0.1, port 0.
 * Each endpoint takes its own turns, so that consecutive polls, and
 * consecutive sends, land on different nodes (with one shared turn, a
 * client that alternates send and poll would send every poll to one node).
 * It counts where each request went, per endpoint, so a test can show that
 * one client's consecutive requests landed on different nodes.
 *
 * In TLS mode (HOLDLINE_TEST_TLS=1, see tls.ts) it listens on https with the
 * run's certificate, as a balancer that terminates TLS does; it forwards to
 * each upstream in that upstream's own scheme (https to nodes from
 * nodes.ts, which are https servers in that mode too).
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createTestServer, testScheme } from './tls.js';

export interface RoundRobin {
  /** Origin of the balancer, e.g. http://127.0.0.1:PORT (https:// in TLS mode) */
  origin: string;
  /** Requests forwarded to each upstream, by path's last segment (e.g. counts[0].poll). */
  counts: Array<Record<string, number>>;
  /** The upstream index each request went to, in order. */
  trail: number[];
  /** Stop sending to upstream `i` (a node that left); requests go to the others. */
  drop(i: number): void;
  close(): Promise<void>;
}

export async function roundRobin(upstreams: string[]): Promise<RoundRobin> {
  const live = upstreams.map(() => true);
  const counts = upstreams.map(() => ({}) as Record<string, number>);
  const trail: number[] = [];
  const turns = new Map<string, number>();
  // One keep-alive agent: requests to one upstream reuse connections, as nginx's upstream keepalive does.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  // The same for https upstreams (TLS mode); made only if there are any.
  const tlsAgent = upstreams.some((u) => u.startsWith('https:')) ? new https.Agent({ keepAlive: true, maxSockets: 64 }) : undefined;

  const pick = (endpoint: string): number => {
    for (let n = 0; n < upstreams.length; n++) {
      const i = turns.get(endpoint) ?? 0;
      turns.set(endpoint, (i + 1) % upstreams.length);
      if (live[i]) return i;
    }
    return -1;
  };

  const server = createTestServer((req, res) => {
    const endpoint = (req.url ?? '').split('?')[0]?.split('/').pop() ?? '';
    const i = pick(endpoint);
    const target = i < 0 ? undefined : upstreams[i];
    if (target === undefined) {
      res.writeHead(502).end();
      return;
    }
    trail.push(i);
    const count = counts[i];
    if (count) count[endpoint] = (count[endpoint] ?? 0) + 1;
    const url = new URL(req.url ?? '/', target);
    const forward = (listener: (upRes: http.IncomingMessage) => void): http.ClientRequest =>
      url.protocol === 'https:' ? https.request(url, { method: req.method, headers: req.headers, agent: tlsAgent }, listener) : http.request(url, { method: req.method, headers: req.headers, agent }, listener);
    const up = forward((upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `${testScheme()}://127.0.0.1:${port}`,
    counts,
    trail,
    drop(i) {
      live[i] = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        tlsAgent?.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
