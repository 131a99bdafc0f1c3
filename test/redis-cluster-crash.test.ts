/**
 * Scale-out on Redis, when nodes go away under load: three Holdline node
 * processes (test/fixtures/cluster-node.ts) on one redis-server of this
 * file's own, behind a real nginx doing plain round robin. The client runs
 * here and reaches the nodes only through nginx; both streams flow, paced,
 * the whole time.
 *
 * - The owner node is killed with SIGKILL mid-stream: another node takes
 *   the session over (`session` with `resumed`), the client never sees
 *   `reset`, and on the wire nothing is lost or duplicated either way. To the
 *   application delivery across the crash is at-least-once: a message
 *   delivered twice is flagged `redelivered` the second time; a chunk the
 *   dead owner's application was sending (its send() had not resolved) is
 *   sent again by the new owner's application (a new generation of those
 *   messages: the old one may be on the wire too, the wire never doubles
 *   either).
 * - A rolling restart of all three nodes, one at a time (graceful close(),
 *   then a new process on the same port): the same.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { HoldlineClient } from '../client/index.js';
import type { ResetEvent } from '../client/events.js';
import { Cluster, messageKey, parseDown, upMessage, type NodeProcess } from './helpers/cluster.js';
import { Cleanup } from './helpers/server.js';
import { startNginx, type NginxProxy } from './middlebox/nginx.js';
import { startRedis, type RedisServer } from './middlebox/redis.js';


/** Resolves once the client's sends so far are acknowledged, or after `ms` (acks may pause while a node goes). */
function clientAcked(client: HoldlineClient, ms: number): Promise<void> {
  if (client.bufferedAmount === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      client.off('ack', check);
      resolve();
    };
    const check = (): void => {
      if (client.bufferedAmount === 0) done();
    };
    const timer = setTimeout(done, ms);
    client.on('ack', check);
  });
}

interface Run {
  cluster: Cluster;
  nodes: NodeProcess[];
  nginx: NginxProxy;
}

interface StreamResult {
  /** Messages each way. */
  n: number;
  ms: number;
  sid: string;
  /** Server-to-client chunks whose send() resolved: [from, gen]. */
  committed: Array<[number, number]>;
  /** Chunks sent again after a failure. */
  resent: number;
  atClient: string[];
  resets: ResetEvent[];
}

const CHUNK = 50;
const MAX_MESSAGES = 20_000;

/**
 * Both streams through nginx until `disrupt` has finished and at least `min`
 * messages went each way (at most MAX_MESSAGES), paced (a chunk of 50, then
 * `pauseMs`, each way). `disrupt` starts once a quarter of `min` went
 * both ways. Server-to-client: the node that owns the session (the last to
 * announce it) sends each chunk; a chunk that failed (its node died or left)
 * is sent again, a generation up, by whoever owns the session next.
 */
