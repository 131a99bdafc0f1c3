/**
 * The store conformance suite: every SessionStore (server/store.ts) runs it.
 * `test/memory-store.test.ts` runs it against MemoryStore; a RedisStore runs
 * it the same way with its own factory.
 *
 * Each test gets a fresh, empty store from `makeStore()` (a store that lives
 * elsewhere gives each call its own namespace, so `count()` and node
 * heartbeats see only that test's sessions and nodes). Two server nodes are
 * two node ids: node A uses handle `a`, node B handle `b`, where `b` is
 * `connect(a)`, a second client of the same backend (for an in-process store,
 * the same object). The concurrency tests race the two handles on one session.
 *
 * This file registers the suite; each area's tests are in a file of their
 * own here: `sessions.ts`, `outbound.ts` (outbound stream), `inbound.ts`
 * (inbound stream), `owner.ts` (owner, liveness), `wake-ups.ts` and
 * `racing.ts` (two nodes racing on one session), with what they share (node
 * ids, timings, the World, helpers) in `world.ts`.
 *
 * What the suite decides where the interface is silent or unclear (each is
 * checked by a test):
 * - wake-ups are asynchronous: no listener runs inside `publish`'s call;
 * - `publish` works for any session id, held or not (a close is published
 *   after the delete);
 * - `release` and `forgetAttempt` of a session the store does not hold are
 *   no-ops (clean-up that may race a delete), not session_unknown;
 * - a subscription may become active after `subscribe()` returns (a remote
 *   store subscribes over the network): tests wait until a probe event
 *   published after subscribing is heard before relying on it (`listen`, in
 *   `wake-ups.ts`);
 * - two sessions created with one attempt (two nodes racing on a retried
 *   open): findByAttempt finds one of them, and deleting the other does not
 *   lose it;
 * - a session taken after a `release` is a takeover too: `took` is true and
 *   the fence grows;
 * - an owner whose heartbeat lapsed but whose session nobody took keeps it
 *   by claiming (same fence, `took` false): "succeeds when node owns it";
 * - a new session's `seenUntil` is some number (not undefined);
 * - `markDelivered` of a number below `delivered()` never moves it back.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { SessionStore } from '../../server/store.js';
import { inbound } from './inbound.js';
import { outbound } from './outbound.js';
import { liveness, owner } from './owner.js';
import { racing } from './racing.js';
import { sessions } from './sessions.js';
import { wakeUps } from './wake-ups.js';
import { NODE_A, type Suite, type World } from './world.js';

export interface StoreConformanceOptions {
  /**
   * A second client of the same backend as `first` (another node's handle).
   * Default: `first` itself, for a store that lives in this process.
   */
  connect?: (first: SessionStore) => Promise<SessionStore> | SessionStore;
  /** Called once for every distinct handle after its test. Default: `store.close?.()`. */
  cleanup?: (store: SessionStore) => Promise<void>;
  /**
   * Known disagreements, by test title: each such test still runs, but as a
   * `todo` with this reason (reported, not failing the run) until the store
   * or the contract is fixed. Keep it empty for a store that conforms.
   */
  known?: Readonly<Record<string, string>>;
}

export function storeConformance(
  name: string,
  makeStore: () => Promise<SessionStore> | SessionStore,
  options: StoreConformanceOptions = {},
): void {
  const cleanup = options.cleanup ?? (async (s: SessionStore): Promise<void> => s.close?.());
  const known = options.known ?? {};
  const unused = new Set(Object.keys(known));
  /** node:test's `test`, run as a todo when the store has a known disagreement with this test. */
  const check = (title: string, fn: (t: TestContext) => Promise<void>): void => {
    const why = known[title];
    unused.delete(title);
    if (why === undefined) test(title, fn);
    else test(title, { todo: why }, fn);
  };

  async function world(t: TestContext): Promise<World> {
    const a = await makeStore();
    t.after(() => cleanup(a));
    const b = options.connect ? await options.connect(a) : a;
    if (b !== a) t.after(() => cleanup(b));
    let n = 0;
    return {
      a,
      b,
      async open(opts = {}) {
        n++;
        const sid = `sid-conformance-${n}`;
        await a.create({ sid, token: opts.token ?? `token-${n}`, attempt: opts.attempt ?? `attempt-${n}` }, opts.owner ?? NODE_A);
        return sid;
      },
    };
  }

  const suite: Suite = { name, check, world };
  describe(`${name}: store conformance`, () => {
    test('options.known names only tests of this suite', () => {
      assert.deepEqual([...unused], []);
    });

    sessions(suite);
    outbound(suite);
    inbound(suite);
    owner(suite);
    liveness(suite);
    wakeUps(suite);
    racing(suite);
  });
}
