/**
 * Calls with replies (issue 15): client.request() answered by
 * session.on('request'), and the mirror image, on both transports; and
 * every outcome that is not a reply: timeout, session_lost (a reset),
 * aborted, a listener that throws, rejects or is missing (an error reply
 * with a code, never a hang), a closed end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HoldlineClient, type TransportName } from '../client/index.js';
import { HoldlineError, type Session } from '../server/index.js';
import { decodeFrame, encodeErrorReply, encodeReply, encodeRequest, type Payload, type RpcWire } from '../shared/index.js';
import { startHoldline, type RunningHoldline } from './helpers/holdline.js';

const FAST = { reconnect: { minDelayMs: 20, maxDelayMs: 200 } };

async function connected(t: { after(fn: () => unknown): void }, hl: RunningHoldline, transports: TransportName[] = ['polling']): Promise<{ client: HoldlineClient; session: Session }> {
  const sessionP = new Promise<Session>((resolve) => hl.server.once('session', resolve));
  const client = new HoldlineClient(hl.url, { ...FAST, transports });
  t.after(() => client.close());
  await client.connect();
  if (transports[0] === 'websocket') {
    const end = Date.now() + 5_000;
    while (client.transport !== 'websocket' && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    assert.equal(client.transport, 'websocket');
  }
  return { client, session: await sessionP };
}

function failedWith(code: string, replyCode?: string) {
  return (e: unknown) => {
    assert.ok(e instanceof HoldlineError, `a HoldlineError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (replyCode !== undefined) assert.equal(e.replyCode, replyCode, e.message);
    return true;
  };
}

for (const transports of [['polling'], ['websocket']] as TransportName[][]) {
  test(`requests both ways, text and binary, with plain messages between them (${transports[0]})`, async (t) => {
    const hl = await startHoldline(t, { pollTimeoutMs: 1_000 });
    const { client, session } = await connected(t, hl, transports);
    const serverGot: Payload[] = [];
    const clientGot: Payload[] = [];
    session.on('message', (m) => serverGot.push(m));
    client.on('message', (m) => clientGot.push(m));
    session.on('request', (d, reply) => reply(typeof d === 'string' ? `server:${d}` : new Uint8Array([...d].reverse())));
    client.on('request', async (d) => (typeof d === 'string' ? `client:${d}` : new Uint8Array([...d, 0])));

    await client.send('before');
    assert.equal(await client.request('hi'), 'server:hi');
    assert.deepEqual(await client.request(new Uint8Array([1, 2, 3])), new Uint8Array([3, 2, 1]));
    await client.send('after');
    await session.send('down-before');
    assert.equal(await session.request('yo'), 'client:yo');
    assert.deepEqual(await session.request(new Uint8Array([9])), new Uint8Array([9, 0]));
    await session.send('down-after');
    const end = Date.now() + 5_000;
    while ((serverGot.length < 2 || clientGot.length < 2) && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    // Requests and replies are never delivered as messages.
    assert.deepEqual(serverGot, ['before', 'after']);
    assert.deepEqual(clientGot, ['down-before', 'down-after']);
  });
}

test('a request with no reply in time rejects with timeout', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 1_000 });
  const { client, session } = await connected(t, hl);
  session.on('request', () => undefined); // never answers
  client.on('request', () => undefined);
  await assert.rejects(client.request('slow', { timeoutMs: 100 }), failedWith('timeout'));
  await assert.rejects(session.request('slow', { timeoutMs: 100 }), failedWith('timeout'));
});

test('a session reset rejects pending requests with session_lost (both ends)', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 1_000 });
  const { client, session } = await connected(t, hl);
  let asked!: () => void;
  const serverAsked = new Promise<void>((resolve) => (asked = resolve));
  session.on('request', () => asked());
  const up = assert.rejects(client.request('never answered', { timeoutMs: 60_000 }), failedWith('session_lost'));
  const down = assert.rejects(session.request('nor this', { timeoutMs: 60_000 }), failedWith('session_lost'));
  await serverAsked;
  const reset = new Promise<void>((resolve) => client.once('reset', () => resolve()));
  // The server forgets the session (as when it expires): the client opens a new one.
  session.close({ code: 'idle_timeout', message: 'test' });
  await down;
  await reset;
  await up;
});

test('a listener that throws, rejects or is missing: an error reply with a code, never a hang', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 1_000 });
  const { client, session } = await connected(t, hl);
  // No listener yet, either side.
  await assert.rejects(client.request('anyone?'), failedWith('request_failed', 'no_handler'));
  await assert.rejects(session.request('anyone?'), failedWith('request_failed', 'no_handler'));

  const errors: unknown[] = [];
  hl.server.on('error', (e) => errors.push(e));
  session.on('request', (d) => {
    if (d === 'throw') throw new Error('boom');
    if (d === 'reject') return Promise.reject(Object.assign(new Error('not yours'), { code: 'forbidden' }));
    if (d === 'reply-error') return undefined;
    return 'ok';
  });
  session.on('request', (d, reply) => {
    if (d === 'reply-error') reply(Object.assign(new Error('no such item'), { code: 'not_found_item' }));
  });
  await assert.rejects(client.request('throw'), (e: unknown) => failedWith('request_failed', 'handler_error')(e) && /boom/.test((e as Error).message));
  await assert.rejects(client.request('reject'), failedWith('request_failed', 'forbidden'));
  await assert.rejects(client.request('reply-error'), failedWith('request_failed', 'not_found_item'));
  assert.equal(await client.request('fine'), 'ok');

  client.on('request', () => {
    throw new Error('client listener broke');
  });
  await assert.rejects(session.request('x'), (e: unknown) => failedWith('request_failed', 'handler_error')(e) && /client listener broke/.test((e as Error).message));
  assert.deepEqual(errors, [], 'a failing request listener is the requester\'s answer, not a server error');
});

test('the first reply wins; later replies are ignored', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 1_000 });
  const { client, session } = await connected(t, hl);
  session.on('request', (_d, reply) => {
    reply('first');
    reply('second');
  });
  session.on('request', () => 'third');
  assert.equal(await client.request('x'), 'first');
  assert.equal(await client.request('y'), 'first');
});

test('an aborted request rejects with aborted; bad arguments with invalid_argument', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 1_000 });
  const { client, session } = await connected(t, hl);
  session.on('request', () => undefined);
  const ac = new AbortController();
  const p = client.request('wait', { signal: ac.signal });
  ac.abort();
  await assert.rejects(p, failedWith('aborted'));
  await assert.rejects(client.request('x', { signal: AbortSignal.abort() }), failedWith('aborted'));
  await assert.rejects(client.request(42 as unknown as string), failedWith('invalid_argument'));
  for (const timeoutMs of [0, -1, 1.5, 2 ** 31, '100']) {
    await assert.rejects(client.request('x', { timeoutMs: timeoutMs as number }), failedWith('invalid_argument'));
  }
  await assert.rejects(session.request({} as unknown as string), failedWith('invalid_argument'));
});

test('requests on a closed end reject with why it closed', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 1_000 });
  const { client, session } = await connected(t, hl);
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  session.close();
  await closed;
  await assert.rejects(client.request('late'), failedWith('server_closed'));
  await assert.rejects(session.request('late'), failedWith('session_closed'));
  const other = await connected(t, hl);
  await other.client.close();
  await assert.rejects(other.client.request('late'), failedWith('client_closed'));
});

test('frames: encode and decode round trip; anything else is not a frame', () => {
  const req = decodeFrame(encodeRequest(7, 'hello').wire as RpcWire);
  assert.deepEqual(req, { kind: 'request', id: 7, data: 'hello' });
  const bin = decodeFrame(encodeReply(8, new Uint8Array([0, 255])).wire as RpcWire);
  assert.deepEqual(bin, { kind: 'reply', id: 8, data: new Uint8Array([0, 255]) });
  assert.deepEqual(decodeFrame(encodeErrorReply(9, 'nope', 'no').wire as RpcWire), { kind: 'error', id: 9, code: 'nope', message: 'no' });
  assert.equal((encodeRequest(1, 'x').wire as RpcWire).r, '{"v":1,"q":1,"d":"x"}');
  for (const r of ['', 'null', '[]', '{"v":1}', '{"v":1,"q":0,"d":"x"}', '{"v":1,"q":1.5,"d":"x"}', '{"v":1,"q":1,"d":5}', '{"v":1,"q":1,"e":{"code":"x","message":"y"}}', '{"v":1,"a":1,"e":"x"}']) {
    assert.equal(decodeFrame({ r }), undefined, r);
  }
  assert.deepEqual(decodeFrame({ r: '{"v":2,"q":3,"d":"x"}' }), { kind: 'unsupported', id: 3, request: true });
});
