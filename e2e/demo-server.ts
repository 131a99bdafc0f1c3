/**
 * The demo: a chat room over Holdline. `npm start` runs this file
 * (PORT, default 3000; HOST, default localhost; a port in use is a one-line
 * message naming PORT); the e2e tests import `startDemoServer()` and run it
 * on port 0.
 *
 * - GET /                 the page (e2e/public/index.html, app.js, style.css)
 * - GET /lib/*.js         the browser bundles (dist/browser; built on start when missing or stale)
 * - POST /holdline/*      the Holdline endpoints (`hl.handler()` on plain node:http)
 * - GET /holdline/ws      the WebSocket fast path (`hl.upgradeHandler()` on the 'upgrade' event;
 *                         404 when the server offers none: holdline.transports ['polling'])
 * - GET /stats            sessions and request counts, as JSON (for tests and the curious)
 * - POST /demo/leave      {sid, key}: the page went away and its session with it (sent with
 *                         navigator.sendBeacon on pagehide, unless another tab takes the
 *                         session over or the page resumes it), so it closes now rather than after
 *                         sessionIdleTimeoutMs; `key` is the one the session's welcome carried
 *
 * Who posts: the page's `auth` option carries its name ({name}) in every
 * open; the server's `authenticate` hook keeps it as `session.data`, and
 * every post of the session goes out under it (a new name takes effect
 * with the next session, e.g. after a reload).
 *
 * The chat protocol is JSON text over the channel:
 *   page -> server  {type:'post', id, text}         a message; `id` is the page's, for de-duplication
 *                   {type:'sync'}                    "send me the recent history"
 *   server -> page  {type:'welcome', key}            first, to each new session: the key for /demo/leave
 *                   {type:'chat', srv, message}      broadcast to every session
 *                   {type:'history', srv, messages}  to the session that asked
 *                   {type:'presence', sessions}      broadcast when the session count changes
 * Each message gets a number `n` in server order (`srv` names the server
 * instance: a restarted one counts from 1 again); pages show messages sorted
 * by (instance, n) and once per id, so history merged after a reset never
 * duplicates.
 * Posts are de-duplicated by `id`, for an application that posts again what
 * a `reset` listed as lost (the transport itself should never repeat one:
 * the tests check that `duplicatesDropped` stays 0, across changes of
 * leader among tabs too).
 * Everything lives in memory: a restart forgets sessions and history.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HoldlineServer, type HoldlineServerOptions, type Payload, type Session } from '../server/index.js';
import { BROWSER_DIST, ensureBrowserBundle } from '../scripts/build-browser.js';

const PUBLIC = join(resolve(fileURLToPath(import.meta.url), '..'), 'public');

export interface ChatMessage {
  /** Server order, from 1. */
  n: number;
  /** The posting page's id for it. */
  id: string;
  name: string;
  text: string;
  /** Server time, ms since the epoch. */
  at: number;
}

export interface DemoServerOptions {
  /** Default 3000; 0 picks a free port. */
  port?: number;
  /** Default 'localhost'. */
  host?: string;
  /** Passed to HoldlineServer (pollTimeoutMs, sessionIdleTimeoutMs, allowedOrigins, ...). */
  holdline?: HoldlineServerOptions;
  /** Recent messages kept for newcomers. Default 100. */
  historySize?: number;
  /** Build the browser bundle when missing or stale. Default true. */
  buildBundle?: boolean;
  /** Where to log; default nowhere. */
  log?: (line: string) => void;
}

export interface DemoStats {
  /** Sessions open on the server now. */
  sessions: number;
  /** Sessions opened since start. */
  sessionsOpened: number;
  /** Chat messages accepted (repeats not counted). */
  messages: number;
  /** Posts dropped as repeats of an id already seen. */
  duplicatesDropped: number;
  /** Requests to the Holdline endpoints, by "METHOD /endpoint", e.g. "POST /poll", "OPTIONS /send". */
  requests: Record<string, number>;
  /** WebSocket upgrades to /holdline/ws that Holdline took. */
  webSockets: number;
  /** Upgrade requests answered 404 (another path, or no WebSockets offered). */
  upgradesRefused: number;
  /** POST /demo/leave requests received, whatever they carried. */
  leaveRequests: number;
  /** Sessions closed by their page's /demo/leave. */
  sessionsLeft: number;
}

