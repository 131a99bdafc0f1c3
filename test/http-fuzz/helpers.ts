/**
 * What the HTTP fuzzer's files share: the run's settings (the seed, the input
 * count and the time budget, each input's deadline, the server's limits) and
 * the server they aim at, a real HoldlineServer started once per file by
 * fuzzServer(): every session echoes what it gets, and what the process
 * throws or rejects unhandled and what the server reports as an error are
 * collected for the tests to assert.
 */
import { after, before } from 'node:test';
import type { Session } from '../../server/index.js';
import { targetOf, type Target } from '../helpers/fuzz.js';
import { Cleanup, startServer, type StartedServer } from '../helpers/server.js';

export const SEED = Number(process.env.HOLDLINE_FUZZ_SEED ?? 0xf022_5eed);
export const INPUTS = Number(process.env.HOLDLINE_FUZZ_INPUTS ?? 3_000);
/** Stop starting inputs after this long (the run must stay well under a minute). */
export const BUDGET_MS = 40_000;
export const DEADLINE_MS = 5_000;
export const WORKERS = 8;
export const MAX_BODY = 64 * 1024;

export const MOUNT = '/holdline';
export const ALLOWED_ORIGIN = 'http://allowed.example';
export const MAX_MESSAGE = 8 * 1024;
export const MAX_BATCH = 32 * 1024;

/** The server of a file's describe block, once its before() hook has run. */
export interface FuzzServer {
  readonly cleanup: Cleanup;
  readonly h: StartedServer;
  readonly target: Target;
  /** uncaughtException and unhandledRejection in this process while the server runs. */
  readonly processErrors: string[];
  /** The server's 'error' events, and the healthy session's failed echoes. */
  readonly serverErrors: unknown[];
  /** The healthy client's session: a failed echo to it is a server error (fuzz sessions' echoes may be refused). */
  healthySid: string | undefined;
}

/** Start the fuzzed server in a before() hook of the calling describe block; an after() hook closes it and runs `cleanup`. */
export function fuzzServer(): FuzzServer {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  let h: StartedServer;
  let target: Target;
  const processErrors: string[] = [];
  const serverErrors: unknown[] = [];
  let healthySid: string | undefined;

  before(async () => {
    const onUncaught = (e: unknown) => processErrors.push(`uncaughtException: ${String(e)}`);
    const onRejection = (e: unknown) => processErrors.push(`unhandledRejection: ${String(e)}`);
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onRejection);
    cleanup.add(() => {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onRejection);
    });
    h = await startServer({
      maxMessageBytes: MAX_MESSAGE,
      maxBatchBytes: MAX_BATCH,
      maxSessions: 2_000,
      pollTimeoutMs: 1_000,
      sessionIdleTimeoutMs: 20_000,
      allowedOrigins: [ALLOWED_ORIGIN],
      trustProxy: true,
    });
    cleanup.add(() => h.close());
    target = targetOf(h.url);
    h.hl.on('error', (e) => serverErrors.push(e));
    // Every session echoes what it gets; fuzz sessions never ack, so their echoes may be refused: that is fine.
    h.hl.on('session', (s: Session) => {
      s.on('message', (d) => {
        s.send(d).catch((e: unknown) => {
          if (s.id === healthySid) serverErrors.push(e);
        });
      });
    });
  });

  return {
    cleanup,
    get h() {
      return h;
    },
    get target() {
      return target;
    },
    processErrors,
    serverErrors,
    get healthySid() {
      return healthySid;
    },
    set healthySid(sid: string | undefined) {
      healthySid = sid;
    },
  };
}
