// The shared limiter's three steps as Lua scripts: each runs atomically on the Redis (or Valkey) server,
// so instances never read–modify–write a count between them. Plain commands only (TIME, ZSET and HASH
// commands, PEXPIRE) that Redis 7 and Valkey both run. Keys carry TTLs: an idle key's state vanishes.
//
// Time: the server's clock (TIME inside the script) unless the caller passes one (ARGV[1] non-empty).
// One clock for every instance means instances whose own clocks drift apart still agree on every
// window; tests pass a time to move through minutes without waiting for them.

/** The window and its 5 s slices, as in process (sliced-minutes.ts). */
const PRELUDE = `
local WINDOW = 60000
local SLICE = 5000
local SLICES = 13
local function clock(arg)
  local t = tonumber(arg)
  if t then return t end
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end
-- A sliced minute: HASH of slice number -> amount. Drops slices that left the window, returns the sum.
local function used(key, slice)
  local fields = redis.call('HGETALL', key)
  local total = 0
  for i = 1, #fields, 2 do
    local s = tonumber(fields[i])
    if s < slice - SLICES + 1 then redis.call('HDEL', key, fields[i])
    else total = total + tonumber(fields[i + 1]) end
  end
  return total
end
-- Seconds until 'needed' more fits under 'limit' as the oldest slices leave the window. 'pending': an
-- amount counted in 'total' for the current slice but not written yet (a batch's, gateway/shared-batch.ts).
local function secondsUntil(key, now, limit, needed, total, pending)
  local slice = math.floor(now / SLICE)
  for age = SLICES - 1, 0, -1 do
    local s = slice - age
    total = total - (tonumber(redis.call('HGET', key, s)) or 0)
    if age == 0 and pending then total = total - pending end
    if total + needed <= limit then
      return math.max(1, math.ceil(((s + SLICES) * SLICE - now) / 1000))
    end
  end
  return WINDOW / 1000
end
`;

/**
 * Step 1 as Lua functions over their own KEYS and ARGV tables (see TOKENS_LUA for why).
 *
 * request_check — concurrency, then requests per minute. K: requests ZSET (exact window: member per
 * admission, scored by its time), in-flight ZSET (member per ticket, scored by its expiry), requests
 * HASH (sliced window, above the exact maximum). A: time, rpm, concurrency, ticket id, slot ttl ms,
 * exact maximum. Returns nil, now, remaining (-1: no rpm) when the request fits, else the refusal
 * {2, now} (concurrency) or {3, now, retryAtMs}. request_commit then counts the request and, with
 * \`slot\`, takes its concurrency slot (same K and A, same run); it answers 1 when a slot was taken.
 */
export const REQUEST_LUA = `${PRELUDE}
local function request_check(K, A)
  local now = clock(A[1])
  local rpm = tonumber(A[2])
  local concurrency = tonumber(A[3])
  if concurrency then
    -- Slots of instances that died without finishing have expired: they no longer count.
    redis.call('ZREMRANGEBYSCORE', K[2], '-inf', now)
    if redis.call('ZCARD', K[2]) >= concurrency then return {2, now} end
  end
  if not rpm then return nil, now, -1 end
  if rpm < 1 then return {3, now, now + WINDOW} end
  if rpm <= tonumber(A[6]) then
    redis.call('ZREMRANGEBYSCORE', K[1], '-inf', now - WINDOW)
    local n = redis.call('ZCARD', K[1])
    if n >= rpm then
      -- The admission whose leaving brings the count under the limit (the oldest, unless it was lowered).
      local oldest = redis.call('ZRANGE', K[1], n - rpm, n - rpm, 'WITHSCORES')
      return {3, now, tonumber(oldest[2]) + WINDOW}
    end
    return nil, now, rpm - n - 1
  end
  local total = used(K[3], math.floor(now / SLICE))
  if total >= rpm then return {3, now, now + secondsUntil(K[3], now, rpm, 1, total) * 1000} end
  return nil, now, rpm - total - 1
end
local function request_commit(K, A, now, slot)
  local rpm = tonumber(A[2])
  if rpm then
    if rpm <= tonumber(A[6]) then
      redis.call('ZADD', K[1], now, A[4])
      redis.call('PEXPIRE', K[1], WINDOW + 1000)
    else
      redis.call('HINCRBY', K[3], math.floor(now / SLICE), 1)
      redis.call('PEXPIRE', K[3], WINDOW + SLICE + 1000)
    end
  end
  if slot and tonumber(A[3]) then
    local ttl = tonumber(A[5])
    redis.call('ZADD', K[2], now + ttl, A[4])
    redis.call('PEXPIRE', K[2], ttl)
    return 1
  end
  return 0
end
`;

