/**
 * A SessionStore in Redis: several HoldlineServers (nodes) given RedisStores
 * on one Redis serve one session behind a plain round-robin balancer.
 * `import { RedisStore } from 'holdline/redis'`; ioredis is an optional peer
 * dependency, needed only here.
 *
 * Keys (P is `keyPrefix`, default `holdline:`). One session's keys share a
 * hash tag, so they live in one slot and every per-session operation is one
 * Lua script (atomic, and allowed on Redis Cluster):
 *   P{sid}:meta   hash: tok, att (attempt), own (owner), fen (fence),
 *                 seen (Date.now() ms), olast/oack/obytes (outbound lastSeq,
 *                 ack, unacknowledged payload bytes), iack (inbound cumulative
 *                 ack), dlv (inbound delivered)
 *   P{sid}:out    list: the unacknowledged outbound messages, oack+1..olast,
 *                 each `<payload bytes> <wire JSON>` (the JSON as it goes into
 *                 a batch's `m`, so a batch is built by joining them)
 *   P{sid}:in     list: inbound messages accepted and not yet delivered,
 *                 dlv+1..iack, each a tag byte then the payload: `t` UTF-8
 *                 text, `j` JSON text of a string with lone surrogates (not
 *                 UTF-8 encodable), `b` raw bytes
 *   P{sid}:grave  hash: tok, why (the close reason's JSON), after a delete
 * Keys in other slots, each used on its own:
 *   Pattempt:{attempt}  string: the sid an open attempt made (findByAttempt)
 *   Pnode:{node}        a node's heartbeat, with its TTL (PX)
 *   Psessions           sorted set of sids, for count()
 *   Pevents             the pub/sub channel of wake-ups (not a key)
 *
 * Where an operation needs keys of two slots (Cluster forbids a script
 * across slots), the second step is separate, and safe:
 * - create: the session first, then the attempt key. Until the second step
 *   a retried open does not find the session: the same as two nodes racing
 *   on one retried open, which the contract allows (each makes one).
 * - delete / forgetAttempt: the session first, then the attempt key is
 *   removed only if it still names this sid (a compare-and-delete: the other
 *   of two sessions made with one attempt never loses it). In between,
 *   findByAttempt checks the record's own attempt and finds nothing.
 * - claim: the owner's heartbeat key lives in its own slot. The script reads
 *   owner and fence; if another node owns it, its heartbeat key is read;
 *   if it has lapsed, a second script takes the session only if owner and
 *   fence are still what was read (compare-and-set). Two nodes racing: one
 *   CAS wins and its fence grows; the other finds a new owner and reads its
 *   heartbeat again.
 * - count: the `sessions` index is updated after create and delete.
 *
 * Expiry: every key of a session has a TTL (`ttlMs`, default 10 min),
 * refreshed by every operation that writes to it and by readOutbound (every
 * poll answered), so a session nobody serves any more (all its nodes died)
 * vanishes. `ttlMs` must be well above the server's sessionIdleTimeoutMs and
 * pollTimeoutMs: a session's owner answers polls from memory-held state but
 * reads the store for each answer, which refreshes the TTL. After delete
 * nothing of the session is left but its tombstone, which has its own TTL.
 *
 * count(): the `sessions` index holds each sid with the time its keys would
 * expire if never refreshed. A session that expired by TTL (never deleted)
 * stays in the index until count() (or a create, at most once per ttlMs per
 * handle) looks at the entries whose time has passed: gone ones are removed,
 * live ones are given their real expiry. So count() is exact for sessions
 * created and deleted through stores, and never counts an expired one; a
 * node that crashed between a create's two steps leaves its session
 * uncounted (it expires unused).
 *
 * Wake-ups: publish() is one PUBLISH of `[sid, event]` as JSON on one channel
 * per prefix; each RedisStore has at most one subscriber connection (made by
 * `duplicate()` on the first subscribe()), whatever the number of sessions,
 * listeners or held polls. So a node holds two connections: commands and
 * the subscriber. On Redis Cluster the channel is classic pub/sub (every
 * shard sees every event).
 *
 * Connections: with `url` the store makes its command connection and closes
 * it in close(). With `client` (an ioredis Redis or Cluster) the connection
 * is the caller's: close() leaves it open, and the caller's own ioredis
 * `keyPrefix`, if any, applies on top of ours. The subscriber is always the
 * store's own and close() quits it.
 */
