/**
 * HoldlineTabClient's options, checked when it is made (with the checks
 * HoldlineClient makes, now rather than when this tab leads) and split into
 * the tab's own (channel, election, bus, client factory) and those the
 * leading tab's HoldlineClient is made with.
 */
import { HoldlineError } from '../../shared/index.js';
import { HoldlineClient } from '../browser.js';
import { resolveBaseUrl, resolveClientOptions, type HoldlineClientOptions } from '../options.js';
import type { HoldlineTabClientOptions, TabBus, TabCoreClient, TabLockManager } from './types.js';

/** Options that no longer exist, and what to do instead. */
const REMOVED_OPTIONS: Readonly<Record<string, string>> = {
  ackCheckMs: "the leader no longer polls for acknowledgements, it confirms on its client's 'ack' event; remove the option",
};

function defaultLocks(): TabLockManager | undefined {
  const nav = (globalThis as { navigator?: { locks?: TabLockManager } }).navigator;
  return nav?.locks;
}

export interface TabOptions {
  /** The server's base URL, resolved. */
  readonly url: string;
  readonly channelName: string;
  /** What the leading tab's client is made with. */
  readonly clientOptions: HoldlineClientOptions;
  /** Undefined: no sharing (no Web Locks, or no BroadcastChannel); the tab leads alone. */
  readonly locks: TabLockManager | undefined;
  readonly createBus: (name: string) => TabBus;
  readonly createClient: (url: string, options: HoldlineClientOptions) => TabCoreClient;
  readonly connectTimeoutMs: number;
  /** How long close() waits for this tab's messages to be confirmed. */
  readonly closeWaitMs: number;
  readonly maxBufferedBytes: number;
  readonly sendTimeoutMs: number;
}

/** Check `options` (throws `invalid_argument`) and resolve them, with `url`. */
export function resolveTabOptions(url: string, options: HoldlineTabClientOptions): TabOptions {
  if (typeof options !== 'object' || options === null) {
    throw new HoldlineError('invalid_argument', `HoldlineTabClient options must be an object, got ${options === null ? 'null' : typeof options}`);
  }
  for (const [name, hint] of Object.entries(REMOVED_OPTIONS)) {
    if (Object.hasOwn(options, name)) throw new HoldlineError('invalid_argument', `option "${name}" was removed: ${hint}`);
  }
  const { channelName, locks, createBus, createClient, ...clientOptions } = options;
  if (clientOptions.resume !== undefined) {
    // The leader's client would store and detach on pagehide, ending the shared session for every tab.
    throw new HoldlineError('invalid_argument', 'option "resume" is for HoldlineClient: tabs sharing a session already keep it when the leading tab goes away');
  }
  const base = resolveBaseUrl(url, 'HoldlineTabClient');
  if (channelName !== undefined && (typeof channelName !== 'string' || channelName === '')) {
    throw new HoldlineError('invalid_argument', `option "channelName" must be a non-empty string, got ${JSON.stringify(channelName)}`);
  }
  const Bus = (globalThis as { BroadcastChannel?: new (name: string) => TabBus }).BroadcastChannel;
  // The same checks HoldlineClient makes, now rather than when this tab leads.
  const resolved = resolveClientOptions(clientOptions);
  return {
    url: base,
    channelName: channelName ?? base,
    clientOptions,
    locks: (!createBus && !Bus) || locks === null ? undefined : (locks ?? defaultLocks()),
    createBus: createBus ?? ((name) => {
      if (!Bus) throw new HoldlineError('invalid_argument', 'BroadcastChannel is not available');
      return new Bus(name);
    }),
    createClient: createClient ?? ((u2, o) => new HoldlineClient(u2, o)),
    connectTimeoutMs: resolved.connectTimeoutMs,
    closeWaitMs: Math.min(2_000, resolved.requestTimeoutMs),
    maxBufferedBytes: resolved.maxBufferedBytes,
    sendTimeoutMs: resolved.sendTimeoutMs,
  };
}
