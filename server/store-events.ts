/**
 * The store's wake-ups as this node hears them (clustered): another node
 * committed to a session's outbound stream, applied its client's ack,
 * accepted inbound messages, took a poll, closed the session, or broadcast;
 * or the store's subscriber was away and events were lost. Each goes to the
 * session this node owns, or to its transports. The node publishes its own
 * (server/session-registry.ts) and skips them here.
 */
import { utf8Length, type MessageWire, type OutboxEntry } from '../shared/index.js';
import { sendToOwned } from './broadcast.js';
import type { PollingTransport } from './polling.js';
import type { Session } from './session.js';
import type { SessionStore, StoreEvent } from './store.js';
import type { WebSocketTransport } from './websocket.js';

/** What the wake-ups reach on their node (server/session-registry.ts). */
export interface StoreEventHost {
  /** This node's id in the store. */
  readonly node: string;
  /** The store, to publish on. */
  readonly options: { readonly store: Pick<SessionStore, 'publish'> };
  readonly polling: PollingTransport;
  readonly websocket: WebSocketTransport | undefined;
  readonly reportError: (err: unknown) => void;
  /** The session as this node owns it, or undefined. */
  owned(sid: string): Session | undefined;
  /** The sessions this node owns. */
  sessions(): IterableIterator<Session>;
}

/** An outbound entry from a message in wire form (a broadcast from another node). */
function encodeWire(w: MessageWire): OutboxEntry {
  if (typeof w === 'string') return { wire: w, bytes: utf8Length(w) };
  const pad = w.b.endsWith('==') ? 2 : w.b.endsWith('=') ? 1 : 0;
  return { wire: w, bytes: (w.b.length / 4) * 3 - pad };
}

/** The listener `host` subscribes to the store with: routes each event of another node. */
export function storeEventListener(host: StoreEventHost): (sid: string, event: StoreEvent) => void {
  return (sid, event) => {
    if (event.node === host.node) return;
    try {
      switch (event.type) {
        case 'out':
          host.websocket?.outboundReady(sid);
          return host.polling.outboundReady(sid);
        case 'ack':
          return host.owned(sid)?.acked(event.ack);
        case 'in':
          return host.owned(sid)?.pump();
        case 'poll': {
          // A WebSocket's hello publishes no poll count: every other WebSocket of the session goes.
          host.websocket?.pollTaken(sid, event.ws);
          if (event.hello === undefined) host.polling.superseded(sid, event.at);
          else host.polling.helloElsewhere(sid, event.hello);
          // What the owner committed while it held a poll, before it heard of
          // this poll or hello, woke no other node (it went on the poll held
          // here, which the client no longer reads): that node reads again.
          // After a poll, only while something is unacknowledged.
          const owned = host.owned(sid);
          if (owned !== undefined && (event.hello !== undefined || owned.pendingAcks > 0)) {
            host.options.store.publish(sid, { type: 'out', node: host.node }).catch(host.reportError);
          }
          return;
        }
        case 'close':
          host.polling.closed(sid, event.reason);
          host.websocket?.closed(sid, event.reason);
          return host.owned(sid)?.close(event.reason);
        case 'broadcast':
          sendToOwned(host.sessions(), encodeWire(event.data)).catch(host.reportError);
          return;
        case 'resync':
          // Events were lost while the store's subscriber was away: deliver
          // what other nodes accepted meanwhile, and let held polls read again.
          for (const s of host.sessions()) s.pump();
          host.polling.release();
          return;
      }
    } catch (e) {
      host.reportError(e);
    }
  };
}