import { createHash } from 'node:crypto';
import { Redis, type Cluster } from 'ioredis';
import { HoldlineError, isRpc, isRpcWire, wireError, type CloseReason, type OutboxEntry, type StreamItem } from '../shared/index.js';
import type {
  AcceptInboundResult,
  AckOutboundResult,
  ClaimResult,
  EnqueueResult,
  InboundBatch,
  ReadOutboundResult,
  SessionRecord,
  SessionStore,
  StoredSession,
  StoreEvent,
  StoreListener,
  Tombstone,
} from './store.js';

export interface RedisStoreOptions {
  /** `redis://` or `rediss://` URL of the Redis to connect to (the store makes and closes its connection). */
  url?: string;
  /** An ioredis client (Redis or Cluster) to use instead: the caller's, never closed by the store. */
  client?: Redis | Cluster;
  /** Prefix of every key and of the channel. Default `holdline:`. Stores with different prefixes share nothing. */
  keyPrefix?: string;
  /**
   * How long a session's keys live without any operation on them (ms). Default
   * 10 min. Keep it well above the server's sessionIdleTimeoutMs.
   */
  ttlMs?: number;
}

const DEFAULT_PREFIX = 'holdline:';
const DEFAULT_TTL_MS = 10 * 60_000;
const MIN_TTL_MS = 100;
/** Entries of the count() index looked at per round, and rounds per call. */
const PRUNE_BATCH = 200;
const PRUNE_ROUNDS = 50;
/** A claim re-reads after a lost compare-and-set at most this often (each loss means another node took it). */
const CLAIM_TRIES = 8;

// ---- Lua scripts ----
// Session scripts get KEYS meta, out, in (and grave where used). A session is
// there iff its meta hash is; a script returns nil (false) for a session the
// store does not hold, which becomes session_unknown.

/** Every session script refreshes the TTL of all three keys of the session (ARGV[1] is ttlMs). */
const REFRESH = `
local function refresh()
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
  redis.call('PEXPIRE', KEYS[3], ARGV[1])
end
local function rpushAll(key, from)
  for i = from, #ARGV, 1000 do
    redis.call('RPUSH', key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
end
`;

class Script {
  readonly sha: string;
  readonly source: string;
  constructor(body: string) {
    this.source = REFRESH + body;
    this.sha = createHash('sha1').update(this.source).digest('hex');
  }
}

