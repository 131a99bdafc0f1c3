/**
 * A client that polls and never reads cannot make the server hold answer
 * after answer for it: at most one batch answer per session waits unread in
 * the server's process (later polls wait, then get an empty heartbeat), and
 * an answer not read within writeTimeoutMs has its connection dropped.
 * (The audit: 100 polls with ack 0 on sockets never read took a server from
 * 70 to 480 MB of RSS; 250 took it past 1 GB, from 39 KB sent.)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import type { Session } from '../server/index.js';
import { Cleanup, openRaw, startServer } from './helpers/server.js';

/** Send one poll on a raw socket that is never read from. */
function pollAndNeverRead(url: URL, body: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port) }, () => {
      socket.pause(); // never read: the answer piles up in the server's socket buffers
      socket.write(
        `POST ${url.pathname}/poll HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      resolve(socket);
    });
    socket.on('error', reject);
  });
}


describe('slow readers', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it('polls that are never read: one batch answer at most waits unread per session; the rest wait or get heartbeats', async () => {
    const MAX_BATCH = 4 * 1024 * 1024;
    const h = await startServer({ maxBatchBytes: MAX_BATCH, maxQueuedBytes: 32 * 1024 * 1024, pollTimeoutMs: 1_000, writeTimeoutMs: 60_000 });
    cleanup.add(() => h.close());
    const serverSockets: net.Socket[] = [];
    h.server.on('connection', (s) => serverSockets.push(s));
    const sessionP = new Promise<Session>((resolve) => h.hl.once('session', resolve));
    const s = await openRaw(h.url);
    const session = await sessionP;
    // 24 MB queued: six full batches, were they all answered at once.
    const chunk = 'x'.repeat(64 * 1024);
    for (let i = 0; i < 384; i++) void session.send(chunk);
    await session.committed();

    const url = new URL(h.url);
    const body = JSON.stringify({ sid: s.sid, token: s.token, ack: 0, hold: 1_000 });
    const sockets: net.Socket[] = [];
    cleanup.add(() => sockets.forEach((x) => x.destroy()));
    for (let i = 0; i < 20; i++) {
      sockets.push(await pollAndNeverRead(url, body));
      await sleep(20);
    }
    await sleep(1_500); // past the hold: the polls that waited have had their heartbeats
    const unread = serverSockets.reduce((sum, x) => sum + x.writableLength, 0);
    // Without the bound: about 20 x 4 MB (less what the kernel took). With it: one batch.
    assert.ok(unread <= MAX_BATCH + 64 * 1024, `the server holds ${unread} bytes of answers unread (at most one batch of ${MAX_BATCH})`);

    // A healthy client of another session is served meanwhile.
    const other = await openRaw(h.url);
    const res = await fetch(`${h.url}/poll`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ ...other, ack: 0, hold: 0 }) });
    assert.equal(res.status, 200);
  });

  it('an answer not read within writeTimeoutMs has its connection dropped', async () => {
    // An answer larger than the kernel's socket buffers on loopback take (several MB), so that some of it waits in the process.
    const h = await startServer({ maxBatchBytes: 32 * 1024 * 1024, maxQueuedBytes: 64 * 1024 * 1024, writeTimeoutMs: 300 });
    cleanup.add(() => h.close());
    const serverSockets: net.Socket[] = [];
    h.server.on('connection', (s) => serverSockets.push(s));
    const sessionP = new Promise<Session>((resolve) => h.hl.once('session', resolve));
    const s = await openRaw(h.url);
    const session = await sessionP;
    const chunk = 'y'.repeat(64 * 1024);
    for (let i = 0; i < 500; i++) void session.send(chunk);
    await session.committed();
    const socket = await pollAndNeverRead(new URL(h.url), JSON.stringify({ sid: s.sid, token: s.token, ack: 0, hold: 0 }));
    cleanup.add(() => socket.destroy());
    await sleep(100);
    const waiting = serverSockets.find((x) => x.writableLength > 0);
    assert.ok(waiting, 'part of the answer waits in the server for the client to read it');
    // (The client's socket, paused, would not notice: the server's end is what holds memory.)
    const closed = new Promise<void>((resolve) => (waiting.destroyed ? resolve() : waiting.once('close', () => resolve())));
    await Promise.race([closed, sleep(5_000).then(() => assert.fail('the unread answer was not dropped within 5 s'))]);
    const held = serverSockets.reduce((sum, x) => sum + x.writableLength, 0);
    assert.equal(held, 0, 'nothing is held for it any more');
  });
});

describe('slow senders', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it('a body dribbled in past bodyTimeoutMs is answered 408 request_timeout and its connection closed', async () => {
    const h = await startServer({ bodyTimeoutMs: 500 });
    cleanup.add(() => h.close());
    const s = await openRaw(h.url);
    const url = new URL(h.url);
    const socket = net.connect({ host: url.hostname, port: Number(url.port) });
    cleanup.add(() => socket.destroy());
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString('utf8')));
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const body = JSON.stringify({ ...s, ack: 0, hold: 0 });
    socket.write(`POST ${url.pathname}/poll HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n`);
    // One byte every 200 ms: the whole body would take several seconds.
    const dribble = setInterval(() => {
      if (!socket.destroyed) socket.write(body.slice(0, 1));
    }, 200);
    cleanup.add(() => clearInterval(dribble));
    await Promise.race([ended, sleep(5_000).then(() => assert.fail('the connection was not closed within 5 s'))]);
    clearInterval(dribble);
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.match(answer, /"code":"request_timeout"/);
  });
});
