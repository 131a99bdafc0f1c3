/**
 * Which proxy a URL goes through: the `proxy` option, else HTTP_PROXY /
 * HTTPS_PROXY / NO_PROXY (either case, as curl reads them), and the error a
 * proxy that wants credentials gives.
 */
import { HoldlineError } from '../../shared/index.js';
import type { ProxySetting } from '../options.js';

export interface ProxyCredentials {
  user: string;
  password: string;
  /** Windows domain for NTLM ('' when none). */
  domain: string;
}

/** A proxy to go through: where it is (no credentials in it) and who to be there. */
export interface ProxyEndpoint {
  url: URL;
  creds: ProxyCredentials | undefined;
  /** Tells endpoints apart (lanes are kept per endpoint and origin). */
  key: string;
}

export const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'http:': 80, 'ws:': 80, 'https:': 443, 'wss:': 443 };

/**
 * The proxy endpoint for `target` under the `proxy` option (a URL, or
 * { url, username, password, domain }), else the environment. Credentials:
 * the option's fields, else the URL's user:pass@ (`DOMAIN%5Cuser` for a
 * Windows domain).
 */
export function endpointFor(target: URL, setting: ProxySetting | undefined): ProxyEndpoint | undefined {
  const option = setting === undefined ? undefined : typeof setting === 'string' ? setting : 'url' in setting ? setting.url : undefined;
  const url = proxyUrlFor(target, option);
  if (url === undefined) return undefined;
  return endpoint(url, typeof setting === 'object' && 'url' in setting ? setting : undefined);
}

export function endpoint(url: URL, fields: { username?: string; password?: string; domain?: string } | undefined): ProxyEndpoint {
  let user = fields?.username ?? decodeURIComponent(url.username);
  const password = fields?.password ?? decodeURIComponent(url.password);
  let domain = fields?.domain ?? '';
  const slash = user.indexOf('\\');
  if (fields?.domain === undefined && slash !== -1) {
    domain = user.slice(0, slash);
    user = user.slice(slash + 1);
  }
  const bare = new URL(url.href);
  bare.username = '';
  bare.password = '';
  const creds = user === '' && password === '' ? undefined : { user, password, domain };
  return { url: bare, creds, key: `${bare.origin}|${domain}\\${user}` };
}

/**
 * The proxy for `target`, or undefined: the same choice undici's
 * EnvHttpProxyAgent makes for requests (the `proxy` option, else
 * http_proxy/HTTP_PROXY, https_proxy/HTTPS_PROXY falling back to it; hosts in
 * no_proxy/NO_PROXY, with or without a port, and their subdomains, go direct).
 */
function proxyUrlFor(target: URL, option: string | undefined): URL | undefined {
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

/** A proxy that answered with a refusal of its own (an ACL's 403, a 502 it could not connect): proxy_refused, naming the proxy. */
export function proxyRefused(proxy: URL, what: string, status: number, squidError: string | undefined): HoldlineError {
  const detail = squidError === undefined ? '' : ` (${squidError})`;
  return new HoldlineError('proxy_refused', `the proxy ${proxy.host} refused ${what}: HTTP ${status}${detail}`, { status });
}
