/**
 * What the bad-input files share: the server every case runs against, the
 * healthy session that runs beside it, and the small tools the cases use
 * (assertError, the envelopes, the server's limits).
 *
 * badInputSuite(), called first in a file's describe block 'bad input, with
 * a healthy session exchanging messages throughout', makes that file's
 * set-up: one server for the file (mounted at /hl, small limits, an
 * authenticate hook that refuses on x-test-deny and throws on
 * x-test-throw), and a healthy HoldlineClient exchanging a steady stream of
 * numbered messages both ways (client -> server, echoed back, plus the
 * server's own stream) from before the first case on; the bad requests are
 * raw HTTP, sent meanwhile on other connections (and some aimed at the
 * healthy session itself). After every case (afterEach) the stream must go
 * on. closingChecks(), called last in the block, adds the block's two
 * closing tests: no client mistake reported as a server error, and
 * checkHealthyStream(), which stops the stream and checks every message
 * arrived once, in order, both ways.
 */
import { after, afterEach, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoldlineClient, type HoldlineError, type Payload, type ResetEvent } from '../../client/index.js';
import type { CloseReason, Session } from '../../server/index.js';
import {
  Cleanup,
  Condition,
  nextMessage,
  openRaw,
  startServer,
  type RawSession,
  type StartedServer,
} from '../helpers/server.js';
import { sessionIdOf } from '../helpers/holdline.js';

export { assertError } from '../helpers/assertions.js';

export const MAX_MESSAGE = 1024;
export const MAX_BATCH = 4096;
export const MAX_SESSIONS = 40;
export const HOOK_ERROR = 'authenticate hook exploded';


export const json = (v: unknown) => JSON.stringify(v);

export const sendBody = (s: RawSession, seq: number, m: unknown[], ack = 0) => json({ sid: s.sid, token: s.token, ack, seq, m });
export const pollBody = (s: RawSession, ack = 0, hold = 0) => json({ sid: s.sid, token: s.token, ack, hold });

/** A file's server and healthy session (badInputSuite()). */
export interface BadInputSuite {
  /** The healthy client's session id. */
  healthySid(): string;
  /** Every message the server-side session `sid` received. */
  got(sid: string): Payload[];
  /** A raw session of our own, to spoil. */
  open(): Promise<RawSession>;
  /** The server's 'error' events. */
  readonly serverErrors: unknown[];
  /** Stop the healthy stream; assert every message arrived once, in order, both ways, and that a fresh client still gets its echo. */
  checkHealthyStream(): Promise<void>;
}

/** The server and its base URL (…/hl). */
export interface Started {
  h: StartedServer;
  base: string;
}

/**
 * The set-up of a bad-input describe block; call it first in the block.
 * `onStart` gets the server as soon as it listens, in the suite's before()
 * hook.
 */
