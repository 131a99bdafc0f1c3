/**
 * `holdline doctor URL` as a library function: walks the path to a Holdline
 * server as the Node client would, and says what it found, for a support
 * engineer to paste:
 * - which proxy applies, and why (the `proxy` option, a PAC file's answer,
 *   HTTP(S)_PROXY, NO_PROXY, none);
 * - whether the proxy wants authentication, which schemes it offers, and
 *   which one the client would answer with;
 * - how long a held poll survives: one poll asked to hold `maxHoldMs`, timed
 *   until it is answered or cut (squid's read_timeout, nginx, a NAT), and the
 *   hold to use below the cut;
 * - whether a WebSocket gets through.
 * It opens one real session (closed at the end); the server's pollTimeoutMs
 * caps the hold it can measure.
 */
import http from 'node:http';
import { HoldlineClient } from '../index.js';
import type { ProxySetting } from '../options.js';
import { parseChallenges, type ProxyScheme } from './proxy-auth.js';
import { endpointFor, type ProxyEndpoint } from './proxy-config.js';
import { PacRouter } from './proxy-pac.js';

/** The suggested hold is this share of the measured cut (as the client's own hold advisor). */
const MARGIN = 0.8;
const PROBE_TIMEOUT_MS = 5_000;
const SAMPLE_MS = 50;

export interface DiagnoseOptions {
  /** As the client's `proxy` option; default: the environment. */
  proxy?: ProxySetting;
  /** The hold to try (ms). Default 60 s; the server's pollTimeoutMs caps it. */
  maxHoldMs?: number;
  /** Skip the WebSocket check. */
  skipWebSocket?: boolean;
  /** Called with a line of progress before each step. */
  log?: (line: string) => void;
}

export interface DiagnosisReport {
  url: string;
  proxy: { url: string | null; why: string };
  auth: { required: boolean; offered: ProxyScheme[]; answeredWith: ProxyScheme | null; haveCredentials: boolean; note: string };
  session: { opened: boolean; error: string | null };
  hold: { askedMs: number; grantedMs: number | null; cutAfterMs: number | null; heldFullMs: number | null; suggestedHoldMs: number | null };
  websocket: { gotThrough: boolean; detail: string };
  /** The client options to use, from what was found. */
  suggestion: { holdMs: number | null; transports: ('polling' | 'websocket')[] };
}

