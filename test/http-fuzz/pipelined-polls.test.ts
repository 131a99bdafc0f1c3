/**
 * A hang the HTTP fuzzer found (seed 2, input #578), kept as a test of its
 * own: two polls pipelined in one write on one connection, the first held
 * (up to pollTimeoutMs, 1 s), the second asking for no hold. Both are
 * answered, 200 and 200, within 3 s. The server is the fuzz run's
 * (helpers.ts); the bytes go out raw on one socket (exchange()).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { exchange, type RawInput } from '../helpers/fuzz.js';
import { openRaw, type RawSession } from '../helpers/server.js';
import { fuzzServer, MOUNT } from './helpers.js';

describe('HTTP fuzzer against a real HoldlineServer', () => {
  const server = fuzzServer();

  // Found by this fuzzer (seed 2, input #578): HttpHandler.gone() took a pipelined response with no socket yet for a client gone.
  it(
    'pipelined polls: a poll queued behind a held poll on the same connection is answered',
    async () => {
      const { h, target } = server;
      const a = await openRaw(h.url);
      const b = await openRaw(h.url);
      const poll = (s: RawSession, hold?: number) => {
        const body = JSON.stringify(hold === undefined ? { sid: s.sid, token: s.token, ack: 0 } : { sid: s.sid, token: s.token, ack: 0, hold });
        return `POST ${MOUNT}/poll HTTP/1.1\r\nHost: 127.0.0.1:${target.port}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
      };
      // A's poll is held (up to pollTimeoutMs, 1 s); B's, behind it on the same connection, asks for no hold.
      const input: RawInput = { label: 'held poll A, then poll B hold 0', pieces: [Buffer.from(poll(a) + poll(b, 0))], after: 'keep', expect: 2, methods: ['POST', 'POST'] };
      const r = await exchange(target, input, 3_000);
      assert.deepEqual(
        { hung: r.hung, statuses: r.responses.map((res) => res.status) },
        { hung: false, statuses: [200, 200] },
        'both polls answered within 3 s',
      );
    },
  );
});
