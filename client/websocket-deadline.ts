/**
 * The one deadline of a WebSocket connection (websocket-transport.ts):
 * opening (connect and hello) within requestTimeoutMs, then liveness: the
 * server sends something at least every heartbeat (its pollTimeoutMs, at most
 * 25 s); nothing for that plus the grace period and the connection is dead.
 * A connection past its deadline goes to the transport's timedOut().
 */
import { HoldlineError } from '../shared/index.js';
import type { Connection } from './websocket-connection.js';
import type { WebSocketTransportOptions } from './websocket-transport.js';

/** The server's heartbeat period: its pollTimeoutMs, within 1-25 s (server/websocket.ts). */
const MAX_HEARTBEAT_MS = 25_000;
const MIN_HEARTBEAT_MS = 1_000;

/** A deadline timer that fires this much later than due ran on a frozen or throttled page's timers... */
const LATE_TIMER_MS = 2_000;
/** ...and looks again this much later, once what came meanwhile has been handled. */
const LATE_RECHECK_MS = 1_000;

/**
 * The connection's one deadline: opening (`ms`), then silence past the
 * heartbeat plus grace. The timer runs late rather than being re-armed on
 * every frame: when it fires early it waits out the rest. When it fires
 * much later than due (a frozen or throttled page's timer), the frames
 * that came meanwhile may still wait to be handled: it looks again a
 * second later rather than take the connection for dead.
 */
export function armDeadline(c: Connection, ms: number, options: Pick<WebSocketTransportOptions, 'openTimeoutMs' | 'graceMs'>): void {
  if (c.timer !== undefined) clearTimeout(c.timer);
  const heartbeat = Math.max(MIN_HEARTBEAT_MS, Math.min(c.session.limits.pollTimeoutMs, MAX_HEARTBEAT_MS));
  let dueAt = 0;
  const schedule = (after: number) => {
    dueAt = Date.now() + after;
    c.timer = setTimeout(check, after);
    unref(c.timer);
  };
  const check = () => {
    c.timer = undefined;
    if (!c.t.isCurrent(c) || c.phase === 'gone') return;
    const opening = c.phase !== 'up';
    const endAt = opening ? c.startedAt + options.openTimeoutMs : c.lastFrameAt + heartbeat + options.graceMs;
    const now = Date.now();
    const left = endAt - now;
    if (left > 0) return schedule(left);
    if (now - dueAt > LATE_TIMER_MS) return schedule(LATE_RECHECK_MS);
    const wasUp = !opening;
    const opened = c.phase !== 'connecting';
    c.t.timedOut(c, new HoldlineError('timeout', opening ? `the WebSocket did not open within ${options.openTimeoutMs} ms` : `nothing on the WebSocket for ${heartbeat + options.graceMs} ms`), wasUp, opened);
  };
  schedule(ms > 0 ? ms : heartbeat + options.graceMs);
}

function unref(timer: ReturnType<typeof setTimeout>): void {
  (timer as { unref?: () => void }).unref?.();
}
