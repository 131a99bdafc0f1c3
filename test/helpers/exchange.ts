/**
 * The shared shape of the "N messages each way, exactly once, in order" tests:
 * the server sends `count` messages to the first session opened while the
 * client sends `count` to the server; resolves with what each side received,
 * in arrival order, for the test to compare with what was sent.
 */
import assert from 'node:assert/strict';
import type { HoldlineClient } from '../../client/index.js';
import type { HoldlineServer } from '../../server/index.js';

export interface ExchangeOptions {
  count: number;
  /** Message i from client to server. */
  up?: (i: number) => string;
  /** Message i from server to client. */
  down?: (i: number) => string;
  /** Pause this long after every 100 messages on each side (0: none). */
  pauseMs?: number;
  /** Called after client message i was queued. */
  onClientSent?: (i: number) => void;
  timeoutMs?: number;
}

export const upMessage = (i: number) => `up ${i}`;
export const downMessage = (i: number) => `down ${i}`;

/** Connects `client` (not yet connected) and runs the exchange. */
export async function exchangeBothWays(server: HoldlineServer, client: HoldlineClient, o: ExchangeOptions): Promise<void> {
  const { count, up = upMessage, down = downMessage, pauseMs = 0, timeoutMs = 120_000 } = o;
  const pause = (i: number) => (pauseMs > 0 && i % 100 === 99 ? new Promise((r) => setTimeout(r, pauseMs)) : undefined);
  const atServer: string[] = [];
  const atClient: string[] = [];
  let serverDone: Promise<void> | undefined;
  server.once('session', (s) => {
    s.on('message', (d) => atServer.push(String(d)));
    serverDone = (async () => {
      for (let i = 0; i < count; i++) {
        await s.send(down(i));
        await pause(i);
      }
    })();
  });
  client.on('message', (d) => atClient.push(String(d)));
  await client.connect();
  for (let i = 0; i < count; i++) {
    await client.send(up(i));
    o.onClientSent?.(i);
    await pause(i);
  }
  const deadline = Date.now() + timeoutMs;
  while ((atServer.length < count || atClient.length < count) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  await serverDone;
  // A moment more, so that a late duplicate would show.
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(atClient, Array.from({ length: count }, (_, i) => down(i)), 'server-to-client: exactly once, in order');
  assert.deepEqual(atServer, Array.from({ length: count }, (_, i) => up(i)), 'client-to-server: exactly once, in order');
}