async function whichProxy(target: URL, setting: ProxySetting | undefined): Promise<{ proxy: ProxyEndpoint | undefined; why: string }> {
  if (typeof setting === 'object' && 'pac' in setting) {
    const pac = new PacRouter(setting.pac, setting);
    const answer = await pac.answer(target);
    return { proxy: await pac.route(target), why: `the PAC file ${setting.pac} answered ${JSON.stringify(answer)}` };
  }
  const proxy = endpointFor(target, setting);
  if (setting !== undefined) return { proxy, why: proxy === undefined ? 'the "proxy" option names one, but NO_PROXY lists this host' : 'the "proxy" option' };
  const env = process.env;
  const named = ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY'].filter((k) => env[k]);
  if (proxy !== undefined) {
    const secure = target.protocol === 'https:';
    const used = (secure ? ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY'] : ['http_proxy', 'HTTP_PROXY']).find((k) => env[k]);
    return { proxy, why: `the environment (${used ?? named.join(', ')})` };
  }
  if (named.length > 0) return { proxy, why: `NO_PROXY (${env.no_proxy ?? env.NO_PROXY ?? ''}) lists this host; ${named.join(', ')} not used` };
  return { proxy, why: 'no proxy option, PAC file or HTTP(S)_PROXY: direct' };
}

/** Asks the proxy without credentials (absolute-form HEAD for http://, CONNECT for https://): its status and the schemes it offers. */
function probeProxy(proxy: ProxyEndpoint, target: URL): Promise<{ status: number; offered: ProxyScheme[] }> {
  return new Promise((resolve, reject) => {
    const secure = target.protocol === 'https:';
    const port = target.port === '' ? (secure ? 443 : 80) : Number(target.port);
    const req = http.request({
      host: proxy.url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(proxy.url.port) || 80,
      method: secure ? 'CONNECT' : 'HEAD',
      path: secure ? `${target.hostname}:${port}` : target.href,
      headers: { host: target.host },
      agent: false,
      timeout: PROBE_TIMEOUT_MS,
    });
    const done = (status: number, headers: http.IncomingHttpHeaders): void => {
      req.destroy();
      resolve({ status, offered: [...new Set(parseChallenges(headers['proxy-authenticate']).map((c) => c.scheme))] });
    };
    req.once('connect', (res: http.IncomingMessage, socket) => {
      socket.destroy();
      done(res.statusCode ?? 0, res.headers);
    });
    req.once('response', (res: http.IncomingMessage) => {
      res.resume();
      done(res.statusCode ?? 0, res.headers);
    });
    req.once('timeout', () => req.destroy(new Error(`no answer from the proxy in ${PROBE_TIMEOUT_MS} ms`)));
    req.once('error', reject);
    req.end();
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Holds one poll as long as the path allows: the age it was cut at, or how long it held in full. */
async function measureHold(c: HoldlineClient, grantedMs: number): Promise<{ cutAfterMs: number | null; heldFullMs: number | null }> {
  const deadline = Date.now() + grantedMs + 10_000;
  let polls = c.stats.polls;
  let started = performance.now();
  while (Date.now() < deadline) {
    await sleep(SAMPLE_MS);
    const s = c.stats;
    if (s.pollCuts > 0) return { cutAfterMs: Math.round(performance.now() - started), heldFullMs: null };
    if (s.polls !== polls) {
      const age = performance.now() - started;
      // A poll came back (answered) and the next went out: held in full when it lasted about the hold.
      if (age >= grantedMs * 0.9) return { cutAfterMs: null, heldFullMs: Math.round(age) };
      polls = s.polls;
      started = performance.now();
    }
  }
  return { cutAfterMs: null, heldFullMs: null };
}

async function checkWebSocket(url: string, proxy: ProxySetting | undefined): Promise<{ gotThrough: boolean; detail: string }> {
  const c = new HoldlineClient(url, { ...(proxy === undefined ? {} : { proxy }), transports: ['polling', 'websocket'], connectTimeoutMs: PROBE_TIMEOUT_MS });
  const errors: string[] = [];
  c.on('error', (e) => errors.push(`${e.code}: ${e.message}`));
  try {
    await c.connect();
    const until = Date.now() + PROBE_TIMEOUT_MS;
    while (c.transport !== 'websocket' && Date.now() < until) await sleep(SAMPLE_MS);
    if (c.transport === 'websocket') return { gotThrough: true, detail: 'the session moved to a WebSocket' };
    return { gotThrough: false, detail: `still on polling after ${PROBE_TIMEOUT_MS} ms${errors.length > 0 ? ` (${errors.join('; ')})` : ' (the upgrade or the CONNECT tunnel was refused, or the server has no WebSockets)'}` };
  } catch (e) {
    return { gotThrough: false, detail: `no session: ${e instanceof Error ? e.message : String(e)}` };
  } finally {
    await c.close().catch(() => undefined);
  }
}

export async function diagnose(url: string, options: DiagnoseOptions = {}): Promise<{ report: DiagnosisReport; text: string }> {
  const target = new URL(url);
  const askedMs = options.maxHoldMs ?? 60_000;
  const log = options.log ?? (() => {});
  log(`which proxy applies to ${url}`);
  const { proxy, why } = await whichProxy(target, options.proxy);
  const haveCredentials = proxy?.creds !== undefined;
  const auth: DiagnosisReport['auth'] = { required: false, offered: [], answeredWith: null, haveCredentials, note: 'no proxy' };
  if (proxy !== undefined) {
    log(`asking ${proxy.url.host} whether it wants authentication`);
    try {
      const probe = await probeProxy(proxy, target);
      auth.required = probe.status === 407;
      auth.offered = probe.offered;
      const pick = (['NTLM', 'Digest', 'Basic'] as const).find((s) => probe.offered.includes(s));
      auth.answeredWith = auth.required && haveCredentials && pick !== undefined ? pick : null;
      auth.note = !auth.required
        ? `the proxy let an unauthenticated request through (HTTP ${probe.status})`
        : pick === undefined
          ? `the proxy asks only for ${probe.offered.join(', ') || 'an unnamed scheme'}, which the client cannot answer`
          : haveCredentials
            ? `the client answers with ${pick}`
            : `credentials are needed (${pick}): put them in the proxy URL or the "proxy" option`;
    } catch (e) {
      auth.note = `the proxy could not be asked: ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  const session: DiagnosisReport['session'] = { opened: false, error: null };
  const hold: DiagnosisReport['hold'] = { askedMs, grantedMs: null, cutAfterMs: null, heldFullMs: null, suggestedHoldMs: null };
  const c = new HoldlineClient(url, { ...(options.proxy === undefined ? {} : { proxy: options.proxy }), transports: ['polling'], holdMs: askedMs, connectTimeoutMs: 15_000 });
  c.on('error', () => {});
  log(`opening a session and holding a poll for up to ${askedMs} ms`);
  try {
    await c.connect();
    session.opened = true;
    hold.grantedMs = c.stats.holdMs;
    const m = await measureHold(c, c.stats.holdMs);
    hold.cutAfterMs = m.cutAfterMs;
    hold.heldFullMs = m.heldFullMs;
    hold.suggestedHoldMs = m.cutAfterMs !== null ? Math.floor(m.cutAfterMs * MARGIN) : m.heldFullMs !== null ? hold.grantedMs : null;
  } catch (e) {
    session.error = e instanceof Error ? e.message : String(e);
  } finally {
    await c.close().catch(() => undefined);
  }

  if (options.skipWebSocket !== true && session.opened) log('trying a WebSocket');
  const websocket = options.skipWebSocket === true || !session.opened
    ? { gotThrough: false, detail: session.opened ? 'not checked' : 'not checked: no session' }
    : await checkWebSocket(url, options.proxy);
  const report: DiagnosisReport = {
    url,
    proxy: { url: proxy === undefined ? null : proxy.url.href, why },
    auth,
    session,
    hold,
    websocket,
    suggestion: { holdMs: hold.suggestedHoldMs, transports: websocket.gotThrough ? ['polling', 'websocket'] : ['polling'] },
  };
  return { report, text: toText(report) };
}

function toText(r: DiagnosisReport): string {
  const lines = [
    `holdline doctor ${r.url}`,
    `proxy:      ${r.proxy.url ?? 'none (direct)'}: ${r.proxy.why}`,
    `auth:       ${r.proxy.url === null ? '-' : `${r.auth.required ? `required, offered ${r.auth.offered.join(', ') || '(none named)'}` : 'not required'}; ${r.auth.note}`}`,
    `session:    ${r.session.opened ? 'opened' : `not opened: ${r.session.error ?? ''}`}`,
    `hold:       asked ${r.hold.askedMs} ms, server granted ${r.hold.grantedMs ?? '-'} ms; ${
      r.hold.cutAfterMs !== null ? `a held poll was cut after ${r.hold.cutAfterMs} ms` : r.hold.heldFullMs !== null ? `a poll held in full (${r.hold.heldFullMs} ms)` : 'not measured'
    }`,
    `websocket:  ${r.websocket.gotThrough ? 'gets through' : 'does not get through'}: ${r.websocket.detail}`,
    `use:        holdMs ${r.suggestion.holdMs ?? '(default)'}, transports ${JSON.stringify(r.suggestion.transports)}`,
  ];
  return lines.join('\n');
}
