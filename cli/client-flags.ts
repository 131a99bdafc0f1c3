/** The client options every client command (connect, bench) takes as flags. */
import type { HoldlineClientOptions } from '../client/index.js';
import { intFlag, stringFlag, UsageError, type Options } from './command.js';

export const CLIENT_FLAGS = {
  proxy: { type: 'string' },
  transports: { type: 'string' },
  hold: { type: 'string' },
  'request-timeout': { type: 'string' },
  'connect-timeout': { type: 'string' },
  'no-keepalive': { type: 'boolean' },
} as const satisfies Options;

export const CLIENT_FLAGS_HELP = `Client options:
  --proxy URL            HTTP proxy (default: HTTP_PROXY / HTTPS_PROXY / NO_PROXY)
  --transports LIST      polling,websocket in order of preference (default: polling,websocket)
  --hold MS              longest hold to ask of the server for each poll
  --request-timeout MS   deadline of each request
  --connect-timeout MS   give up opening the first session after this long
  --no-keepalive         a new connection for every request`;

type Values = Partial<Record<keyof typeof CLIENT_FLAGS, string | boolean>>;

export function clientOptions(v: Values): HoldlineClientOptions {
  const o: HoldlineClientOptions = {};
  const proxy = stringFlag(v.proxy);
  if (proxy !== undefined) o.proxy = proxy;
  const transports = stringFlag(v.transports);
  if (transports !== undefined) {
    const names = transports.split(',').map((s) => s.trim());
    if (!names.every((n): n is 'polling' | 'websocket' => n === 'polling' || n === 'websocket')) {
      throw new UsageError(`--transports takes polling and websocket, comma-separated; got ${transports}`);
    }
    o.transports = names;
  }
  if (v.hold !== undefined) o.holdMs = intFlag(v.hold, 'hold', 0, 0, 600_000);
  if (v['request-timeout'] !== undefined) o.requestTimeoutMs = intFlag(v['request-timeout'], 'request-timeout', 0, 1, 600_000);
  if (v['connect-timeout'] !== undefined) o.connectTimeoutMs = intFlag(v['connect-timeout'], 'connect-timeout', 0, 1, 3_600_000);
  if (v['no-keepalive'] === true) o.keepAlive = false;
  return o;
}
