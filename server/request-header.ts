/**
 * Reading a request header without `req.headers`: that getter builds (and
 * keeps, for as long as the request lives) an object of every header. A
 * server holding one poll per idle session pays for it per session, and
 * Holdline reads four headers.
 */
import type { IncomingMessage } from 'node:http';

/** The first value of header `lowerName` (given in lower case), or undefined. */
export function requestHeader(req: IncomingMessage, lowerName: string): string | undefined {
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name !== undefined && name.length === lowerName.length && name.toLowerCase() === lowerName) return raw[i + 1];
  }
  return undefined;
}
