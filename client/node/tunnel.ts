/**
 * A CONNECT tunnel through a proxy, for a WebSocket or an https:// request:
 * written on a socket of our own, so that the 407 exchanges an
 * authentication scheme needs (NTLM: Type 1, then Type 3 on the same
 * connection) happen before the tunnel is handed over. A 407 the
 * credentials cannot answer is proxy_auth_required naming the scheme; any
 * other refusal is proxy_refused, naming the proxy and its status.
 */
import net from 'node:net';
import tls from 'node:tls';
import { HoldlineError } from '../../shared/index.js';
import { newRound, parseChallenges, ProxyAuth, proxyAuthRequired } from './proxy-auth.js';
import type { ProxyEndpoint } from './proxy-config.js';
import { proxyRefused } from './proxy-config.js';

/** A proxy's answer head is read up to this size; a larger one is not a proxy we can talk to. */
const MAX_HEAD_BYTES = 64 * 1024;

interface Head {
  status: number;
  headers: Map<string, string[]>;
  /** Bytes after the head (the tunnel's first bytes on a 200, else body). */
  rest: Buffer;
}

function dial(proxy: URL): net.Socket {
  const host = proxy.hostname.replace(/^\[|\]$/g, '');
  if (proxy.protocol === 'https:') {
    return tls.connect({ host, port: Number.parseInt(proxy.port, 10) || 443, ...(net.isIP(host) === 0 ? { servername: host } : {}) });
  }
  return net.connect({ host, port: Number.parseInt(proxy.port, 10) || 80 });
}

/** Reads one answer head from `socket` (which stays paused with nothing consumed past it but `rest`). */
function readHead(socket: net.Socket, signal: AbortSignal | undefined): Promise<Head> {
  return new Promise<Head>((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (err: Error | undefined, head?: Head): void => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
      if (err !== undefined || head === undefined) reject(err ?? new Error('no head'));
      else resolve(head);
    };
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) {
        if (buf.length > MAX_HEAD_BYTES) done(new HoldlineError('bad_response', `the proxy's answer head is over ${MAX_HEAD_BYTES} bytes`));
        return;
      }
      socket.pause();
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? NaN);
      if (!Number.isInteger(status)) {
        done(new HoldlineError('bad_response', `the proxy answered CONNECT with ${JSON.stringify(lines[0] ?? '')}`));
        return;
      }
      const headers = new Map<string, string[]>();
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        const name = line.slice(0, colon).trim().toLowerCase();
        headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
      }
      done(undefined, { status, headers, rest: buf.subarray(end + 4) });
    };
    const onError = (e: Error): void => done(e);
    const onClose = (): void => done(new HoldlineError('network_error', 'the proxy closed the connection during CONNECT'));
    const onAbort = (): void => {
      socket.destroy();
      done(new HoldlineError('network_error', 'CONNECT aborted'));
    };
    if (signal?.aborted === true) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('close', onClose);
    socket.resume();
  });
}

/** Reads and drops a 407's body (Content-Length) so the connection can carry the next CONNECT; false when it cannot be reused. */
async function skipBody(socket: net.Socket, head: Head): Promise<boolean> {
  const connection = head.headers.get('connection')?.join(',').toLowerCase() ?? '';
  const proxyConnection = head.headers.get('proxy-connection')?.join(',').toLowerCase() ?? '';
  const length = Number(head.headers.get('content-length')?.[0] ?? NaN);
  if (/close/.test(connection) || /close/.test(proxyConnection) || !Number.isSafeInteger(length)) return false;
  let left = length - head.rest.length;
  if (left < 0) return false; // pipelined bytes after the body: not a proxy we can follow
  await new Promise<void>((resolve, reject) => {
    if (left === 0) return resolve();
    const onData = (chunk: Buffer): void => {
      left -= chunk.length;
      if (left <= 0) {
        socket.off('data', onData);
        socket.pause();
        resolve();
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.resume();
  });
  return left === 0;
}

/**
 * readHead() paused the socket explicitly, and a paused stream stays paused
 * when a 'data' listener comes (node:http's client, under `ws`, only adds
 * one): resume it once the new owner listens.
 */
function flowWhenRead(socket: net.Socket): void {
  const onListener = (event: string | symbol): void => {
    if (event !== 'data') return;
    socket.off('newListener', onListener);
    process.nextTick(() => socket.resume());
  };
  socket.on('newListener', onListener);
}

function connectRequest(authority: string, authorization: string | undefined): string {
  const lines = [`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`, 'Proxy-Connection: keep-alive'];
  if (authorization !== undefined) lines.push(`Proxy-Authorization: ${authorization}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * A tunnel to `host:port` (host as in a URL: IPv6 in brackets) through
 * `proxy`, authenticated as `auth` (shared by the tunnels to one proxy: it
 * remembers the scheme). Each tunnel is a new connection: NTLM runs its
 * handshake on it.
 */
export async function openTunnel(proxy: ProxyEndpoint, auth: ProxyAuth, host: string, port: number, signal?: AbortSignal): Promise<net.Socket> {
  const authority = `${host}:${port}`;
  const round = newRound();
  auth.connectionClosed();
  let socket = dial(proxy.url);
  let authorization = auth.first(round, 'CONNECT', authority);
  try {
    for (;;) {
      socket.write(connectRequest(authority, authorization));
      const head = await readHead(socket, signal);
      if (head.status === 200) {
        auth.passed(round);
        if (head.rest.length > 0) socket.unshift(head.rest);
        flowWhenRead(socket);
        return socket;
      }
      if (head.status !== 407) {
        throw proxyRefused(proxy.url, `CONNECT ${authority}`, head.status, head.headers.get('x-squid-error')?.[0]);
      }
      const next = auth.next(round, parseChallenges(head.headers.get('proxy-authenticate')), 'CONNECT', authority);
      if (next instanceof HoldlineError) throw next;
      if (!(await skipBody(socket, head))) {
        // The proxy closes after its 407: NTLM cannot continue on another connection.
        if (round.sent === 'NTLM3') throw proxyAuthRequired('NTLM', 'the proxy closed the connection during the NTLM handshake');
        socket.destroy();
        socket = dial(proxy.url);
      }
      authorization = next;
    }
  } catch (e) {
    socket.destroy();
    if (e instanceof HoldlineError) throw e;
    throw new HoldlineError('network_error', `CONNECT ${authority} through the proxy ${proxy.url.host} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}
