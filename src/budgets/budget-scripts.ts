// The Lua of the shared budget book (budgets/redis-budget-book.ts). Each script runs atomically in
// Redis (or Valkey: plain commands only, no functions, no shebang flags), so a reservation over every
// scope × period, a settlement and a release are one step across all instances. Time is Redis's own
// (TIME), so instances whose clocks disagree still agree on when a reservation expires.
//
// The steps are Lua functions over their own KEYS and ARGV tables (BUDGET_LUA), so that a script can
// run a budget step together with another store's step in one round trip (gateway/shared-steps.ts);
// the scripts below are each one step alone.
//
// Keys (P = the prefix):
//   P epoch        "ID:ADMIT_AFTER_MS" — written when the counters start from the ledger; missing means
//                  Redis lost its data (restarted empty): nothing is admitted until rebuilt.
//   P deadlines    sorted set: reservation id → the Redis time (ms) it expires at.
//   P c:SCOPE:ID   hash of one scope's counters, used micro-USD (settled + reserved) per period:
//                  field `d<start ms>` the day, `m<start ms>` the month, `t` all time. A period's first
//                  use loads its field from the ledger and drops the scope's earlier fields of that kind.
//   P r:RID        hash {a: amount, st: o (open) | x (expired), k: "key\tfield" lines it reserved on}; a
//                  group's (several requests admitted in one script) also n: its requests not settled.

