/**
 * A plain round-robin load balancer for tests: every request goes to the
 * next upstream in turn (no stickiness of any kind), on 127.0.0.1, port 0.
 * Each endpoint takes its own turns, so that consecutive polls, and
 * consecutive sends, land on different nodes (with one shared turn, a
 * client that alternates send and poll would send every poll to one node).
 * It counts where each request went, per endpoint, so a test can show that
 * one client's consecutive requests landed on different nodes.
 *
 * WebSocket upgrades: by default it has no 'upgrade' listener, so node:http
 * forwards an upgrade as a plain request and the WebSocket fails, as behind
 * a balancer that does not pass upgrades. With `upgrades: true` it passes
 * them, as nginx with the upgrade headers does: each upgrade goes to the
 * next upstream on the endpoint's own turn (`counts[i].ws`), then the bytes
 * flow both ways as they are until either side closes (`cutUpgraded()`
 * destroys every such tunnel at once).
 *
 * In TLS mode (HOLDLINE_TEST_TLS=1, see tls.ts) it listens on https with the
 * run's certificate, as a balancer that terminates TLS does; it forwards to
 * each upstream in that upstream's own scheme (https to nodes from
 * nodes.ts, which are https servers in that mode too).
 */
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
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
  /** Send to upstream `i` again, in its turn. */
  restore(i: number): void;
  /** Destroy every upgraded connection open now (both its sides, no close frame); returns how many. */
  cutUpgraded(): number;
  close(): Promise<void>;
}

export interface RoundRobinOptions {
  /** Pass WebSocket upgrades through (see the top of this file). Default false. */
  upgrades?: boolean;
}

export async function roundRobin(upstreams: string[], options: RoundRobinOptions = {}): Promise<RoundRobin> {
  const live = upstreams.map(() => true);
  const counts = upstreams.map(() => ({}) as Record<string, number>);
  const trail: number[] = [];
  const turns = new Map<string, number>();
  // One keep-alive agent: requests to one upstream reuse connections, as nginx's upstream keepalive does.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  // The same for https upstreams (TLS mode); made only if there are any.
  const tlsAgent = upstreams.some((u) => u.startsWith('https:')) ? new https.Agent({ keepAlive: true, maxSockets: 64 }) : undefined;

  /** The client side of every upgraded connection open now. */
  const tunnels = new Set<Duplex>();

  const pick = (endpoint: string): number => {
    for (let n = 0; n < upstreams.length; n++) {
      const i = turns.get(endpoint) ?? 0;
      turns.set(endpoint, (i + 1) % upstreams.length);
      if (live[i]) return i;
    }
    return -1;
  };

  /** The upstream for a request to `url` on its endpoint's turn, counted; undefined when none is live. */
  const route = (url: string | undefined): string | undefined => {
    const endpoint = (url ?? '').split('?')[0]?.split('/').pop() ?? '';
    const i = pick(endpoint);
    const target = i < 0 ? undefined : upstreams[i];
    if (target === undefined) return undefined;
    trail.push(i);
    const count = counts[i];
    if (count) count[endpoint] = (count[endpoint] ?? 0) + 1;
    return target;
  };

  const server = createTestServer((req, res) => {
    const target = route(req.url);
    if (target === undefined) {
      res.writeHead(502).end();
      return;
    }
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
  if (options.upgrades === true) {
    server.on('upgrade', (req: http.IncomingMessage, client: Duplex, rest: Buffer) => {
      client.on('error', () => {});
      const target = route(req.url);
      if (target === undefined) {
        client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
      }
      const url = new URL(target);
      const port = Number(url.port);
      // To each upstream in its own scheme; in TLS mode the run's certificate is trusted (NODE_EXTRA_CA_CERTS).
      const upstream = url.protocol === 'https:' ? tls.connect({ host: url.hostname, port }) : net.connect({ host: url.hostname, port });
      upstream.on('error', () => client.destroy());
      upstream.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
        // The request head as it came (rawHeaders keep the client's names and order), then what followed it.
        let head = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1\r\n`;
        for (let k = 0; k + 1 < req.rawHeaders.length; k += 2) head += `${req.rawHeaders[k] ?? ''}: ${req.rawHeaders[k + 1] ?? ''}\r\n`;
        upstream.write(`${head}\r\n`);
        if (rest.length > 0) upstream.write(rest);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      tunnels.add(client);
      client.on('close', () => {
        tunnels.delete(client);
        upstream.destroy();
      });
      upstream.on('close', () => client.destroy());
    });
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `${testScheme()}://127.0.0.1:${port}`,
    counts,
    trail,
    drop(i) {
      live[i] = false;
    },
    restore(i) {
      live[i] = true;
    },
    cutUpgraded() {
      const n = tunnels.size;
      for (const t of [...tunnels]) t.destroy();
      return n;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of [...tunnels]) t.destroy();
        agent.destroy();
        tlsAgent?.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
