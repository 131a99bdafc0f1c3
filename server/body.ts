/**
 * Reading a request body with a byte limit enforced as it streams in: the
 * first byte past the limit ends the read (413 without buffering the rest).
 */
import type { IncomingMessage } from 'node:http';
import { isUtf8 } from 'node:buffer';
import { HoldlineError, wireError } from '../shared/index.js';
import { requestHeader } from './request-header.js';

/** Resolves to the body text, a HoldlineError to answer with, or null when the client went away. */
const tooLarge = (limit: number) => wireError('batch_too_large', `request body exceeds maxBatchBytes (${limit} bytes)`);

/** A body not complete within `timeoutMs` is answered `408 request_timeout` (a body dribbled in to hold the server's memory). */
export async function readBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<string | HoldlineError | null> {
  const declared = Number(requestHeader(req, 'content-length'));
  if (Number.isFinite(declared) && declared > limit) return tooLarge(limit);

  // A body parser that ran before us (express.text(), say) may already have read it.
  const pre = (req as IncomingMessage & { body?: unknown }).body;
  if (typeof pre === 'string') return Buffer.byteLength(pre) > limit ? tooLarge(limit) : pre;
  if (Buffer.isBuffer(pre)) return decode(pre, limit);

  // The 'request' event comes as soon as the headers are parsed, and the
  // parser goes on with the body bytes that came with them before any
  // microtask runs. If that was the whole body (Content-Length bytes; a
  // poll's always is), take it at once rather than a few event-loop turns
  // later through 'data' and 'end'.
  await undefined;
  if (declared > 0 && req.readableLength === declared && req.readableFlowing === null && !req.destroyed) {
    return decode(req.read() as Buffer, limit);
  }

  return new Promise<string | HoldlineError | null>((resolve) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let settled = false;
    const timer = setTimeout(() => {
      req.pause();
      done(wireError('request_timeout', `the request body did not arrive within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (v: string | HoldlineError | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('aborted', onGone);
      resolve(v);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > limit) {
        req.pause();
        done(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => done(decode(chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, total), limit));
    const onGone = () => done(null);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('aborted', onGone);
  });
}

function decode(buf: Buffer, limit: number): string | HoldlineError {
  if (buf.length > limit) return tooLarge(limit);
  if (!isUtf8(buf)) return wireError('bad_encoding', 'request body is not valid UTF-8');
  return buf.toString('utf8');
}