const S = {
  /** ARGV ttl, token, attempt, owner, now, meta ('' for none) */
  create: new Script(`
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('HSET', KEYS[1], 'tok', ARGV[2], 'att', ARGV[3], 'own', ARGV[4], 'fen', 1, 'seen', ARGV[5],
  'olast', 0, 'oack', 0, 'obytes', 0, 'iack', 0, 'dlv', 0, 'meta', ARGV[6])
refresh()
return 1`),

  /** ARGV ttl, reason JSON ('' for no tombstone), tombstone ttl. Returns { attempt, out entries... } */
  delete: new Script(`
local v = redis.call('HMGET', KEYS[1], 'tok', 'att')
if not v[1] then return false end
local out = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
if ARGV[2] ~= '' then
  redis.call('DEL', KEYS[4])
  redis.call('HSET', KEYS[4], 'tok', v[1], 'why', ARGV[2])
  redis.call('PEXPIRE', KEYS[4], ARGV[3])
end
local r = { v[2] }
for i = 1, #out do r[i + 1] = out[i] end
return r`),

  /** ARGV ttl. Returns the attempt that was forgotten ('' if none). */
  forgetAttempt: new Script(`
local a = redis.call('HGET', KEYS[1], 'att')
if not a or a == '' then return '' end
redis.call('HSET', KEYS[1], 'att', '')
return a`),

  /** ARGV ttl, node. Returns { 1, fence } when node owns it, else { 0, owner, fence }. */
  claimOwn: new Script(`
local v = redis.call('HMGET', KEYS[1], 'own', 'fen')
if not v[1] then return false end
if v[1] == ARGV[2] then
  refresh()
  return { 1, tonumber(v[2]) }
end
return { 0, v[1], tonumber(v[2]) }`),

  /** ARGV ttl, node, owner seen, fence seen. Returns { 1, new fence } or { 0 } when owner or fence changed. */
  claimTake: new Script(`
local v = redis.call('HMGET', KEYS[1], 'own', 'fen')
if not v[1] then return false end
if v[1] ~= ARGV[3] or v[2] ~= ARGV[4] then return { 0 } end
redis.call('HSET', KEYS[1], 'own', ARGV[2])
local f = redis.call('HINCRBY', KEYS[1], 'fen', 1)
refresh()
return { 1, f }`),

  /** ARGV ttl, node, fence. */
  release: new Script(`
local v = redis.call('HMGET', KEYS[1], 'own', 'fen')
if v[1] and v[1] == ARGV[2] and v[2] == ARGV[3] then redis.call('HSET', KEYS[1], 'own', '') end
return 1`),

  /** ARGV ttl, until. */
  touch: new Script(`
local s = redis.call('HGET', KEYS[1], 'seen')
if not s then return false end
if tonumber(ARGV[2]) > tonumber(s) then redis.call('HSET', KEYS[1], 'seen', ARGV[2]) end
refresh()
return 1`),

  /** ARGV ttl, total payload bytes, entries... Returns { lastSeq, bufferedBytes }. */
  enqueue: new Script(`
local v = redis.call('HMGET', KEYS[1], 'olast', 'obytes')
if not v[1] then return false end
local n = #ARGV - 2
if n == 0 then return { tonumber(v[1]), tonumber(v[2]) } end
rpushAll(KEYS[2], 3)
local last = redis.call('HINCRBY', KEYS[1], 'olast', n)
local bytes = redis.call('HINCRBY', KEYS[1], 'obytes', ARGV[2])
refresh()
return { last, bytes }`),

  /** ARGV ttl, ack. Returns { result, bufferedBytes, lastSeq }. */
  ackOutbound: new Script(`
local v = redis.call('HMGET', KEYS[1], 'olast', 'oack', 'obytes')
if not v[1] then return false end
local last, acked, bytes = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])
local n = tonumber(ARGV[2])
local r
if n > last then r = 'future'
elseif n <= acked then r = 'stale'
else
  local gone = redis.call('LRANGE', KEYS[2], 0, n - acked - 1)
  for i = 1, #gone do
    local e = gone[i]
    bytes = bytes - tonumber(string.sub(e, 1, string.find(e, ' ', 1, true) - 1))
  end
  redis.call('LTRIM', KEYS[2], n - acked, -1)
  redis.call('HSET', KEYS[1], 'oack', ARGV[2], 'obytes', bytes)
  r = 'ok'
end
refresh()
return { r, bytes, last }`),

  /**
   * ARGV ttl, maxWireBytes, from, maxCount (-1: no limit). Returns { seq,
   * count, m, wireBytes, inboundAck }: shared/outbox.ts Outbox.batch(), step
   * for step. Messages are chosen by the least size each can take (text:
   * payload bytes + 2 quotes + separator; binary: its JSON + separator), then
   * the real JSON is measured; over the limit (escapes), proportionally
   * fewer, and never fewer than one.
   */
  readOutbound: new Script(`
local v = redis.call('HMGET', KEYS[1], 'olast', 'oack', 'iack')
if not v[1] then return false end
local last, acked, iack = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])
local maxW, from, maxC = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local pending = last - acked
local skip = math.min(math.max(0, from - acked - 1), pending)
local wires = {}
local k, least, idx = 0, 1, skip
local full = false
while not full and idx < pending and (maxC < 0 or k < maxC) do
  local chunk = redis.call('LRANGE', KEYS[2], idx, idx + 127)
  if #chunk == 0 then break end
  for i = 1, #chunk do
    if idx >= pending or (maxC >= 0 and k >= maxC) then full = true break end
    local e = chunk[i]
    local sp = string.find(e, ' ', 1, true)
    local w = string.sub(e, sp + 1)
    local size
    if string.byte(w, 1) == 123 then size = #w + 1 else size = tonumber(string.sub(e, 1, sp - 1)) + 3 end
    if k > 0 and least + size > maxW then full = true break end
    least = least + size
    k = k + 1
    wires[k] = w
    idx = idx + 1
  end
end
refresh()
while true do
  local wb = 2
  if k > 0 then
    wb = 1
    for i = 1, k do wb = wb + #wires[i] + 1 end
  end
  if wb <= maxW or k <= 1 then
    return { acked + 1 + skip, k, '[' .. table.concat(wires, ',', 1, k) .. ']', wb, iack }
  end
  k = math.max(1, math.min(k - 1, math.floor(k * maxW / wb)))
end`),

  /** ARGV ttl, seq, messages... Returns { 1, skip, ack } or { 0, expected, ack }. */
  acceptInbound: new Script(`
local a = redis.call('HGET', KEYS[1], 'iack')
if not a then return false end
local ack = tonumber(a)
local n = #ARGV - 2
if n == 0 then return { 1, 0, ack } end
local seq = tonumber(ARGV[2])
if seq > ack + 1 then return { 0, ack + 1, ack } end
local skip = math.min(ack + 1 - seq, n)
if skip < n then
  rpushAll(KEYS[3], 3 + skip)
  ack = seq + n - 1
  redis.call('HSET', KEYS[1], 'iack', ack)
end
refresh()
return { 1, skip, ack }`),

  /** ARGV ttl, from. Returns { seq, messages... }. */
  readInbound: new Script(`
local d = redis.call('HGET', KEYS[1], 'dlv')
if not d then return false end
local head = tonumber(d) + 1
local start = math.max(tonumber(ARGV[2]), head)
local items = redis.call('LRANGE', KEYS[3], start - head, -1)
local r = { start }
for i = 1, #items do r[i + 1] = items[i] end
return r`),

  /** ARGV ttl, seq, fence. Returns 1 (done) or 0 (refused: not the current fence). */
  markDelivered: new Script(`
local v = redis.call('HMGET', KEYS[1], 'fen', 'dlv', 'iack')
if not v[1] then return false end
if v[1] ~= ARGV[3] then return 0 end
local seq, dlv, iack = tonumber(ARGV[2]), tonumber(v[2]), tonumber(v[3])
if seq <= dlv then return 1 end
local upTo = math.min(seq, iack)
if upTo > dlv then
  redis.call('LTRIM', KEYS[3], upTo - dlv, -1)
  redis.call('HSET', KEYS[1], 'dlv', upTo)
end
refresh()
return 1`),

  /** KEYS the attempt key; ARGV ttl (unused), sid: delete the key only if it names this sid. */
  dropAttempt: new Script(`
if redis.call('GET', KEYS[1]) == ARGV[2] then redis.call('DEL', KEYS[1]) end
return 1`),
} as const;

