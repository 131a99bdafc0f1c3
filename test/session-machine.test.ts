/**
 * The Transport seam has a second implementation: a transport driven by the
 * test itself, as a WebSocket transport would be driven by its socket
 * (inbound batches with acks and close frames, outbound batches, failures with
 * their reactions). The session machine runs unchanged over it; its /open
 * requests go to an in-process requester (the Platform seam).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientEvents } from '../client/events.js';
import { HttpExchange } from '../client/http-exchange.js';
import { resolveClientOptions } from '../client/options.js';
import type { HttpAnswer, HttpRequester } from '../client/platform.js';
import { SessionMachine } from '../client/session-machine.js';
import type { LiveSession, Transport, TransportHost } from '../client/transport.js';
import { HoldlineError, RpcPeer, type OutboxBatch, type Payload } from '../shared/index.js';

/** Answers /open with a new session each time; nothing else is asked of it. */
class OpenOnly implements HttpRequester {
  opens = 0;
  async post(url: string): Promise<HttpAnswer> {
    assert.ok(url.endsWith('/open') || url.endsWith('/close'), `only /open and /close go over HTTP here, not ${url}`);
    if (url.endsWith('/close')) return { status: 200, body: '{}' };
    this.opens++;
    const body = { v: 1, sid: `sid-${String(this.opens).padStart(8, '0')}`, token: 't'.repeat(22), pollTimeoutMs: 25_000, sessionIdleTimeoutMs: 60_000, maxMessageBytes: 1024, maxBatchBytes: 65_536 };
    return { status: 200, body: JSON.stringify(body) };
  }
  async close(): Promise<void> {}
}

/** A transport the test drives by hand. */
class Scripted implements Transport {
  readonly name = 'scripted';
  readonly started: LiveSession[] = [];
  flushes = 0;
  disposed = false;
  constructor(readonly host: TransportHost) {}
  start(session: LiveSession): void {
    this.started.push(session);
  }
  flush(): void {
    this.flushes++;
  }
  idle(): Promise<void> {
    return Promise.resolve();
  }
  dispose(): void {
    this.disposed = true;
  }
  /** Take what is pending, as one outbound frame would. */
  write(): OutboxBatch {
    const b = this.host.nextBatch(65_536);
    this.host.written(b.seq + b.count - 1);
    return b;
  }
}

test('the session machine over a second transport: inbound, outbound, a close frame that resets, a fatal failure', async () => {
  const requester = new OpenOnly();
  const events: string[] = [];
  const got: Payload[] = [];
  const emit = <K extends keyof ClientEvents>(event: K, ...args: Parameters<ClientEvents[K]>): boolean => {
    if (event === 'message') got.push(args[0] as Payload);
    else events.push(event === 'ack' ? `ack ${String(args[0])}` : event === 'reset' ? `reset lost=${JSON.stringify((args[0] as { lost: Payload[] }).lost)}` : String(event));
    return true;
  };
  let transport: Scripted | undefined;
  const machine = new SessionMachine({
    options: resolveClientOptions({ reconnect: { minDelayMs: 1, maxDelayMs: 10 } }),
    exchange: new HttpExchange('http://in-process.invalid/holdline', requester),
    emit,
    createTransport: (host) => (transport = new Scripted(host)),
    onNetworkBack: undefined,
    rpc: new RpcPeer({ send: () => Promise.resolve(), listeners: () => [], report: () => {} }),
  });
  assert.ok(transport);
  const t = transport;

  await machine.connect();
  assert.equal(machine.state, 'open');
  const first = t.started[0];
  assert.ok(first && first === machine.current);

  // Inbound: a batch with a retried first message.
  assert.equal(t.host.accept(first, { ack: 0, seq: 1, m: ['a', 'b'] }), 0);
  assert.ok(t.host.deliver(first, ['a', 'b'], 0));
  assert.equal(t.host.accept(first, { ack: 0, seq: 2, m: ['b', 'c'] }), 1);
  assert.ok(t.host.deliver(first, ['b', 'c'], 1));
  assert.deepEqual(got, ['a', 'b', 'c']);
  assert.equal(t.host.inboundAck, 3);

  // Outbound: send() asks the transport to flush; a frame takes the batch; the ack rides back.
  await machine.send('x');
  await machine.send('y');
  assert.equal(t.flushes, 2);
  const batch = t.write();
  assert.deepEqual([batch.seq, batch.count, batch.m], [1, 2, '["x","y"]']);
  assert.equal(machine.queuedAmount, 0);
  t.host.acked(2);
  assert.equal(machine.bufferedAmount, 0);
  assert.deepEqual(events, ['open', 'flush', 'ack 2']);

  // A close frame the reaction table says means "new session": a reset onto a second session.
  await machine.send('lost with the session');
  assert.equal(t.host.accept(first, { ack: 2, seq: 0, m: [], close: { code: 'idle_timeout', message: 'idle' } }), -1);
  assert.equal(machine.state, 'reconnecting');
  while (t.started.length < 2) await new Promise((r) => setTimeout(r, 1));
  assert.equal(requester.opens, 2);
  assert.ok(first.abort.signal.aborted, 'the old session is aborted');
  assert.equal(machine.state, 'open');
  assert.deepEqual(events.slice(3), ['reconnecting', 'reset lost=["lost with the session"]', 'open']);
  assert.equal(t.host.inboundAck, 0, 'the new session starts its streams at 0');

  // A fatal failure closes the client, loudly.
  const second = t.started[1];
  assert.ok(second);
  assert.equal(await t.host.failed(second, new HoldlineError('unauthorized', 'no'), 'fatal'), false);
  assert.equal(machine.state, 'closed');
  assert.ok(t.disposed);
  assert.deepEqual(events.slice(-2), ['error', 'close']);
});
