/** A CONNECT tunnel through a proxy, for a WebSocket. */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { HoldlineError } from '../../shared/index.js';
import { proxyAuthError } from './proxy-config.js';

/**
 * A CONNECT tunnel to `host:port` (host as in a URL: IPv6 in brackets)
 * through `proxy`, with Basic Proxy-Authorization from its user:pass@.
 * Rejects with proxy_auth_required on a 407, network_error otherwise.
 */
export function connectTunnel(proxy: URL, host: string, port: number, signal: AbortSignal): Promise<net.Socket> {
  return new Promise<net.Socket>((resolve, reject) => {
    const authority = `${host}:${port}`;
    const headers: Record<string, string> = { host: authority };
    if (proxy.username !== '' || proxy.password !== '') {
      const user = decodeURIComponent(proxy.username);
      const pass = decodeURIComponent(proxy.password);
      headers['proxy-authorization'] = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    }
    const secureProxy = proxy.protocol === 'https:';
    const req = (secureProxy ? https : http).request({
      host: proxy.hostname.replace(/^\[|\]$/g, ''),
      port: Number.parseInt(proxy.port, 10) || (secureProxy ? 443 : 80),
      method: 'CONNECT',
      path: authority,
      headers,
      agent: false,
      signal,
    });
    req.once('connect', (res: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      const status = res.statusCode ?? 0;
      if (status === 200) {
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
        return;
      }
      socket.destroy();
      reject(status === 407
        ? proxyAuthError('407 to CONNECT')
        : new HoldlineError('network_error', `the proxy refused CONNECT ${authority} (HTTP ${status})`, { status }));
    });
    // A proxy that answers CONNECT with a body-bearing non-2xx comes as 'response' on some versions.
    req.once('response', (res: http.IncomingMessage) => {
      res.resume();
      const status = res.statusCode ?? 0;
      reject(status === 407 ? proxyAuthError('407 to CONNECT') : new HoldlineError('network_error', `the proxy refused CONNECT ${authority} (HTTP ${status})`, { status }));
    });
    req.once('error', (e) => reject(e instanceof HoldlineError ? e : new HoldlineError('network_error', `CONNECT ${authority} through the proxy failed: ${e.message}`, { cause: e })));
    req.end();
  });
}
