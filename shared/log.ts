/**
 * Debug logging, through the `debug` package: `DEBUG=holdline:*` in Node,
 * `localStorage.debug = 'holdline:*'` in a browser (the convention of
 * Express and Socket.IO, so one DEBUG setting covers an app's whole stack).
 * Off, each call is one boolean test.
 *
 * Namespaces: holdline:server (sessions opened and closed, with reasons;
 * errors), holdline:polling (polls cut while held, with their age),
 * holdline:client (states, resets, failed requests and proxy errors),
 * holdline:client:transport (switches between polling and WebSocket, polls
 * cut and the hold learned from them).
 *
 * What is logged is ids, codes, counts and times: never a session token and
 * never a payload. Error messages pass through redact() first (a proxy URL
 * may carry a user and password). The one module in shared/ with a
 * dependency; the protocol (shared/index.ts) does not import it.
 */
import createDebug from 'debug';

export type Logger = createDebug.Debugger;

export const log = {
  server: createDebug('holdline:server'),
  polling: createDebug('holdline:polling'),
  client: createDebug('holdline:client'),
  transport: createDebug('holdline:client:transport'),
} as const;

/** Credentials in URLs (`//user:pass@host`) and token-like fields (`"token":"..."`) blanked out. */
export function redact(text: string): string {
  return text.replace(/\/\/[^/@\s]*@/g, '//***@').replace(/("?token"?\s*[:=]\s*"?)[^",\s}]+/gi, '$1***');
}

/** An error as a log line may show it: its code and its redacted message. */
export function describeError(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return redact(`${typeof code === 'string' ? code + ': ' : ''}${e.message}`);
  }
  return redact(String(e));
}