/** Step 1 alone: returns {1, now, remaining, slot} or request_check's refusal. */
export const ADMIT_REQUEST = `${REQUEST_LUA}
local refused, now, remaining = request_check(KEYS, ARGV)
if refused then return refused end
return {1, now, remaining, request_commit(KEYS, ARGV, now, true)}
`;

/**
 * Step 2 and step 3 as Lua functions over their own KEYS and ARGV tables, so that a script can run them
 * together with a budget step in one round trip (gateway/shared-steps.ts); ADMIT_TOKENS and FINISH run
 * each alone.
 *
 * tokens_check — input and output tokens per minute (sliced windows). K: input HASH, output HASH.
 * A: time, input limit, output limit, input estimate, output reserve. Returns nil, now, slice when both
 * lanes fit, else the refusal {1 | 2, now, used, retryAfterS} (input | output). tokens_commit then
 * charges them (same K and A, same run).
 *
 * finish — frees the ticket's slot (ZREM: a second finish finds nothing) and replaces the token
 * charges by the actual figures. A correction lands in the slice that was charged while that slice is
 * still in the window (the net charge is then the actual figure at admission time); after it left,
 * only an excess is added, to the current slice. K: in-flight ZSET, input HASH, output HASH. A: time,
 * ticket id, input delta, output delta, charged slice ('' = lane not charged), and 'r' when the finish is
 * sent again after a reply that never came: the first may have run, so a second sending adds what the
 * request used beyond its charge (counted twice at worst: too much, never too little) and gives back
 * nothing (a refund applied twice would let the minute's tokens run past the limit).
 */
export const TOKENS_LUA = `
local function tokens_check(K, A)
  local now = clock(A[1])
  local slice = math.floor(now / SLICE)
  local limits = {tonumber(A[2]), tonumber(A[3])}
  local wants = {tonumber(A[4]), tonumber(A[5])}
  for lane = 1, 2 do
    local limit = limits[lane]
    if limit then
      local total = used(K[lane], slice)
      -- A single request larger than the whole limit may pass when the window is empty.
      if total > 0 and total + wants[lane] > limit then
        return {lane, now, total, secondsUntil(K[lane], now, limit, wants[lane], total)}
      end
    end
  end
  return nil, now, slice
end
local function tokens_commit(K, A, slice)
  for lane = 1, 2 do
    if tonumber(A[1 + lane]) then
      redis.call('HINCRBY', K[lane], slice, tonumber(A[3 + lane]))
      redis.call('PEXPIRE', K[lane], WINDOW + SLICE + 1000)
    end
  end
end
local function finish(K, A)
  local now = clock(A[1])
  redis.call('ZREM', K[1], A[2])
  local charged = tonumber(A[5])
  if charged then
    local slice = math.floor(now / SLICE)
    for lane = 1, 2 do
      local delta = tonumber(A[2 + lane])
      if delta and delta < 0 and A[6] == 'r' then delta = nil end
      if delta and delta ~= 0 then
        local target = nil
        if charged > slice - SLICES then target = charged elseif delta > 0 then target = slice end
        if target then
          redis.call('HINCRBY', K[1 + lane], target, delta)
          redis.call('PEXPIRE', K[1 + lane], WINDOW + SLICE + 1000)
        end
      end
    end
  end
  return 1
end
`;

/** The limiter's three steps as functions, for scripts that run them. */
export const LIMITER_LUA = `${REQUEST_LUA}${TOKENS_LUA}`;

/** Step 2 alone: returns {0, now, slice} (charged) or tokens_check's refusal (nothing charged). */
export const ADMIT_TOKENS = `${LIMITER_LUA}
local refused, now, slice = tokens_check(KEYS, ARGV)
if refused then return refused end
tokens_commit(KEYS, ARGV, slice)
return {0, now, slice}
`;

/** Step 3 alone. Returns 1. */
export const FINISH = `${LIMITER_LUA}
return finish(KEYS, ARGV)
`;

/**
 * Renews the in-flight slots of one instance's open tickets (their process is alive). KEYS: in-flight
 * ZSETs; ARGV: time, ttl ms, then one ticket id per key. Returns how many were still held.
 */
export const RENEW = `${PRELUDE}
local now = clock(ARGV[1])
local ttl = tonumber(ARGV[2])
local held = 0
for i = 1, #KEYS do
  -- XX: a slot already released (or expired and removed) is never taken again.
  if redis.call('ZADD', KEYS[i], 'XX', 'CH', now + ttl, ARGV[2 + i]) == 1 then
    redis.call('PEXPIRE', KEYS[i], ttl)
    held = held + 1
  end
end
return held
`;
