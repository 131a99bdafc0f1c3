/**
 * A raw held poll through the bench interface: the floor of the polling echo.
 * The same exchanges as Holdline's polling client, with no protocol: the
 * client posts its messages on one undici `Client` (one connection) and
 * holds a poll on another; the node:http server answers the held poll with
 * a JSON array as soon as its session sends, and answers a send once its
 * messages are delivered. No numbering, acknowledgements, credentials,
 * retries or limits: it is a yardstick, not a library.
 *
 * The client uses undici as Holdline does (`Client.dispatch()` with a
 * handler that only collects the body), so the floor carries undici's own
 * per-request cost (its idle-socket check included) and nothing else.
 */
import http from 'node:http';
import { Client, type Dispatcher } from 'undici';
import { closeHttp, errorText, listenLocal, pushError, type AdapterOptions, type BenchClient, type BenchServer, type BenchSession, type ClientOptions } from './types.js';

const PATH = '/raw';
/** A poll held this long with nothing to send is answered empty. */
const HOLD_MS = 25_000;

class RawPollSession implements BenchSession {
  open = true;
  readonly #queue: string[] = [];
  #held: http.ServerResponse | undefined;
  #holdTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #messageListeners: Array<(data: string) => void> = [];
  readonly #closeListeners: Array<() => void> = [];

  send(data: string): undefined {
    this.#queue.push(data);
    this.#answer();
    return undefined;
  }

  onMessage(fn: (data: string) => void): void {
    this.#messageListeners.push(fn);
  }

  onClose(fn: () => void): void {
    this.#closeListeners.push(fn);
  }

  deliver(messages: readonly string[]): void {
    for (const m of messages) for (const fn of this.#messageListeners) fn(m);
  }

  hold(res: http.ServerResponse): void {
    if (this.#held) reply(this.#held, '[]');
    this.#held = res;
    if (this.#queue.length > 0) return this.#answer();
    clearTimeout(this.#holdTimer);
    this.#holdTimer = setTimeout(() => {
      if (this.#held === res) {
        this.#held = undefined;
        reply(res, '[]');
      }
    }, HOLD_MS);
  }

  close(): void {
    this.open = false;
    clearTimeout(this.#holdTimer);
    for (const fn of this.#closeListeners) fn();
  }

  #answer(): void {
    const res = this.#held;
    if (!res || this.#queue.length === 0) return;
    this.#held = undefined;
    clearTimeout(this.#holdTimer);
    reply(res, JSON.stringify(this.#queue.splice(0)));
  }
}

function reply(res: http.ServerResponse, body: string): void {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', reject);
  });
}

export async function startRawPollServer(_options: AdapterOptions): Promise<BenchServer> {
  const httpServer = http.createServer();
  const errors: string[] = [];
  const listeners: Array<(s: BenchSession) => void> = [];
  const sessions = new Map<string, RawPollSession>();
  let nextId = 0;
  httpServer.on('request', (req, res) => {
    const url = req.url ?? '';
    readBody(req).then(
      (body) => {
        if (url === `${PATH}/open`) {
          const sid = String(++nextId);
          const s = new RawPollSession();
          sessions.set(sid, s);
          for (const fn of listeners) fn(s);
          return reply(res, sid);
        }
        const s = sessions.get(body.slice(0, body.indexOf('|')));
        if (!s) return void res.writeHead(404).end();
        if (url === `${PATH}/poll`) return s.hold(res);
        if (url === `${PATH}/send`) {
          s.deliver(JSON.parse(body.slice(body.indexOf('|') + 1)) as string[]);
          return reply(res, '{}');
        }
        res.writeHead(404).end();
      },
      (e: unknown) => pushError(errors, e),
    );
  });
  const url = await listenLocal(httpServer);
  return {
    url,
    errors,
    http: httpServer,
    onSession: (fn) => void listeners.push(fn),
    broadcast(data) {
      for (const s of sessions.values()) s.send(data);
      return sessions.size;
    },
    get sessionCount() {
      return sessions.size;
    },
    async close() {
      for (const s of sessions.values()) s.close();
      await closeHttp(httpServer);
    },
  };
}

/** POST `body` on `client`; resolves to the answer's body text. */
function post(client: Client, path: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const handler: Dispatcher.DispatchHandler = {
      // Both present: undici takes the handler as one of its new API (it checks onRequestStart).
      onRequestStart: () => {},
      onResponseStart: () => {},
      onResponseData: (_c, chunk) => void chunks.push(chunk),
      onResponseEnd: () => resolve(chunks.length === 1 && chunks[0] ? chunks[0].toString() : Buffer.concat(chunks).toString()),
      onResponseError: (_c, e) => reject(e),
    };
    client.dispatch({ method: 'POST', path, body, headers: { 'content-type': 'text/plain;charset=UTF-8' } }, handler);
  });
}

export async function connectRawPollClient(origin: string, _options: ClientOptions): Promise<BenchClient> {
  // A poll is held until the server has something: no undici timer ends it.
  const polls = new Client(origin, { headersTimeout: 0, bodyTimeout: 0 });
  const sends = new Client(origin);
  const errors: string[] = [];
  const listeners: Array<(data: string) => void> = [];
  const sid = await post(sends, `${PATH}/open`, '');
  let closed = false;
  const pollLoop = async () => {
    while (!closed) {
      const batch = JSON.parse(await post(polls, `${PATH}/poll`, `${sid}|`)) as string[];
      for (const m of batch) for (const fn of listeners) fn(m);
    }
  };
  pollLoop().catch((e: unknown) => {
    if (!closed) pushError(errors, e);
  });
  const queue: string[] = [];
  let sending = false;
  const flush = async () => {
    sending = true;
    try {
      while (queue.length > 0 && !closed) await post(sends, `${PATH}/send`, `${sid}|${JSON.stringify(queue.splice(0))}`);
    } finally {
      sending = false;
    }
  };
  return {
    errors,
    newSessions: 0,
    retries: 0,
    send(data) {
      queue.push(data);
      if (!sending) flush().catch((e: unknown) => pushError(errors, new Error(`raw poll send: ${errorText(e)}`)));
      return undefined;
    },
    onMessage: (fn) => void listeners.push(fn),
    async close() {
      closed = true;
      await Promise.all([polls.destroy(), sends.destroy()]);
    },
  };
}
