// The Lua scripts of the shared budget book (budgets/redis-budget-book.ts). Each runs atomically in
// Redis (or Valkey: plain commands only, no functions, no shebang flags), so a reservation over every
// scope × period, a settlement and a release are one step across all instances. Time is Redis's own
// (TIME), so instances whose clocks disagree still agree on when a reservation expires.
//
// Keys (P = the prefix):
//   P epoch              "ID:ADMIT_AFTER_MS" — written when the counters start from the ledger; missing
//                        means Redis lost its data (restarted empty): nothing is admitted until rebuilt.
//   P deadlines          sorted set: reservation id → the Redis time (ms) it expires at.
//   P c:SCOPE:ID:PERIOD:START   hash {s: settled micro-USD, r: reserved micro-USD} of one counter.
//   P r:RID              hash {a: amount, st: o (open) | x (expired), k: its counter keys, one a line}.

/** Shared prelude: Redis time in ms, and the release of expired reservations (bounded per call). */
const PRELUDE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function sweep(prefix, deadlines, max, grace)
  local due = redis.call('ZRANGEBYSCORE', deadlines, '-inf', now, 'LIMIT', 0, max)
  for _, id in ipairs(due) do
    local rk = prefix .. 'r:' .. id
    local h = redis.call('HMGET', rk, 'a', 'st', 'k')
    if h[2] == 'o' then
      local a = tonumber(h[1])
      for key in string.gmatch(h[3], '[^\\n]+') do
        if redis.call('EXISTS', key) == 1 then redis.call('HINCRBY', key, 'r', -a) end
      end
      -- Kept a while as expired: a late settlement still counts its spend, once.
      redis.call('HSET', rk, 'st', 'x')
      redis.call('PEXPIRE', rk, grace)
    end
    redis.call('ZREM', deadlines, id)
  end
  return #due
end
`;

/**
 * KEYS: epoch, deadlines, reservation, counter 1..n.
 * ARGV: prefix, reservation id, amount, ttl ms, grace ms, n, then per counter: limit ('' = none),
 * loaded spend ('' = not loaded), ms to keep it (0 = for ever).
 * Returns {'E'} no epoch; {'Q', ms} rebuilding; {'L', i...} counters to load; {'R', i, used} refused at
 * counter i; {'OK', remaining (-1 = unlimited)}.
 */
export const RESERVE_SCRIPT = `${PRELUDE}
local ep = redis.call('GET', KEYS[1])
if not ep then return {'E'} end
local after = tonumber(string.match(ep, ':(%d+)$')) or 0
if after > now then return {'Q', after - now} end
sweep(ARGV[1], KEYS[2], 16, tonumber(ARGV[5]))
local n = tonumber(ARGV[6])
local amount = tonumber(ARGV[3])
local missing = {'L'}
for i = 1, n do
  local key = KEYS[3 + i]
  if redis.call('EXISTS', key) == 0 then
    local loaded = ARGV[6 + n + i]
    if loaded == '' then
      missing[#missing + 1] = i
    else
      redis.call('HSET', key, 's', loaded, 'r', 0)
      local keep = tonumber(ARGV[6 + 2 * n + i])
      if keep > 0 then redis.call('PEXPIRE', key, keep) end
    end
  end
end
if #missing > 1 then return missing end
local remaining = -1
for i = 1, n do
  local limit = ARGV[6 + i]
  if limit ~= '' then
    local v = redis.call('HMGET', KEYS[3 + i], 's', 'r')
    local used = tonumber(v[1]) + tonumber(v[2])
    local left = tonumber(limit) - used - amount
    if left < 0 then return {'R', i, used} end
    if remaining < 0 or left < remaining then remaining = left end
  end
end
local keys = {}
for i = 1, n do
  redis.call('HINCRBY', KEYS[3 + i], 'r', amount)
  keys[i] = KEYS[3 + i]
end
redis.call('HSET', KEYS[3], 'a', amount, 'st', 'o', 'k', table.concat(keys, '\\n'))
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[2])
return {'OK', remaining}
`;

/**
 * Settles (or, with 0, releases) one reservation: KEYS deadlines, reservation, its counters; ARGV id,
 * actual. An open reservation gives back its amount and adds `actual`; an expired one (already given
 * back) adds `actual` only; an unknown one (settled already, or lost with Redis's data — the ledger
 * has it) changes nothing. Returns 1 open, 2 expired, 0 unknown.
 */
export const SETTLE_SCRIPT = `
local h = redis.call('HMGET', KEYS[2], 'a', 'st')
if not h[1] then return 0 end
local a = tonumber(h[1])
local actual = tonumber(ARGV[2])
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    if h[2] == 'o' then redis.call('HINCRBY', KEYS[i], 'r', -a) end
    if actual > 0 then redis.call('HINCRBY', KEYS[i], 's', actual) end
  end
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
if h[2] == 'o' then return 1 end
return 2
`;

/**
 * A live instance's heartbeat for its open reservations: KEYS epoch, deadlines; ARGV prefix, ttl ms,
 * grace ms, quarantine ms, a new epoch id, then reservation ids. Pushes each one's deadline to now + ttl
 * (so a long answer is never released early) and sweeps expired ones. A reservation that vanished with
 * Redis's data means requests admitted before Redis lost it are still running, their spend not yet in
 * the ledger: the epoch (created if missing) admits nothing before now + quarantine. Returns
 * {vanished, swept}.
 */
export const RENEW_SCRIPT = `${PRELUDE}
local ttl = tonumber(ARGV[2])
local vanished = 0
for i = 6, #ARGV do
  local id = ARGV[i]
  if redis.call('ZSCORE', KEYS[2], id) then
    redis.call('ZADD', KEYS[2], 'XX', now + ttl, id)
  elseif redis.call('EXISTS', ARGV[1] .. 'r:' .. id) == 0 then
    vanished = vanished + 1
  end
end
if vanished > 0 then
  local until_ms = now + tonumber(ARGV[4])
  local ep = redis.call('GET', KEYS[1])
  if not ep then
    redis.call('SET', KEYS[1], ARGV[5] .. ':' .. until_ms)
  else
    local after = tonumber(string.match(ep, ':(%d+)$')) or 0
    if after < until_ms then
      redis.call('SET', KEYS[1], string.match(ep, '^([^:]*)') .. ':' .. until_ms)
    end
  end
end
local swept = sweep(ARGV[1], KEYS[2], 64, tonumber(ARGV[3]))
return {vanished, swept}
`;

/**
 * Starts an epoch when none exists (Redis new or restarted empty): KEYS epoch; ARGV id, quarantine ms.
 * Counters are then loaded from the ledger on first use, after the quarantine. Returns the epoch.
 */
export const EPOCH_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ep = redis.call('GET', KEYS[1])
if ep then return ep end
ep = ARGV[1] .. ':' .. (now + tonumber(ARGV[2]))
redis.call('SET', KEYS[1], ep)
return ep
`;