export interface DemoServer {
  readonly host: string;
  readonly port: number;
  /** e.g. http://127.0.0.1:3000 (no trailing slash). */
  readonly origin: string;
  /** The Holdline endpoint URL: origin + '/holdline'. */
  readonly channelUrl: string;
  readonly holdline: HoldlineServer;
  stats(): DemoStats;
  history(): ChatMessage[];
  /** Close every session (clients see `server_shutdown`), stop listening, drop connections. */
  stop(): Promise<void>;
}

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: join(PUBLIC, 'index.html'), type: 'text/html; charset=utf-8' },
  '/index.html': { file: join(PUBLIC, 'index.html'), type: 'text/html; charset=utf-8' },
  '/app.js': { file: join(PUBLIC, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: join(PUBLIC, 'style.css'), type: 'text/css; charset=utf-8' },
};
for (const name of ['holdline.js', 'holdline-tabs.js']) {
  STATIC[`/lib/${name}`] = { file: join(BROWSER_DIST, name), type: 'text/javascript; charset=utf-8' };
  STATIC[`/lib/${name}.map`] = { file: join(BROWSER_DIST, `${name}.map`), type: 'application/json; charset=utf-8' };
}

const PAGE_HEADERS = {
  'Cache-Control': 'no-cache',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy':
    "default-src 'self'; connect-src 'self' http: https: ws: wss:; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
};

const MAX_NAME = 32;
const MAX_TEXT = 1000;
const MAX_ID = 64;
const SEEN_IDS = 10_000;

/** Who a session is: what `authenticate` made of the page's `auth`. */
export interface ChatIdentity {
  name: string;
}

/** The name a page asked for, cleaned up. */
function nameOf(auth: Readonly<Record<string, unknown>> | undefined): string {
  const name = auth?.name;
  return (typeof name === 'string' ? name.trim() : '').slice(0, MAX_NAME) || 'anonymous';
}

function parseInbound(data: Payload): { type: 'post'; id: string; text: string } | { type: 'sync' } | undefined {
  if (typeof data !== 'string' || data.length > 4 * MAX_TEXT) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (o.type === 'sync') return { type: 'sync' };
  if (o.type !== 'post') return undefined;
  if (typeof o.id !== 'string' || o.id === '' || o.id.length > MAX_ID) return undefined;
  if (typeof o.text !== 'string') return undefined;
  const text = o.text.trim().slice(0, MAX_TEXT);
  if (text === '') return undefined;
  return { type: 'post', id: o.id, text };
}