/** Redis's clock in ms, and the release of expired reservations (bounded per call). */
export const BUDGET_LUA = `
local function redis_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Gives back what a reservation still holds on each of its counters (a counter gone with Redis's data
-- is not recreated).
local function give_back(lines, amount)
  local last, held = nil, false
  for key, field in string.gmatch(lines, '([^\\t\\n]+)\\t([^\\n]+)') do
    -- A scope's fields are consecutive: one EXISTS per scope.
    if key ~= last then
      last = key
      held = redis.call('EXISTS', key) == 1
    end
    if held then redis.call('HINCRBY', key, field, amount) end
  end
end
-- Adds \`amount\` to every period field of the scope hashes K[first + 1 .. first + n]; returns the
-- "key\\tfield" lines it added to (what a reservation gives back).
local function hold(K, first, n, fields, amount)
  local lines = {}
  for i = 1, n do
    local key = K[first + i]
    for p = 1, 3 do
      redis.call('HINCRBY', key, fields[p], amount)
      lines[#lines + 1] = key .. '\\t' .. fields[p]
    end
  end
  return table.concat(lines, '\\n')
end
local function sweep(prefix, deadlines, now, max, grace)
  local due = redis.call('ZRANGEBYSCORE', deadlines, '-inf', now, 'LIMIT', 0, max)
  for _, id in ipairs(due) do
    local rk = prefix .. 'r:' .. id
    local h = redis.call('HMGET', rk, 'a', 'st', 'k')
    if h[2] == 'o' then
      give_back(h[3], -tonumber(h[1]))
      -- Kept a while as expired: a late settlement still counts its spend, once.
      redis.call('HSET', rk, 'st', 'x')
      redis.call('PEXPIRE', rk, grace)
    end
    redis.call('ZREM', deadlines, id)
  end
  return #due
end
-- Drops a scope's fields of one kind ('d' or 'm') older than the one just loaded: past periods.
local function prune(key, kind, start)
  local fields = redis.call('HKEYS', key)
  for _, f in ipairs(fields) do
    if string.sub(f, 1, 1) == kind and tonumber(string.sub(f, 2)) < start then redis.call('HDEL', key, f) end
  end
end

-- Checks a reservation. K: epoch, deadlines, reservation, one hash per scope. A: prefix, reservation id,
-- amount, ttl ms, grace ms, scopes, day start, month start, then per scope its day, month and total
-- limits ('' = none), then (when loading) per scope its day, month and total spend from the ledger
-- ('' = not loaded). Returns nil and the remaining amount (-1 = unlimited) when it fits, else the
-- reply: {'E'} no epoch; {'Q', ms} rebuilding; {'L', i...} counters to load; {'R', i, used} refused at
-- counter i (i = 3 × (scope - 1) + period, periods day, month, total).
local function budget_check(K, A)
  local now = redis_ms()
  local ep = redis.call('GET', K[1])
  if not ep then return {'E'} end
  local after = tonumber(string.match(ep, ':(%d+)$')) or 0
  if after > now then return {'Q', after - now} end
  sweep(A[1], K[2], now, 16, tonumber(A[5]))
  local n = tonumber(A[6])
  local day, month = A[7], A[8]
  local fields = {'d' .. day, 'm' .. month, 't'}
  local loads = 8 + 3 * n
  local missing = {'L'}
  local used = {}
  for i = 1, n do
    local key = K[3 + i]
    local v = redis.call('HMGET', key, fields[1], fields[2], fields[3])
    for p = 1, 3 do
      local at = 3 * (i - 1) + p
      local u = v[p]
      if not u then
        local loaded = A[loads + at]
        if loaded == nil or loaded == '' then
          missing[#missing + 1] = at
        else
          redis.call('HSET', key, fields[p], loaded)
          if p == 1 then prune(key, 'd', tonumber(day)) elseif p == 2 then prune(key, 'm', tonumber(month)) end
          u = loaded
        end
      end
      used[at] = tonumber(u)
    end
  end
  if #missing > 1 then return missing end
  local amount = tonumber(A[3])
  local remaining = -1
  for at = 1, 3 * n do
    local limit = A[8 + at]
    if limit ~= '' then
      local left = tonumber(limit) - used[at] - amount
      if left < 0 then return {'R', at, used[at]} end
      if remaining < 0 or left < remaining then remaining = left end
    end
  end
  return nil, remaining
end

-- Takes the reservation checked by budget_check (same K and A, in the same script run).
local function budget_commit(K, A)
  local n = tonumber(A[6])
  local amount = tonumber(A[3])
  local fields = {'d' .. A[7], 'm' .. A[8], 't'}
  redis.call('HSET', K[3], 'a', amount, 'st', 'o', 'k', hold(K, 3, n, fields, amount))
  redis.call('ZADD', K[2], redis_ms() + tonumber(A[4]), A[2])
end

-- Settles (or, with 0, releases) one reservation, or one request's part of a group reservation (the
-- reservation of several requests admitted in one script, gateway/shared-batch.ts), without giving
-- back yet: returns the reservation's counter lines and how much they change, or nil when nothing
-- does. K: deadlines, reservation; A: id, actual, part ('' = the whole reservation), member ('' for a
-- reservation of its own; else the request's number in its group, so that settling it again — a retry
-- after a reply that came too late — changes nothing). An open reservation gives back the part and
-- adds \`actual\`; an expired one (already given back) adds \`actual\` only; an unknown one (settled
-- already, or lost with Redis's data — the ledger has it) changes nothing. A group's hash counts its
-- unsettled requests (field n) and goes with the last of them.
local function budget_settle_part(K, A)
  local h = redis.call('HMGET', K[2], 'a', 'st', 'k', 'n')
  if not h[1] then return nil, 0 end
  local member = A[4] or ''
  if member ~= '' and redis.call('HSETNX', K[2], 's' .. member, 1) == 0 then return nil, 0 end
  local actual = tonumber(A[2])
  local held = tonumber(h[1])
  local part = tonumber(A[3]) or held
  local left = 0
  if h[4] and member ~= '' then left = tonumber(h[4]) - 1 end
  local delta = actual
  if h[2] == 'o' then delta = actual - part end
  if left > 0 then
    if h[2] == 'o' then redis.call('HSET', K[2], 'a', held - part, 'n', left)
    else redis.call('HSET', K[2], 'n', left) end
  else
    redis.call('ZREM', K[1], A[1])
    redis.call('DEL', K[2])
  end
  return h[3], delta
end
-- budget_settle_part, given back. Returns 1 when the reservation was known, 0 when not.
local function budget_settle(K, A)
  local lines, delta = budget_settle_part(K, A)
  if not lines then return 0 end
  if delta ~= 0 then give_back(lines, delta) end
  return 1
end
`;

/** One reservation checked and taken. Returns budget_check's reply, or {'OK', remaining}. */
export const RESERVE_SCRIPT = `${BUDGET_LUA}
local refused, remaining = budget_check(KEYS, ARGV)
if refused then return refused end
budget_commit(KEYS, ARGV)
return {'OK', remaining}
`;

/** One settlement (see budget_settle). */
export const SETTLE_SCRIPT = `${BUDGET_LUA}
return budget_settle(KEYS, ARGV)
`;

/**
 * A live instance's heartbeat for its open reservations: KEYS epoch, deadlines; ARGV prefix, ttl ms,
 * grace ms, quarantine ms, a new epoch id, then reservation ids. Pushes each one's deadline to now + ttl
 * (so a long answer is never released early) and sweeps expired ones. A reservation that vanished with
 * Redis's data means requests admitted before Redis lost it are still running, their spend not yet in
 * the ledger: the epoch (created if missing) admits nothing before now + quarantine. Returns
 * {vanished, swept}.
 */
export const RENEW_SCRIPT = `${BUDGET_LUA}
local now = redis_ms()
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
local swept = sweep(ARGV[1], KEYS[2], now, 64, tonumber(ARGV[3]))
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