type Arg = string | Buffer | number;

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null) return 'null';
  if (typeof v === 'object') return `an object (${v.constructor.name})`;
  return `${typeof v} ${String(v)}`;
}

function bad(option: string, want: string, got: unknown): HoldlineError {
  return new HoldlineError('invalid_argument', `RedisStore option "${option}" must be ${want}, got ${describe(got)}`);
}

const KNOWN = new Set(['url', 'client', 'keyPrefix', 'ttlMs']);

function isClient(v: unknown): v is Redis | Cluster {
  if (typeof v !== 'object' || v === null) return false;
  const c = v as { call?: unknown; callBuffer?: unknown; duplicate?: unknown; publish?: unknown };
  return typeof c.call === 'function' && typeof c.callBuffer === 'function' && typeof c.duplicate === 'function' && typeof c.publish === 'function';
}

// ---- replies ----

function unknownSession(): HoldlineError {
  return wireError('session_unknown');
}

function badReply(what: string, reply: unknown): HoldlineError {
  return new HoldlineError('internal_error', `RedisStore: unexpected reply to ${what}: ${describe(reply)}`);
}

/** A script's array reply; nil (the session is not held) becomes session_unknown. */
function arrayReply(what: string, reply: unknown): unknown[] {
  if (reply === null) throw unknownSession();
  if (!Array.isArray(reply)) throw badReply(what, reply);
  return reply;
}

function int(what: string, v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  throw badReply(what, v);
}

function str(what: string, v: unknown): string {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  throw badReply(what, v);
}

function isCloseReason(v: unknown): v is CloseReason {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as { code?: unknown; message?: unknown };
  return typeof r.code === 'string' && typeof r.message === 'string';
}

/** The event types a StoreEvent may have, and the fields each carries besides `node`. */
function isStoreEvent(v: unknown): v is StoreEvent {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as { type?: unknown; node?: unknown; ack?: unknown; bufferedBytes?: unknown; at?: unknown; ws?: unknown; reason?: unknown; data?: unknown };
  if (typeof e.node !== 'string') return false;
  switch (e.type) {
    case 'out':
    case 'in':
      return true;
    case 'ack':
      return typeof e.ack === 'number' && typeof e.bufferedBytes === 'number';
    case 'poll':
      return typeof e.at === 'number' && (e.ws === undefined || typeof e.ws === 'number');
    case 'close':
      return isCloseReason(e.reason);
    case 'broadcast':
      return typeof e.data === 'string' || (typeof e.data === 'object' && e.data !== null && typeof (e.data as { b?: unknown }).b === 'string');
    default:
      return false;
  }
}

