/**
 * Which proxy a URL goes through: the `proxy` option, else HTTP_PROXY /
 * HTTPS_PROXY / NO_PROXY (either case, as curl reads them), and the error a
 * proxy that wants credentials gives.
 */
import { HoldlineError } from '../../shared/index.js';

export const PROXY_ENV = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy'];

export const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'http:': 80, 'ws:': 80, 'https:': 443, 'wss:': 443 };

/**
 * The proxy for `target`, or undefined: the same choice undici's
 * EnvHttpProxyAgent makes for requests (the `proxy` option, else
 * http_proxy/HTTP_PROXY, https_proxy/HTTPS_PROXY falling back to it; hosts in
 * no_proxy/NO_PROXY, with or without a port, and their subdomains, go direct).
 */
export function proxyFor(target: URL, option: string | undefined): URL | undefined {
  const env = process.env;
  const secure = target.protocol === 'wss:' || target.protocol === 'https:';
  const httpProxy = option ?? env.http_proxy ?? env.HTTP_PROXY;
  const chosen = secure ? (option ?? env.https_proxy ?? env.HTTPS_PROXY ?? httpProxy) : httpProxy;
  if (!chosen) return undefined;
  const noProxy = env.no_proxy ?? env.NO_PROXY ?? '';
  const hostname = target.host.replace(/:\d*$/, '').toLowerCase();
  const port = Number.parseInt(target.port, 10) || DEFAULT_PORTS[target.protocol] || 0;
  const entries = noProxy.split(/[,\s]/).filter((e) => e !== '');
  if (noProxy === '*') return undefined;
  for (const entry of entries) {
    const m = /^(.+):(\d+)$/.exec(entry);
    const host = (m?.[1] ?? entry).replace(/^\*?\./, '').toLowerCase();
    const entryPort = m?.[2] === undefined ? 0 : Number.parseInt(m[2], 10);
    if (entryPort !== 0 && entryPort !== port) continue;
    if (hostname === host || hostname.endsWith(`.${host}`)) return undefined;
  }
  try {
    return new URL(chosen);
  } catch {
    return undefined;
  }
}

export function proxyAuthError(detail: string): HoldlineError {
  return new HoldlineError(
    'proxy_auth_required',
    `the proxy requires authentication (${detail}); put credentials in the proxy URL (http://user:pass@host:port) or the "proxy" option`,
  );
}