async function streamThrough(run: Run, min: number, pauseMs: number, disrupt: (sid: string) => Promise<void>): Promise<StreamResult> {
  const { cluster, nginx } = run;
  const client = new HoldlineClient(`${nginx.url}/holdline`, { transports: ['polling'], reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
  const atClient: string[] = [];
  const resets: ResetEvent[] = [];
  client.on('message', (m) => {
    atClient.push(messageKey(m));
    if (atClient.length % CHUNK === 0) cluster.changed.notify();
  });
  client.on('reset', (e) => resets.push(e));
  const started = Date.now();
  try {
    await client.connect();
    const sid = client.sessionId ?? '';
    let disrupted = false;
    let n = min;
    const go = (i: number): boolean => i < n || (!disrupted && i < MAX_MESSAGES);

    const owner = async (): Promise<NodeProcess> => {
      let found: NodeProcess | undefined;
      await cluster.changed.until(
        () => {
          const last = cluster.sessions.filter((s) => s.sid === sid).at(-1);
          found = last === undefined ? undefined : cluster.byId(last.node);
          return found !== undefined && !found.exited;
        },
        30_000,
        () => `a live node owns ${sid}`,
      );
      assert.ok(found);
      return found;
    };

    const committed: Array<[number, number]> = [];
    let resent = 0;
    let downSent = 0;
    const down = (async () => {
      let gen = 0;
      for (let from = 0; go(from); ) {
        const node = await owner();
        const r = await node.command({ cmd: 'send', sid, from, count: CHUNK, gen, remote: false });
        if (r.ok) {
          committed.push([from, gen]);
          from += CHUNK;
          downSent = from;
          await sleep(pauseMs);
          continue;
        }
        assert.notEqual(r.code, 'timeout', `${node.nodeId} never answered a send`);
        // Not sent (the node no longer owns it), or sent in part (it died or left meanwhile):
        // the application sends the chunk again, a generation up, on the next owner.
        if (r.code !== 'invalid_state') {
          gen++;
          resent++;
        }
        await sleep(50);
      }
    })();
    let upSent = 0;
    const up = (async () => {
      for (let i = 0; go(i); i++) {
        await client.send(upMessage(i));
        upSent = i + 1;
        if (i % CHUNK === CHUNK - 1) {
          await clientAcked(client, 2_000);
          await sleep(pauseMs);
        }
      }
    })();
    await cluster.changed.until(
      () => atClient.length >= min / 4 && cluster.delivered(sid).length >= min / 4,
      60_000,
      () => `a quarter of the streams: client has ${atClient.length}, server ${cluster.delivered(sid).length}`,
    );
    await disrupt(sid);
    // From here on both streams go to the same end: the further one's, in whole chunks.
    n = Math.max(n, Math.ceil(Math.max(upSent, downSent) / CHUNK) * CHUNK);
    disrupted = true;
    await Promise.all([down, up]);
    assert.deepEqual([upSent, downSent], [n, n], 'both streams sent as many');
    await cluster.changed.until(
      () => new Set(atClient.map((k) => parseDown(k)?.i)).size >= n && new Set(cluster.delivered(sid).map((m) => m.key)).size >= n,
      60_000,
      () => `everything arrives: client has ${atClient.length}, server ${cluster.delivered(sid).length} of ${n}`,
    );
    // A moment more, so that a late duplicate would show.
    await sleep(300);
    assert.equal(client.sessionId, sid, 'the client is on the session it opened');
    return { n, ms: Date.now() - started, sid, committed, resent, atClient, resets };
  } finally {
    await client.close();
  }
}

interface Checked {
  /** Messages the application got twice (the second time flagged). */
  repeats: number;
  /** Messages flagged redelivered. */
  flagged: number;
  /** Server-to-client message numbers the client got in two generations. */
  twoGenerations: number;
}

/**
 * The wire: the client got each server-to-client message (number, generation)
 * at most once, every committed one, the first of each number in order 0..n-1.
 * The application: every client-to-server message once in order after
 * dropping repeats, and every repeat flagged redelivered.
 */
function checkStreams(cluster: Cluster, r: StreamResult): Checked {
  const { n, atClient } = r;
  assert.deepEqual(r.resets, [], 'the client never saw a reset');

  assert.equal(new Set(atClient).size, atClient.length, 'server to client: no message (number, generation) arrived twice');
  const firsts: number[] = [];
  const seen = new Set<number>();
  const lastOfGen = new Map<number, number>();
  for (const k of atClient) {
    const d = parseDown(k);
    assert.ok(d, `a message of ours: ${k}`);
    const prev = lastOfGen.get(d.gen);
    assert.ok(prev === undefined || d.i > prev, `server to client: generation ${d.gen} in order (${String(prev)} then ${d.i})`);
    lastOfGen.set(d.gen, d.i);
    if (!seen.has(d.i)) {
      seen.add(d.i);
      firsts.push(d.i);
    }
  }
  for (let i = 0; i < n; i++) if (firsts[i] !== i) assert.fail(`server to client: the ${i}-th new message is ${String(firsts[i])}`);
  assert.equal(firsts.length, n, 'server to client: every message');
  const got = new Set(atClient.map((k) => {
    const d = parseDown(k);
    return `${d?.i ?? -1}.${d?.gen ?? -1}`;
  }));
  for (const [from, gen] of r.committed) {
    for (let i = from; i < from + CHUNK; i++) assert.ok(got.has(`${i}.${gen}`), `server to client: committed message ${i} (generation ${gen}) arrived`);
  }

  const delivered = cluster.delivered(r.sid);
  const app: string[] = [];
  const had = new Set<string>();
  let repeats = 0;
  for (const m of delivered) {
    if (had.has(m.key)) {
      assert.ok(m.redelivered, `client to server: ${m.key} came twice, the second time on ${m.node} not flagged redelivered`);
      repeats++;
      continue;
    }
    had.add(m.key);
    app.push(m.key);
  }
  for (let i = 0; i < n; i++) {
    const want = messageKey(upMessage(i));
    if (app[i] !== want) assert.fail(`client to server: message ${i} is ${String(app[i])}, expected ${want}`);
  }
  assert.equal(app.length, n, 'client to server: every message, nothing else');
  return { repeats, flagged: delivered.filter((m) => m.redelivered).length, twoGenerations: atClient.length - n };
}

describe('Scale-out on Redis: nodes going away under load', { timeout: 170_000 }, () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());
  let redis: RedisServer;
  let runs = 0;

  before(async () => {
    redis = await startRedis();
    cleanup.add(() => redis.stop());
  });

  async function startRun(t: TestContext): Promise<Run> {
    const local = new Cleanup();
    t.after(() => local.run());
    const cluster = new Cluster({ redisUrl: redis.url, keyPrefix: `hx${process.pid}-${++runs}:`, ownerLeaseMs: 1_000, pollTimeoutMs: 1_000, sessionIdleTimeoutMs: 5_000 });
    local.add(() => cluster.stop());
    const nodes = await Promise.all(['n1', 'n2', 'n3'].map((id) => cluster.start(id)));
    const nginx = await startNginx({ upstreams: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })) });
    local.add(() => nginx.stop());
    return { cluster, nodes, nginx };
  }

  it('kill -9 of the owner mid-stream: another node takes over (resumed), no reset, nothing lost or doubled on the wire', async (t) => {
    const run = await startRun(t);
    const { cluster } = run;
    let killed: NodeProcess | undefined;
    let takeoverMs = -1;
    const r = await streamThrough(run, 4_000, 20, async (sid) => {
      const last = cluster.sessions.filter((s) => s.sid === sid).at(-1);
      killed = last === undefined ? undefined : cluster.byId(last.node);
      assert.ok(killed, 'the owner is known');
      const at = Date.now();
      await killed.kill();
      assert.equal(killed.exitStatus?.signal, 'SIGKILL');
      const dead = killed.nodeId;
      await cluster.changed.until(() => cluster.sessions.some((s) => s.sid === sid && s.node !== dead), 30_000, () => 'another node takes the session over');
      const taken = cluster.sessions.find((s) => s.sid === sid && s.node !== dead);
      takeoverMs = Math.round((taken?.t ?? 0) - at);
    });
    const c = checkStreams(cluster, r);
    const dead = killed?.nodeId;
    const announced = cluster.sessions.filter((s) => s.sid === r.sid);
    assert.equal(announced.length, 2, `announced by the first owner, then once by the node that took it over: ${JSON.stringify(announced)}`);
    assert.equal(announced[0]?.node, dead);
    assert.deepEqual(announced.map((s) => s.resumed), [false, true], 'the new owner says resumed');
    const flaggedOn = new Set(cluster.delivered(r.sid).filter((m) => m.redelivered).map((m) => m.node));
    assert.ok(![...flaggedOn].includes(dead ?? ''), 'only the new owner flags');
    assert.deepEqual(cluster.errors, [], 'no node reported an error');
    t.diagnostic(
      `${r.n} messages each way in ${r.ms} ms; owner ${dead ?? ''} killed (SIGKILL), taken over by ${announced[1]?.node ?? ''} ` +
        `${takeoverMs} ms later (ownerLeaseMs 1000); ${c.flagged} flagged redelivered, of which ${c.repeats} had been delivered before the crash; ` +
        `${r.resent} chunk(s) the application sent again, ${c.twoGenerations} message(s) reached the client in two generations`,
    );
  });

  it('rolling restart of all three nodes under load (graceful close, then a new process on the same port): no reset, nothing lost or doubled', async (t) => {
    const run = await startRun(t);
    const { cluster, nodes } = run;
    const rolled: string[] = [];
        // Paced slower: the roll takes tens of seconds (nginx keeps a refused upstream out for 10 s).
    const r = await streamThrough(run, 3_000, 150, async () => {
      for (const [k, old] of nodes.entries()) {
        const port = old.port;
        const closing = Date.now();
        await old.close();
        assert.deepEqual(old.exitStatus, { code: 0, signal: null }, `${old.nodeId} closed gracefully`);
        const fresh = await cluster.start(`n${k + 1}-again`, port);
        assert.equal(fresh.port, port, 'the new process listens on the same port');
        // Rolled on once nginx sends it requests again (it may keep a refused upstream out for up to 10 s).
        let served = 0;
        for (let i = 0; i < 120 && served === 0; i++) {
          const s = await fresh.command({ cmd: 'stats' });
          served = (s.requests?.poll ?? 0) + (s.requests?.send ?? 0);
          if (served === 0) await sleep(250);
        }
        assert.ok(served > 0, `nginx sends requests to ${fresh.nodeId} again`);
        rolled.push(`${old.nodeId}->${fresh.nodeId} ${Date.now() - closing} ms`);
      }
    });
    const c = checkStreams(cluster, r);
    const announced = cluster.sessions.filter((s) => s.sid === r.sid);
    assert.ok(announced.length >= 2, 'the session moved at least once');
    assert.deepEqual(announced.slice(1).map((s) => s.resumed), announced.slice(1).map(() => true), 'each node that took it over says resumed');
    assert.ok(announced.at(-1)?.node.endsWith('-again'), 'a restarted node owns it at the end');
    assert.deepEqual(cluster.errors, [], 'no node reported an error');
    t.diagnostic(
      `${r.n} messages each way in ${r.ms} ms across the roll (${rolled.join(', ')}); owners ${announced.map((s) => s.node).join(' -> ')}; ` +
        `${c.flagged} flagged redelivered (${c.repeats} repeats); ${r.resent} chunk(s) sent again, ${c.twoGenerations} message(s) in two generations`,
    );
  });
});