export function badInputSuite(onStart: (started: Started) => void): BadInputSuite {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  let h: StartedServer;
  let base: string;
  let client: HoldlineClient;
  /** Every message each server-side session received, by session id. */
  const received = new Map<string, Payload[]>();
  const serverErrors: unknown[] = [];
  const changed = new Condition();

  // The healthy stream.
  let running = true;
  let clientSent = 0;
  let serverSent = 0;
  const clientGot: string[] = [];
  const clientEvents: string[] = [];
  let producers: Promise<void>[] = [];

  const healthySid = () => sessionIdOf(client);
  const got = (sid: string) => received.get(sid) ?? [];

  before(async () => {
    h = await startServer(
      {
        maxMessageBytes: MAX_MESSAGE,
        maxBatchBytes: MAX_BATCH,
        maxSessions: MAX_SESSIONS,
        pollTimeoutMs: 1_000,
        authenticate: (req) => {
          if (req.headers['x-test-throw'] !== undefined) return Promise.reject(new Error(HOOK_ERROR));
          return req.headers['x-test-deny'] === undefined;
        },
      },
      { path: '/hl' },
    );
    cleanup.add(() => h.close());
    base = h.url;
    onStart({ h, base });
    h.hl.on('error', (e) => serverErrors.push(e));
    h.hl.on('session', (s: Session) => {
      const list: Payload[] = [];
      received.set(s.id, list);
      s.on('message', (d) => {
        list.push(d);
        changed.notify();
        // Echo the healthy client's numbered messages.
        if (typeof d === 'string' && d.startsWith('c-')) s.send(`e-${d.slice(2)}`).catch((e: unknown) => serverErrors.push(e));
      });
    });

    client = new HoldlineClient(base, { reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
    cleanup.add(() => client.close());
    client.on('message', (d) => {
      clientGot.push(typeof d === 'string' ? d : `binary:${d.byteLength}`);
      changed.notify();
    });
    client.on('error', (e: HoldlineError) => clientEvents.push(`error ${e.code}: ${e.message}`));
    client.on('reset', (e: ResetEvent) => clientEvents.push(`reset ${e.reason.code}`));
    client.on('reconnecting', (e) => clientEvents.push(`reconnecting ${e.error.code}: ${e.error.message}`));
    client.on('close', (r: CloseReason) => clientEvents.push(`close ${r.code}`));
    await client.connect();
    const session = h.hl.session(healthySid());
    assert.ok(session, 'the healthy session exists on the server');

    cleanup.add(async () => {
      running = false;
      await Promise.allSettled(producers);
    });
    // A failed send ends its producer and is recorded: the last test reports it.
    const failed = (who: string) => (e: unknown) => {
      running = false;
      clientEvents.push(`${who} send failed: ${String(e)}`);
    };
    // Numbered messages, one at a time, until running ends; `sent` counts each once its send() resolved.
    const produce = async (send: (m: string) => Promise<void>, prefix: string, sent: () => void, pauseMs: number) => {
      for (let i = 0; running; i++) {
        await send(`${prefix}-${i}`);
        sent();
        await sleep(pauseMs);
      }
    };
    producers = [
      produce((m) => client.send(m), 'c', () => void clientSent++, 2).catch(failed('client')),
      produce((m) => session.send(m), 's', () => void serverSent++, 3).catch(failed('server')),
    ];
    // The stream is flowing before the first bad request.
    await changed.until(() => got(healthySid()).length >= 5 && clientGot.length >= 5, 5_000, () => 'the healthy stream to start');
  });

  // After every bad case the healthy session is still exchanging: new messages
  // arrive on both ends after the case is over.
  afterEach(async () => {
    if (!running) return;
    const sid = healthySid();
    const [serverMark, clientMark] = [got(sid).length, clientGot.length];
    await changed.until(
      () => got(sid).length > serverMark + 2 && clientGot.length > clientMark + 2,
      5_000,
      () => `the healthy stream to go on (server ${got(sid).length - serverMark} new, client ${clientGot.length - clientMark} new)`,
    );
  });

  /** A raw session of our own, to spoil. */
  const open = (): Promise<RawSession> => openRaw(base);

  async function checkHealthyStream(): Promise<void> {
    assert.ok(clientSent > 20 && serverSent > 20, `the stream ran all along (${clientSent} sent, ${serverSent} pushed)`);
    running = false;
    await Promise.all(producers);
    const sid = healthySid();
    const echoes = () => clientGot.filter((m) => m.startsWith('e-'));
    const pushes = () => clientGot.filter((m) => m.startsWith('s-'));
    await changed.until(
      () => got(sid).length >= clientSent && echoes().length >= clientSent && pushes().length >= serverSent,
      10_000,
      () => `server got ${got(sid).length}/${clientSent}, echoes ${echoes().length}/${clientSent}, pushes ${pushes().length}/${serverSent}`,
    );
    const numbered = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
    assert.deepEqual(got(sid), numbered('c', clientSent));
    assert.deepEqual(echoes(), numbered('e', clientSent));
    assert.deepEqual(pushes(), numbered('s', serverSent));
    assert.equal(clientGot.length, clientSent + serverSent, 'nothing else, nothing twice');
    assert.deepEqual(clientEvents, [], 'no error, reconnect, reset or close on the healthy client');
    assert.equal(client.state, 'open');
    assert.equal(client.sessionId, sid);

    // Still serving: a brand-new client opens and echoes.
    const fresh = new HoldlineClient(base);
    cleanup.add(() => fresh.close());
    await fresh.connect();
    const echoed = nextMessage(fresh);
    await fresh.send('c-fresh');
    assert.equal(await echoed, 'e-fresh');
  }

  return {
    healthySid,
    got,
    open,
    serverErrors,
    checkHealthyStream,
  };
}

/**
 * The closing checks of a bad-input describe block; call it last in the
 * block: no client mistake of the block was reported as a server error (the
 * authenticate hook's own failure aside), and the healthy session that ran
 * through it all got every message exactly once, in order, both ways.
 */
export function closingChecks(suite: BadInputSuite): void {
  it('client mistakes are answered, not reported as server errors', () => {
    // Only the authenticate hook's own failure belongs on the 'error' event.
    const unexpected = suite.serverErrors.filter((e) => !(e instanceof Error && e.message === HOOK_ERROR));
    assert.deepEqual(
      unexpected.map((e) => (e instanceof Error ? `${(e as HoldlineError).code ?? e.name}: ${e.message}` : String(e))),
      [],
    );
  });

  it('the healthy session got every message exactly once, in order, both ways, and the server still serves', async () => {
    await suite.checkHealthyStream();
  });
}