export async function startDemoServer(options: DemoServerOptions = {}): Promise<DemoServer> {
  const port = options.port ?? 3000;
  const host = options.host ?? 'localhost';
  const historySize = options.historySize ?? 100;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`option "port" must be 0..65535, got ${String(port)}`);
  if (!Number.isInteger(historySize) || historySize < 0) throw new TypeError(`option "historySize" must be an integer >= 0, got ${String(historySize)}`);
  const log = options.log ?? (() => undefined);
  if (options.buildBundle !== false && (await ensureBrowserBundle())) log('built dist/browser');

  const hl = new HoldlineServer<Payload, Payload, ChatIdentity>({
    // The name comes from the page's `auth` option, not from the messages.
    authenticate: (_req, auth) => ({ name: nameOf(auth) }),
    ...(options.holdline as HoldlineServerOptions<ChatIdentity> | undefined),
  });
  hl.on('error', (e) => log(`holdline error: ${String(e)}`));
  const history: ChatMessage[] = [];
  const seen = new Set<string>();
  const stats: DemoStats = { sessions: 0, sessionsOpened: 0, messages: 0, duplicatesDropped: 0, requests: {}, webSockets: 0, upgradesRefused: 0, leaveRequests: 0, sessionsLeft: 0 };
  /** Session id -> the key its page must show to close it through /demo/leave. */
  const leaveKeys = new Map<string, string>();
  let lastN = 0;
  let stopped = false;
  /** This server instance: a restarted server numbers messages from 1 again. */
  const srv = randomBytes(6).toString('hex');

  const broadcast = (value: unknown) => {
    if (stopped) return;
    hl.broadcast(JSON.stringify(value)).catch((e: unknown) => log(`broadcast failed: ${String(e)}`));
  };
  const presence = () => broadcast({ type: 'presence', sessions: hl.sessionCount });

  const onMessage = (session: Session<Payload, Payload, ChatIdentity>, data: Payload) => {
    const m = parseInbound(data);
    if (!m) return;
    if (m.type === 'sync') {
      session.send(JSON.stringify({ type: 'history', srv, messages: history, sessions: hl.sessionCount })).catch(() => undefined);
      return;
    }
    if (seen.has(m.id)) {
      stats.duplicatesDropped++;
      return;
    }
    seen.add(m.id);
    if (seen.size > SEEN_IDS) {
      const oldest = seen.values().next();
      if (!oldest.done) seen.delete(oldest.value);
    }
    const message: ChatMessage = { n: ++lastN, id: m.id, name: session.data.name, text: m.text, at: Date.now() };
    history.push(message);
    if (history.length > historySize) history.splice(0, history.length - historySize);
    stats.messages++;
    broadcast({ type: 'chat', srv, message });
  };

  hl.on('session', (session) => {
    stats.sessionsOpened++;
    log(`session ${session.id} opened (${hl.sessionCount} open)`);
    const key = randomBytes(16).toString('hex');
    leaveKeys.set(session.id, key);
    session.send(JSON.stringify({ type: 'welcome', key })).catch(() => undefined);
    session.on('message', (data) => onMessage(session, data));
    session.on('close', (reason) => {
      leaveKeys.delete(session.id);
      log(`session ${session.id} closed: ${reason.code} (${hl.sessionCount} open)`);
      presence();
    });
    // After this session's open response has been written.
    setTimeout(presence, 0);
  });

  const channel = hl.handler({ path: '/holdline' });

  /** POST /demo/leave {sid, key}: close the session of a page that went away. Always 204: it tells nothing. */
  const leave = (req: http.IncomingMessage, res: http.ServerResponse) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > 512) req.destroy();
    });
    req.on('end', () => {
      res.writeHead(204, { 'Cache-Control': 'no-store', 'Access-Control-Allow-Origin': '*' }).end();
      let v: unknown;
      try {
        v = JSON.parse(body);
      } catch {
        return;
      }
      const { sid, key } = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
      if (typeof sid !== 'string' || typeof key !== 'string' || leaveKeys.get(sid) !== key) return;
      const session = hl.session(sid);
      if (!session) return;
      stats.sessionsLeft++;
      session.close({ code: 'client_closed', message: 'the page went away' });
    });
  };

  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    if (path === '/holdline' || path.startsWith('/holdline/')) {
      const key = `${req.method ?? '?'} ${path.slice('/holdline'.length) || '/'}`;
      stats.requests[key] = (stats.requests[key] ?? 0) + 1;
      channel(req, res);
      return;
    }
    if (path === '/demo/leave' && req.method === 'POST') {
      stats.leaveRequests++;
      leave(req, res);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    if (path === '/stats') {
      const body = JSON.stringify({ ...stats, sessions: hl.sessionCount, requests: { ...stats.requests } });
      res.writeHead(200, {
        'Content-Type': 'application/json; charset=utf-8',
        'Cache-Control': 'no-store',
        'Access-Control-Allow-Origin': '*',
        'Content-Length': Buffer.byteLength(body),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const entry = STATIC[path];
    if (!entry) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    readFile(entry.file).then(
      (body) => {
        res.writeHead(200, { ...PAGE_HEADERS, 'Content-Type': entry.type, 'Content-Length': body.length });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      () => {
        res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${path} is missing (build it: npm run build:browser)\n`);
      },
    );
  });

  // The WebSocket fast path: Holdline takes upgrades to /holdline/ws; anything else is answered 404.
  const takeUpgrade = hl.upgradeHandler({ path: '/holdline' });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!stopped && takeUpgrade(req, socket, head)) {
      stats.webSockets++;
      return;
    }
    stats.upgradesRefused++;
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });

  await new Promise<void>((resolveListen, rejectListen) => {
    server.once('error', rejectListen);
    server.listen(port, host, () => {
      server.off('error', rejectListen);
      resolveListen();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const origin = `http://${host === 'localhost' ? 'localhost' : urlHost}:${address.port}`;

  let stopping: Promise<void> | undefined;
  return {
    host,
    port: address.port,
    origin,
    channelUrl: `${origin}/holdline`,
    holdline: hl,
    stats: () => ({ ...stats, sessions: hl.sessionCount, requests: { ...stats.requests } }),
    history: () => history.slice(),
    stop() {
      stopping ??= (async () => {
        stopped = true;
        await hl.close();
        const closed = new Promise<void>((r) => server.close(() => r()));
        server.closeIdleConnections();
        // Held polls were just answered with a close frame: give them a moment to leave.
        await new Promise((r) => setTimeout(r, 50));
        server.closeAllConnections();
        await closed;
      })();
      return stopping;
    },
  };
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const port = process.env.PORT === undefined || process.env.PORT === '' ? 3000 : Number(process.env.PORT);
  const host = process.env.HOST || 'localhost';
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`PORT must be a port number (0 to 65535), got ${JSON.stringify(process.env.PORT)}`);
    process.exit(1);
  }
  let demo: DemoServer;
  try {
    demo = await startDemoServer({ port, host, log: (line) => console.log(line) });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') {
      const why = code === 'EADDRINUSE' ? 'is in use' : 'needs privileges';
      console.error(`Port ${port} on ${host} ${why}: pick another with PORT, e.g. PORT=${port === 3000 ? 3001 : 3000} npm start`);
      process.exit(1);
    }
    throw e;
  }
  console.log(`Holdline demo: open ${demo.origin}/ in a few tabs and browsers (PORT=... picks another port; Ctrl-C stops)`);
  const shutdown = () => {
    demo.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}