// ---- payloads ----

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const TAG_TEXT = 0x74; // t
const TAG_JSON = 0x6a; // j
const TAG_BINARY = 0x62; // b
const TAG_RPC = 0x72; // r
const BINARY_TAG = Buffer.from('b');

/** An inbound payload as kept in the `in` list: a tag byte, then the payload (a request/reply frame: `r`, then its text). */
function encodeInbound(p: StreamItem): Arg {
  if (typeof p === 'string') return LONE_SURROGATE.test(p) ? `j${JSON.stringify(p)}` : `t${p}`;
  if (isRpc(p)) return `r${p.r}`;
  return Buffer.concat([BINARY_TAG, p]);
}

function decodeInbound(v: unknown): StreamItem {
  if (!Buffer.isBuffer(v) || v.length === 0) throw badReply('readInbound', v);
  switch (v[0]) {
    case TAG_TEXT:
      return v.toString('utf8', 1);
    case TAG_RPC:
      return { r: v.toString('utf8', 1) };
    case TAG_BINARY:
      return new Uint8Array(v.subarray(1));
    case TAG_JSON: {
      const s: unknown = JSON.parse(v.toString('utf8', 1));
      if (typeof s !== 'string') throw badReply('readInbound', v);
      return s;
    }
    default:
      throw badReply('readInbound', v);
  }
}

/** An outbound entry back from its stored form `<bytes> <wire JSON>`. */
function decodeEntry(v: unknown): OutboxEntry {
  const s = str('delete', v);
  const sp = s.indexOf(' ');
  const wire: unknown = JSON.parse(s.slice(sp + 1));
  const bytes = Number(s.slice(0, sp));
  if (typeof wire === 'string') return { wire, bytes };
  if (typeof wire === 'object' && wire !== null && typeof (wire as { b?: unknown }).b === 'string') {
    return { wire: { b: (wire as { b: string }).b }, bytes };
  }
  if (isRpcWire(wire)) return { wire: { r: wire.r }, bytes };
  throw badReply('delete', v);
}

/** A TTL Redis takes: a positive whole number of ms. */
function pxOf(ms: number): number {
  return Number.isFinite(ms) ? Math.max(1, Math.ceil(ms)) : 2 ** 31;
}

export class RedisStore implements SessionStore {
  readonly #client: Redis | Cluster;
  /** True when the store made its command connection (url) and so closes it. */
  readonly #ownsClient: boolean;
  readonly #prefix: string;
  readonly #ttl: string;
  readonly #ttlMs: number;
  readonly #channel: string;
  readonly #sessionsKey: string;
  #subscriber: Redis | Cluster | undefined;
  #listeners: StoreListener[] = [];
  #lastPrune = 0;
  #closed = false;

  constructor(options: RedisStoreOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new HoldlineError('invalid_argument', `RedisStore options must be an object, got ${describe(options)}`);
    }
    for (const k of Object.keys(options)) {
      if (!KNOWN.has(k)) throw new HoldlineError('invalid_argument', `unknown RedisStore option "${k}"`);
    }
    const { url, client, keyPrefix = DEFAULT_PREFIX, ttlMs = DEFAULT_TTL_MS } = options;
    if (url !== undefined && client !== undefined) {
      throw new HoldlineError('invalid_argument', 'RedisStore options "url" and "client" exclude each other: give one');
    }
    if (url === undefined && client === undefined) {
      throw new HoldlineError('invalid_argument', 'RedisStore needs option "url" (a redis:// URL) or option "client" (an ioredis client)');
    }
    if (url !== undefined && (typeof url !== 'string' || !/^rediss?:\/\//.test(url))) {
      throw bad('url', 'a redis:// or rediss:// URL', url);
    }
    if (client !== undefined && !isClient(client)) throw bad('client', 'an ioredis Redis or Cluster client', client);
    if (typeof keyPrefix !== 'string') throw bad('keyPrefix', 'a string', keyPrefix);
    if (typeof ttlMs !== 'number' || !Number.isInteger(ttlMs) || ttlMs < MIN_TTL_MS) {
      throw bad('ttlMs', `an integer >= ${MIN_TTL_MS} (ms)`, ttlMs);
    }
    this.#prefix = keyPrefix;
    this.#ttlMs = ttlMs;
    this.#ttl = String(ttlMs);
    this.#channel = `${keyPrefix}events`;
    this.#sessionsKey = `${keyPrefix}sessions`;
    if (client !== undefined) {
      this.#client = client;
      this.#ownsClient = false;
    } else {
      // Checked above: url is a string here.
      const own = new Redis(String(url), { lazyConnect: false });
      // Failures reach the commands that wait on the connection; the event itself needs a listener.
      own.on('error', () => undefined);
      this.#client = own;
      this.#ownsClient = true;
    }
  }

