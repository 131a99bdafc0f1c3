/**
 * The Lua scripts of the Redis store (server/redis-store.ts), one per
 * per-session operation: each runs atomically on the keys of one session,
 * which share a `{sid}` hash tag and so one slot (allowed on Redis Cluster).
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
 */
import { createHash } from 'node:crypto';

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

/**
 * The many-session form of a script: KEYS are the keys of each call in
 * turn (`ARGV[1]` of each); ARGV[1] is the number of keys per call, then
 * each call's ARGV count and ARGV. Returns each call's reply in turn (nil,
 * from false, where the session is not held). On plain Redis only: the
 * sessions' keys are in different slots.
 */
const MANY = `
local per = tonumber(ARGV[1])
local all = ARGV
local r = {}
local k, a = 0, 2
while a <= #all do
  local n = tonumber(all[a])
  local keys, args = {}, {}
  for i = 1, per do keys[i] = KEYS[k + i] end
  for i = 1, n do args[i] = all[a + i] end
  r[#r + 1] = one(keys, args)
  k = k + per
  a = a + n + 1
end
return r`;

export class Script {
  readonly sha: string;
  readonly source: string;
  /** The many-session form, for scripts that take one session's three keys. */
  readonly many: { readonly sha: string; readonly source: string } | undefined;
  constructor(body: string, many = false) {
    this.source = REFRESH + body;
    this.sha = sha1(this.source);
    if (many) {
      // The script as a function of its own KEYS and ARGV (its helpers close over them).
      const source = `local function one(KEYS, ARGV)\n${REFRESH}${body}\nend\n${MANY}`;
      this.many = { source, sha: sha1(source) };
    }
  }
}

function sha1(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}

/**
 * The read of readOutbound (ARGV ttl, maxWireBytes, from, maxCount):
 * shared/outbox.ts Outbox.batch(), step for step. Messages are chosen by the
 * least size each can take (text: payload bytes + 2 quotes + separator;
 * binary: its JSON + separator), then the real JSON is measured; over the
 * limit (escapes), proportionally fewer, and never fewer than one. Returns
 * { <first>, count, m, wireBytes, inboundAck, lastSeq }, `first` as given (a script
 * that runs it after its own work puts its results before it).
 */
const READ = (first: string): string => `
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
    return { ${first}, k, '[' .. table.concat(wires, ',', 1, k) .. ']', wb, iack, last }
  end
  k = math.max(1, math.min(k - 1, math.floor(k * maxW / wb)))
end`;

/**
 * The ack of ackOutbound (the ack is ARGV[at]): sets r ('ok', 'stale' or
 * 'future'), bytes (payload bytes left unacknowledged) and last (the last
 * message's number); drops the acknowledged messages.
 */
const ACK = (at: number): string => `
local v = redis.call('HMGET', KEYS[1], 'olast', 'oack', 'obytes')
if not v[1] then return false end
local last, acked, bytes = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])
local n = tonumber(ARGV[${at}])
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
  redis.call('HSET', KEYS[1], 'oack', ARGV[${at}], 'obytes', bytes)
  r = 'ok'
end`;

export const S = {
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
return 1`, true),

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
return { last, bytes }`, true),

  /**
   * enqueue, then readOutbound: ARGV ttl, maxWireBytes, from, maxCount, total
   * payload bytes, entries... Returns { lastSeq, bufferedBytes, seq, count,
   * m, wireBytes, inboundAck, lastSeq }; or, when the read would give exactly the one
   * message appended (nothing pending before it from the read's start),
   * { lastSeq, bufferedBytes, inboundAck }: the caller has the message.
   */
  enqueueRead: new Script(`
local e = redis.call('HMGET', KEYS[1], 'olast', 'obytes', 'oack', 'iack')
if not e[1] then return false end
local n = #ARGV - 5
if n > 0 then
  local before = tonumber(e[1])
  rpushAll(KEYS[2], 6)
  e[1] = redis.call('HINCRBY', KEYS[1], 'olast', n)
  e[2] = redis.call('HINCRBY', KEYS[1], 'obytes', ARGV[5])
  if n == 1 and tonumber(ARGV[4]) ~= 0 and math.max(tonumber(e[3]) + 1, tonumber(ARGV[3])) == before + 1 then
    refresh()
    return { e[1], e[2], tonumber(e[4]) }
  end
end
${READ('e[1], e[2], acked + 1 + skip')}`, true),

  /** ARGV ttl, ack. Returns { result, bufferedBytes, lastSeq }. */
  ackOutbound: new Script(`${ACK(2)}
refresh()
return { r, bytes, last }`, true),

  /**
   * ackOutbound, then readOutbound when the ack is not refused and messages
   * are pending from the read's start: ARGV ttl, maxWireBytes, from,
   * maxCount, ack. Returns { result, bufferedBytes, lastSeq }, then the
   * read's { seq, count, m, wireBytes, inboundAck, lastSeq } if it was made.
   */
  ackRead: new Script(`${ACK(5)}
local nowAcked = acked
if r == 'ok' then nowAcked = n end
if r == 'future' or math.max(nowAcked + 1, tonumber(ARGV[3])) > last then
  refresh()
  return { r, bytes, last }
end
local ackR, ackBytes, ackLast = r, bytes, last
${READ('ackR, ackBytes, ackLast, acked + 1 + skip')}`, true),

  /**
   * ARGV ttl, maxWireBytes, from, maxCount (-1: no limit). Returns { seq,
   * count, m, wireBytes, inboundAck, lastSeq }: shared/outbox.ts Outbox.batch(), step
   * for step. Messages are chosen by the least size each can take (text:
   * payload bytes + 2 quotes + separator; binary: its JSON + separator), then
   * the real JSON is measured; over the limit (escapes), proportionally
   * fewer, and never fewer than one.
   */
  readOutbound: new Script(READ('acked + 1 + skip'), true),

  /** ARGV ttl, seq, messages... Returns { 1, skip, ack, fence } or { 0, expected, ack, fence }. */
  acceptInbound: new Script(`
local v = redis.call('HMGET', KEYS[1], 'iack', 'fen')
if not v[1] then return false end
local ack, fence = tonumber(v[1]), tonumber(v[2])
local n = #ARGV - 2
if n == 0 then return { 1, 0, ack, fence } end
local seq = tonumber(ARGV[2])
if seq > ack + 1 then return { 0, ack + 1, ack, fence } end
local skip = math.min(ack + 1 - seq, n)
if skip < n then
  rpushAll(KEYS[3], 3 + skip)
  ack = seq + n - 1
  redis.call('HSET', KEYS[1], 'iack', ack)
end
refresh()
return { 1, skip, ack, fence }`),

  /** ARGV ttl, from. Returns { seq, fence, messages... }. */
  readInbound: new Script(`
local v = redis.call('HMGET', KEYS[1], 'dlv', 'fen')
if not v[1] then return false end
local head = tonumber(v[1]) + 1
local start = math.max(tonumber(ARGV[2]), head)
local items = redis.call('LRANGE', KEYS[3], start - head, -1)
local r = { start, tonumber(v[2]) }
for i = 1, #items do r[i + 2] = items[i] end
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
