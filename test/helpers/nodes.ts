/**
 * Holdline nodes in the test's own process, for the tests of several nodes
 * on one store (test/multi-node/, test/redis-store/): a HoldlineServer
 * attached to a node:http server on 127.0.0.1, port 0 (an https server in
 * TLS mode, HOLDLINE_TEST_TLS=1: see tls.ts); a round-robin
 * balancer in front of nodes; a client of the nodes that reconnects fast;
 * and recorders of what arrives at each end, by `payloadKey`. Everything is
 * handed to a Cleanup the moment it exists (test/helpers/server.ts).
 */
import type http from 'node:http';
import { HoldlineClient, type ResetEvent } from '../../client/index.js';
import { HoldlineServer, type HoldlineServerOptions, type MessageInfo, type Session } from '../../server/index.js';
import type { Payload } from '../../shared/index.js';
import { roundRobin, type RoundRobin, type RoundRobinOptions } from './round-robin.js';
import { Cleanup, closeHttpServer, Condition, listen } from './server.js';
import { createTestServer } from './tls.js';

/** A payload's name for comparing: the text itself, or `bin:<hex>`. */
export const payloadKey = (p: Payload): string => (typeof p === 'string' ? p : `bin:${Buffer.from(p).toString('hex')}`);

export interface AttachedNode {
  /** e.g. http://127.0.0.1:PORT (https:// in TLS mode) */
  origin: string;
  http: http.Server;
}

/** Attach `hl` to a new node:http server (https in TLS mode) listening on 127.0.0.1, port 0; both are closed at clean-up. */
export async function attachNode(cleanup: Cleanup, hl: HoldlineServer): Promise<AttachedNode> {
  const server = createTestServer();
  hl.attach(server);
  const origin = await listen(server);
  cleanup.add(async () => {
    await hl.close();
    await closeHttpServer(server);
  });
  return { origin, http: server };
}

export interface Node extends AttachedNode {
  hl: HoldlineServer;
  /** Every session this node emitted, in order. */
  sessions: Session[];
  /** Every 'error' this node emitted. */
  errors: unknown[];
}

/** A new HoldlineServer with `options`, recording its sessions and errors, attached (attachNode). */
export async function startNode(cleanup: Cleanup, options: HoldlineServerOptions): Promise<Node> {
  const hl = new HoldlineServer(options);
  const errors: unknown[] = [];
  hl.on('error', (e) => errors.push(e));
  const sessions: Session[] = [];
  hl.on('session', (s) => sessions.push(s));
  const { origin, http: server } = await attachNode(cleanup, hl);
  return { hl, origin, http: server, sessions, errors };
}

/** A round-robin balancer (test/helpers/round-robin.ts) in front of `origins`, closed at clean-up. */
export async function balance(cleanup: Cleanup, origins: string[], options: RoundRobinOptions = {}): Promise<RoundRobin> {
  const lb = await roundRobin(origins, options);
  cleanup.add(() => lb.close());
  return lb;
}

/** A client of `${origin}/holdline` that reconnects fast (20 to 200 ms), closed at clean-up; not connected yet. */
export function newClient(cleanup: Cleanup, origin: string): HoldlineClient {
  const client = new HoldlineClient(`${origin}/holdline`, { reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
  cleanup.add(() => client.close());
  return client;
}

export interface RecordingClient {
  client: HoldlineClient;
  /** The key of every message the client received, in order. */
  received: string[];
  /** Every 'reset' the client emitted. */
  resets: ResetEvent[];
}

/** newClient(), connected, recording what it receives and its resets; each notifies `changed`. */
export async function recordingClient(cleanup: Cleanup, origin: string, changed: Condition): Promise<RecordingClient> {
  const client = newClient(cleanup, origin);
  const resets: ResetEvent[] = [];
  client.on('reset', (e) => {
    resets.push(e);
    changed.notify();
  });
  const received: string[] = [];
  client.on('message', (m) => {
    received.push(payloadKey(m));
    changed.notify();
  });
  await client.connect();
  return { client, received, resets };
}

export interface ServerRecording {
  /**
   * Drop a message flagged redelivered that is already recorded: after a
   * takeover, what the old owner had not marked delivered comes again, flagged.
   */
  dropFlaggedRepeats?: boolean;
  /** Sees every delivery (its key and info) before it is recorded or dropped. */
  each?: (key: string, info: MessageInfo | undefined) => void;
}

/** The key of every message the sessions of `nodes` deliver, in order, as they come; each notifies `changed`. */
export function recordAtServer(nodes: readonly { hl: HoldlineServer }[], changed: Condition, options: ServerRecording = {}): string[] {
  const received: string[] = [];
  for (const n of nodes) {
    n.hl.on('session', (s) =>
      s.on('message', (m, info) => {
        const key = payloadKey(m);
        options.each?.(key, info);
        if (options.dropFlaggedRepeats === true && info?.redelivered === true && received.includes(key)) return;
        received.push(key);
        changed.notify();
      }),
    );
  }
  return received;
}
