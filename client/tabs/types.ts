/**
 * Public types of the tab channel: the host APIs it runs on (the core client,
 * Web Locks, BroadcastChannel; each replaceable for tests) and
 * HoldlineTabClient's options, stats and events. Re-exported by
 * ../tab-channel.ts.
 */
import type { Payload } from '../../shared/index.js';
import type { ClientEvents, ClientState, ClientStats, TransportName } from '../holdline-client.js';
import type { HoldlineClientOptions } from '../options.js';
import type { SessionState } from '../session-state.js';

/** The events of HoldlineClient the leader listens to. */
export type TabCoreEvents = Pick<ClientEvents, 'open' | 'reconnecting' | 'reset' | 'message' | 'error' | 'close' | 'ack' | 'transport'>;

/**
 * The part of HoldlineClient the leader uses; a new client for every
 * leadership. The leader learns what the server acknowledged from 'ack'
 * alone: `total` counts the messages acknowledged since the client was
 * created, acks come in send order, and the messages a 'reset' lists in
 * `lost` are never acknowledged. `bufferedAmount` serves only to hand the
 * client no more than fits under maxBufferedBytes, so that send() never waits.
 */
export interface TabCoreClient {
  readonly state: ClientState;
  readonly sessionId: string | undefined;
  /** The transport the session is on (a client that has only one: absent, polling). */
  readonly transport?: TransportName;
  readonly bufferedAmount: number;
  readonly stats: Readonly<ClientStats>;
  connect(): Promise<void>;
  send(data: Payload): Promise<void>;
  close(): Promise<void>;
  on<K extends keyof TabCoreEvents>(event: K, fn: TabCoreEvents[K]): unknown;
  /**
   * Continuity (HoldlineClient has them): a new leader resumes the session
   * its predecessor left instead of opening one. A client without them
   * opens a new session on every change of leader.
   */
  resume?(state: SessionState): Promise<void>;
  exportState?(): SessionState | undefined;
  detach?(): SessionState | undefined;
  /** Number of the last message queued in the session's stream. */
  readonly outboundSeq?: number;
}

/** The part of the Web Locks API used (navigator.locks). */
export interface TabLockManager {
  request(name: string, options: { signal?: AbortSignal }, callback: (lock: unknown) => Promise<void>): Promise<unknown>;
}

/** The part of BroadcastChannel used. */
export interface TabBus {
  onmessage: ((ev: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
}

export interface HoldlineTabClientOptions extends HoldlineClientOptions {
  /** Tabs with the same name (and origin) share a session. Default: the resolved URL. */
  channelName?: string;
  /** For tests and unusual hosts; default navigator.locks (undefined: no sharing). */
  locks?: TabLockManager | null;
  /** For tests; default `new BroadcastChannel(name)`. */
  createBus?: (name: string) => TabBus;
  /** For tests; default `new HoldlineClient(url, options)`. */
  createClient?: (url: string, options: HoldlineClientOptions) => TabCoreClient;
}

export type TabRole = 'none' | 'leader' | 'follower';

export interface TabClientStats extends ClientStats {
  /** Messages this tab's send() queued (ClientStats.messagesSent counts the same for this tab). */
  messagesSent: number;
  /** Messages this tab delivered to its 'message' listeners. */
  messagesReceived: number;
  /** This tab's messages not yet confirmed as acknowledged by the server. */
  unconfirmed: number;
}

export interface LeaderEvent {
  /** This tab leads now. */
  self: boolean;
  /** The session the new leader goes on with (undefined until it knows). */
  sessionId: string | undefined;
}

export interface TabClientEvents extends ClientEvents {
  /** Another tab (or this one) took over the shared session: the same session goes on. */
  leader: (e: LeaderEvent) => void;
  /** This tab became the leader or a follower (or 'none' once closed). */
  role: (role: TabRole) => void;
  /** Every state change. */
  state: (state: ClientState) => void;
}
