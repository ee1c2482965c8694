// The shared limiter's three steps as Lua scripts: each runs atomically on the Redis (or Valkey) server,
// so instances never read–modify–write a count between them. Plain commands only (TIME, ZSET and HASH
// commands, PEXPIRE) that Redis 7 and Valkey both run. Keys carry TTLs: an idle key's state vanishes.
//
// Time: the server's clock (TIME inside the script) unless the caller passes one (ARGV[1] non-empty).
// One clock for every instance means instances whose own clocks drift apart still agree on every
// window; tests pass a time to move through minutes without waiting for them.
import { createHash } from 'node:crypto';
import type { Redis } from '../redis/connect.js';

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
-- Seconds until 'needed' more fits under 'limit' as the oldest slices leave the window.
local function secondsUntil(key, now, limit, needed, total)
  local slice = math.floor(now / SLICE)
  for age = SLICES - 1, 0, -1 do
    local s = slice - age
    total = total - (tonumber(redis.call('HGET', key, s)) or 0)
    if total + needed <= limit then
      return math.max(1, math.ceil(((s + SLICES) * SLICE - now) / 1000))
    end
  end
  return WINDOW / 1000
end
`;

/**
 * Step 1: concurrency, then requests per minute. KEYS: requests ZSET (exact window: member per
 * admission, scored by its time), in-flight ZSET (member per ticket, scored by its expiry), requests
 * HASH (sliced window, above the exact maximum). ARGV: time, rpm, concurrency, ticket id, slot ttl ms,
 * exact maximum. Returns {1, now, remaining, slot} or {2, now} (concurrency) or {3, now, retryAtMs}.
 */
export const ADMIT_REQUEST = `${PRELUDE}
local now = clock(ARGV[1])
local rpm = tonumber(ARGV[2])
local concurrency = tonumber(ARGV[3])
local id = ARGV[4]
local ttl = tonumber(ARGV[5])
if concurrency then
  -- Slots of instances that died without finishing have expired: they no longer count.
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= concurrency then return {2, now} end
end
local remaining = -1
if rpm then
  if rpm < 1 then return {3, now, now + WINDOW} end
  if rpm <= tonumber(ARGV[6]) then
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - WINDOW)
    local n = redis.call('ZCARD', KEYS[1])
    if n >= rpm then
      -- The admission whose leaving brings the count under the limit (the oldest, unless it was lowered).
      local oldest = redis.call('ZRANGE', KEYS[1], n - rpm, n - rpm, 'WITHSCORES')
      return {3, now, tonumber(oldest[2]) + WINDOW}
    end
    redis.call('ZADD', KEYS[1], now, id)
    redis.call('PEXPIRE', KEYS[1], WINDOW + 1000)
    remaining = rpm - n - 1
  else
    local slice = math.floor(now / SLICE)
    local total = used(KEYS[3], slice)
    if total >= rpm then return {3, now, now + secondsUntil(KEYS[3], now, rpm, 1, total) * 1000} end
    redis.call('HINCRBY', KEYS[3], slice, 1)
    redis.call('PEXPIRE', KEYS[3], WINDOW + SLICE + 1000)
    remaining = rpm - total - 1
  end
end
local slot = 0
if concurrency then
  redis.call('ZADD', KEYS[2], now + ttl, id)
  redis.call('PEXPIRE', KEYS[2], ttl)
  slot = 1
end
return {1, now, remaining, slot}
`;

/**
 * Step 2: input and output tokens per minute (sliced windows). KEYS: input HASH, output HASH. ARGV:
 * time, input limit, output limit, input estimate, output reserve. Returns {0, now, slice} (charged)
 * or {1 | 2, now, used, retryAfterS} (input | output refused; nothing charged).
 */
export const ADMIT_TOKENS = `${PRELUDE}
local now = clock(ARGV[1])
local slice = math.floor(now / SLICE)
local limits = {tonumber(ARGV[2]), tonumber(ARGV[3])}
local wants = {tonumber(ARGV[4]), tonumber(ARGV[5])}
for lane = 1, 2 do
  local limit = limits[lane]
  if limit then
    local total = used(KEYS[lane], slice)
    -- A single request larger than the whole limit may pass when the window is empty.
    if total > 0 and total + wants[lane] > limit then
      return {lane, now, total, secondsUntil(KEYS[lane], now, limit, wants[lane], total)}
    end
  end
end
for lane = 1, 2 do
  if limits[lane] then
    redis.call('HINCRBY', KEYS[lane], slice, wants[lane])
    redis.call('PEXPIRE', KEYS[lane], WINDOW + SLICE + 1000)
  end
end
return {0, now, slice}
`;

/**
 * Step 3: frees the ticket's slot (ZREM: a second finish finds nothing) and replaces the token charges
 * by the actual figures. A correction lands in the slice that was charged while that slice is still
 * in the window (the net charge is then the actual figure at admission time); after it left, only
 * an excess is added, to the current slice. KEYS: in-flight ZSET, input HASH, output HASH. ARGV: time,
 * ticket id, input delta, output delta, charged slice ('' = lane not charged). Returns 1.
 */
export const FINISH = `${PRELUDE}
local now = clock(ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[2])
local charged = tonumber(ARGV[5])
if charged then
  local slice = math.floor(now / SLICE)
  for lane = 1, 2 do
    local delta = tonumber(ARGV[2 + lane])
    if delta and delta ~= 0 then
      local target = nil
      if charged > slice - SLICES then target = charged elseif delta > 0 then target = slice end
      if target then
        redis.call('HINCRBY', KEYS[1 + lane], target, delta)
        redis.call('PEXPIRE', KEYS[1 + lane], WINDOW + SLICE + 1000)
      end
    end
  end
end
return 1
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

/** A script run by its SHA1 (EVALSHA), loaded again when the server answers NOSCRIPT (restart, flush). */
export interface Script {
  run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown>;
}

export function script(source: string): Script {
  const sha = createHash('sha1').update(source).digest('hex');
  return {
    async run(redis, keys, args) {
      try {
        return await redis.evalsha(sha, keys.length, ...keys, ...args);
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
        await redis.script('LOAD', source);
        return redis.evalsha(sha, keys.length, ...keys, ...args);
      }
    },
  };
}
