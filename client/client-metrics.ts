/**
 * What the client counts beyond its plain counters (stats.bytesSent and
 * the rest: client/events.ts), and its debug log lines (shared/log.ts):
 * each place that counts calls one function here, which also logs. Only
 * ids, codes, sizes and times are logged: never a token or a payload.
 */
import { utf8Length, type CloseReason, type HoldlineError, type Payload } from '../shared/index.js';
import { describeError, log } from '../shared/log.js';
import type { Reaction } from '../shared/reaction.js';
import type { ClientState, ClientStats, TransportName } from './events.js';

/** Poll-cut ages kept in stats.pollCutAgesMs. */
const CUT_AGES_KEPT = 16;

export function payloadBytes(p: Payload): number {
  return typeof p === 'string' ? utf8Length(p) : p.byteLength;
}

/** A client's counters, all at zero. */
export function newClientStats(): Required<ClientStats> {
  return {
    polls: 0, pollCuts: 0, sendRequests: 0, messagesSent: 0, messagesReceived: 0, messagesAcked: 0,
    reconnects: 0, resets: 0, holdMs: 0, rttMs: 0, transportSwitches: 0, silentDeaths: 0, holdCeilingMs: 0,
    bytesSent: 0, bytesReceived: 0, acksPending: 0, errors: {}, pollCutAgesMs: [],
  };
}

/** A message from the server reached the application. */
export function noteReceived(stats: Required<ClientStats>, p: Payload): void {
  stats.messagesReceived++;
  stats.bytesReceived += payloadBytes(p);
}

/** A state change of the session machine. */
export function noteState(from: ClientState, to: ClientState, sid: string | undefined): void {
  log.client('%s -> %s%s', from, to, sid === undefined ? '' : ` (session ${sid})`);
}

/** A request failed (a proxy's error among them) with what the client does about it. */
export function noteFailure(stats: ClientStats, error: HoldlineError, reaction: Reaction, sid: string | undefined): void {
  const errors = (stats.errors ??= {});
  errors[error.code] = (errors[error.code] ?? 0) + 1;
  log.client('request of session %s failed%s: %s -> %s', sid ?? '-', error.status === undefined ? '' : ` (HTTP ${error.status})`, describeError(error), reaction);
}

/** The client closed, and why. */
export function noteClosed(reason: CloseReason): void {
  log.client('closed: %s', reason.code);
}

/** The old session is gone: the client opens a new one (a reset). */
export function noteLost(sid: string, code: string, delayMs: number): void {
  log.client('session %s lost (%s): a new session in %d ms, then reset', sid, code, delayMs);
}

/** A poll held `ageMs` was cut; the hold asked from now on is `holdMs`. */
export function notePollCut(stats: ClientStats, ageMs: number, holdMs: number): void {
  stats.pollCuts++;
  const ages = (stats.pollCutAgesMs ??= []);
  ages.push(ageMs);
  if (ages.length > CUT_AGES_KEPT) ages.shift();
  log.transport('poll cut after %d ms held: hold now %d ms', ageMs, holdMs);
}

/**
 * A poll died without a sound at `ageMs` (found by a send's answer when
 * `byWritten`, else at its deadline); the hold is now `holdMs`, kept below
 * `ceilingMs` for a while.
 */
export function noteSilentDeath(stats: ClientStats, ageMs: number, byWritten: boolean, holdMs: number, ceilingMs: number): void {
  stats.silentDeaths = (stats.silentDeaths ?? 0) + 1;
  stats.holdMs = holdMs;
  stats.holdCeilingMs = ceilingMs;
  log.transport('poll died silently after %d ms (%s): hold now %d ms, kept below %d ms', ageMs, byWritten ? 'the server had written what it never brought' : 'at its deadline', holdMs, ceilingMs);
}

export function noteSwitch(from: TransportName, to: TransportName): void {
  log.transport('transport %s -> %s', from, to);
}