  /** The prefix this store's keys begin with. */
  get keyPrefix(): string {
    return this.#prefix;
  }

  // ---- keys ----

  #keys(sid: string): [string, string, string, string] {
    const base = `${this.#prefix}{${sid}}:`;
    return [`${base}meta`, `${base}out`, `${base}in`, `${base}grave`];
  }

  #attemptKey(attempt: string): string {
    return `${this.#prefix}attempt:{${attempt}}`;
  }

  #nodeKey(node: string): string {
    return `${this.#prefix}node:{${node}}`;
  }

  // ---- scripts ----

  /** EVALSHA, and EVAL once when Redis does not have the script yet (a restart, a new replica). */
  async #run(script: Script, keys: readonly string[], args: readonly Arg[], buffers = false): Promise<unknown> {
    const tail: Arg[] = [keys.length, ...keys, this.#ttl, ...args];
    const c = this.#client;
    try {
      return await (buffers ? c.callBuffer('EVALSHA', [script.sha, ...tail]) : c.call('EVALSHA', [script.sha, ...tail]));
    } catch (e) {
      if (!(e instanceof Error) || !e.message.startsWith('NOSCRIPT')) throw e;
      return buffers ? c.callBuffer('EVAL', [script.source, ...tail]) : c.call('EVAL', [script.source, ...tail]);
    }
  }

  #session(script: Script, sid: string, args: readonly Arg[], buffers = false): Promise<unknown> {
    return this.#run(script, this.#keys(sid), args, buffers);
  }

  // ---- sessions ----

  async create(session: StoredSession, owner: string): Promise<void> {
    const { sid, token, attempt } = session;
    await this.#session(S.create, sid, [token, attempt, owner, Date.now(), session.meta ?? '']);
    const steps: Promise<unknown>[] = [this.#client.zadd(this.#sessionsKey, Date.now() + this.#ttlMs, sid)];
    if (attempt !== '') steps.push(this.#client.set(this.#attemptKey(attempt), sid, 'PX', this.#ttlMs));
    await Promise.all(steps);
    if (Date.now() - this.#lastPrune > this.#ttlMs) await this.#prune();
  }

  async get(sid: string): Promise<SessionRecord | undefined> {
    const [meta] = this.#keys(sid);
    const [tok, att, own, fen, met] = await this.#client.hmget(meta, 'tok', 'att', 'own', 'fen', 'meta');
    if (tok === null || tok === undefined) return undefined;
    const rec = { sid, token: tok, attempt: att ?? '', owner: own ?? '', fence: int('get', fen) };
    return met ? { ...rec, meta: met } : rec;
  }

  async findByAttempt(attempt: string): Promise<SessionRecord | undefined> {
    if (attempt === '') return undefined;
    const sid = await this.#client.get(this.#attemptKey(attempt));
    if (sid === null) return undefined;
    const rec = await this.get(sid);
    // Between a forgetAttempt's or a delete's two steps the key may still name a session that no longer has it.
    return rec !== undefined && rec.attempt === attempt ? rec : undefined;
  }

  async forgetAttempt(sid: string): Promise<void> {
    const attempt = str('forgetAttempt', await this.#session(S.forgetAttempt, sid, []));
    if (attempt !== '') await this.#dropAttempt(attempt, sid);
  }

  #dropAttempt(attempt: string, sid: string): Promise<unknown> {
    return this.#run(S.dropAttempt, [this.#attemptKey(attempt)], [sid]);
  }

  async count(): Promise<number> {
    await this.#prune();
    return this.#client.zcard(this.#sessionsKey);
  }

  /** Look at the count() index entries whose expiry time has passed: drop the gone, re-time the live. */
  async #prune(): Promise<void> {
    this.#lastPrune = Date.now();
    for (let round = 0; round < PRUNE_ROUNDS; round++) {
      const now = Date.now();
      const due = await this.#client.zrangebyscore(this.#sessionsKey, '-inf', now, 'LIMIT', 0, PRUNE_BATCH);
      if (due.length === 0) return;
      await Promise.all(
        due.map(async (sid) => {
          const pttl = await this.#client.pttl(this.#keys(sid)[0]);
          if (pttl < 0) await this.#client.zrem(this.#sessionsKey, sid);
          else await this.#client.zadd(this.#sessionsKey, 'XX', now + pttl + 1, sid);
        }),
      );
      if (due.length < PRUNE_BATCH) return;
    }
  }

  async delete(sid: string, tombstone?: { reason: CloseReason; ttlMs: number }): Promise<OutboxEntry[]> {
    const why = tombstone === undefined ? '' : JSON.stringify(tombstone.reason);
    const reply = await this.#session(S.delete, sid, [why, pxOf(tombstone?.ttlMs ?? 1)]);
    if (reply === null) return [];
    if (!Array.isArray(reply) || reply.length === 0) throw badReply('delete', reply);
    const [attempt, ...out] = reply;
    const att = str('delete', attempt);
    const steps: Promise<unknown>[] = [this.#client.zrem(this.#sessionsKey, sid)];
    if (att !== '') steps.push(this.#dropAttempt(att, sid));
    await Promise.all(steps);
    return out.map(decodeEntry);
  }

  async tombstone(sid: string): Promise<Tombstone | undefined> {
    const [tok, why] = await this.#client.hmget(this.#keys(sid)[3], 'tok', 'why');
    if (tok === null || tok === undefined || why === null || why === undefined) return undefined;
    const reason: unknown = JSON.parse(why);
    if (!isCloseReason(reason)) throw badReply('tombstone', why);
    return { reason, token: tok };
  }

  // ---- owner and liveness ----

  async claim(sid: string, node: string): Promise<ClaimResult> {
    let owner = '';
    for (let i = 0; i < CLAIM_TRIES; i++) {
      const own = arrayReply('claim', await this.#session(S.claimOwn, sid, [node]));
      if (int('claim', own[0]) === 1) return { owned: true, fence: int('claim', own[1]), took: false };
      owner = str('claim', own[1]);
      const fence = int('claim', own[2]);
      // A released session (owner '') is free; otherwise its owner's heartbeat decides.
      if (owner !== '' && (await this.#client.exists(this.#nodeKey(owner))) === 1) return { owned: false, owner };
      const took = arrayReply('claim', await this.#session(S.claimTake, sid, [node, owner, String(fence)]));
      if (int('claim', took[0]) === 1) return { owned: true, fence: int('claim', took[1]), took: true };
      // Owner or fence changed since read: another node took it; look again.
    }
    return { owned: false, owner };
  }

  async release(sid: string, node: string, fence: number): Promise<void> {
    await this.#session(S.release, sid, [node, String(fence)]);
  }

  async heartbeat(node: string, ttlMs: number): Promise<void> {
    await this.#client.set(this.#nodeKey(node), '1', 'PX', pxOf(ttlMs));
  }

  async forgetNode(node: string): Promise<void> {
    await this.#client.del(this.#nodeKey(node));
  }

  async touch(sid: string, until: number): Promise<void> {
    if ((await this.#session(S.touch, sid, [String(until)])) === null) throw unknownSession();
  }

  async seenUntil(sid: string): Promise<number | undefined> {
    const seen = await this.#client.hget(this.#keys(sid)[0], 'seen');
    return seen === null ? undefined : Number(seen);
  }

  // ---- outbound ----

  async enqueue(sid: string, entries: readonly OutboxEntry[]): Promise<EnqueueResult> {
    const args: Arg[] = [0];
    let bytes = 0;
    for (const e of entries) {
      bytes += e.bytes;
      args.push(`${e.bytes} ${JSON.stringify(e.wire)}`);
    }
    args[0] = bytes;
    const r = arrayReply('enqueue', await this.#session(S.enqueue, sid, args));
    return { lastSeq: int('enqueue', r[0]), bufferedBytes: int('enqueue', r[1]) };
  }

  async ackOutbound(sid: string, ack: number): Promise<AckOutboundResult> {
    const r = arrayReply('ackOutbound', await this.#session(S.ackOutbound, sid, [String(ack)]));
    const result = r[0];
    if (result !== 'ok' && result !== 'stale' && result !== 'future') throw badReply('ackOutbound', result);
    return { result, bufferedBytes: int('ackOutbound', r[1]), lastSeq: int('ackOutbound', r[2]) };
  }

  async readOutbound(sid: string, maxWireBytes: number, from?: number, maxCount = Infinity): Promise<ReadOutboundResult> {
    const maxW = Number.isFinite(maxWireBytes) ? maxWireBytes : Number.MAX_SAFE_INTEGER;
    const maxC = Number.isFinite(maxCount) ? Math.max(0, Math.floor(maxCount)) : -1;
    const r = arrayReply('readOutbound', await this.#session(S.readOutbound, sid, [maxW, from ?? 0, maxC]));
    return {
      seq: int('readOutbound', r[0]),
      count: int('readOutbound', r[1]),
      m: str('readOutbound', r[2]),
      wireBytes: int('readOutbound', r[3]),
      inboundAck: int('readOutbound', r[4]),
    };
  }

  async pendingOutbound(sid: string, from?: number): Promise<number> {
    const [last, acked] = await this.#client.hmget(this.#keys(sid)[0], 'olast', 'oack');
    if (last === null || last === undefined) throw unknownSession();
    const l = int('pendingOutbound', last);
    const a = int('pendingOutbound', acked);
    return from === undefined ? l - a : Math.max(0, l - Math.max(from, a + 1) + 1);
  }

  // ---- inbound ----

  async acceptInbound(sid: string, seq: number, messages: readonly StreamItem[]): Promise<AcceptInboundResult> {
    const args: Arg[] = [String(seq)];
    for (const m of messages) args.push(encodeInbound(m));
    const r = arrayReply('acceptInbound', await this.#session(S.acceptInbound, sid, args));
    const ack = int('acceptInbound', r[2]);
    return int('acceptInbound', r[0]) === 1
      ? { ok: true, skip: int('acceptInbound', r[1]), ack }
      : { ok: false, expected: int('acceptInbound', r[1]), ack };
  }

  async readInbound(sid: string, from: number): Promise<InboundBatch> {
    const r = arrayReply('readInbound', await this.#session(S.readInbound, sid, [String(from)], true));
    const [seq, ...items] = r;
    return { seq: int('readInbound', seq), messages: items.map(decodeInbound) };
  }

  async markDelivered(sid: string, seq: number, fence: number): Promise<boolean> {
    const r = await this.#session(S.markDelivered, sid, [String(seq), String(fence)]);
    if (r === null) throw unknownSession();
    return int('markDelivered', r) === 1;
  }

  async delivered(sid: string): Promise<number> {
    const d = await this.#client.hget(this.#keys(sid)[0], 'dlv');
    if (d === null) throw unknownSession();
    return int('delivered', d);
  }

  // ---- wake-ups ----

  async publish(sid: string, event: StoreEvent): Promise<void> {
    await this.#client.publish(this.#channel, JSON.stringify([sid, event]));
  }

  subscribe(listener: StoreListener): () => void {
    this.#listeners = [...this.#listeners, listener];
    this.#listen();
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  /** The one subscriber connection, made on the first subscribe(). */
  #listen(): void {
    if (this.#subscriber !== undefined || this.#closed) return;
    const c = this.#client;
    const sub: Redis | Cluster = c instanceof Redis ? c.duplicate() : c.duplicate();
    this.#subscriber = sub;
    // ioredis reconnects and subscribes again on its own; the event needs a listener.
    sub.on('error', () => undefined);
    sub.on('message', (channel: string, text: string) => {
      if (channel === this.#channel) this.#dispatch(text);
    });
    sub.subscribe(this.#channel).catch(() => {
      // Closed before the subscription was made, or Redis is away: ioredis subscribes again when it reconnects.
    });
  }

  #dispatch(text: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return; // not one of ours
    }
    if (!Array.isArray(parsed) || parsed.length !== 2) return;
    const [sid, event]: unknown[] = parsed;
    if (typeof sid !== 'string' || !isStoreEvent(event)) return;
    for (const l of this.#listeners) {
      try {
        l(sid, event);
      } catch {
        // A listener's own failure must not keep the event from the others (the server's reports its own).
      }
    }
  }

  /** Quits the subscriber, and the command connection if the store made it (a `client` passed in stays open). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners = [];
    const quits: Promise<unknown>[] = [];
    if (this.#subscriber !== undefined) quits.push(quit(this.#subscriber));
    if (this.#ownsClient) quits.push(quit(this.#client));
    await Promise.all(quits);
  }
}

/** QUIT, or a disconnect when the connection is not up (QUIT would wait for a reconnect). */
async function quit(c: Redis | Cluster): Promise<void> {
  if (c.status === 'ready') {
    try {
      await c.quit();
      return;
    } catch {
      // fall through
    }
  }
  c.disconnect();
}
