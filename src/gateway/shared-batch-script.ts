// The batch admission's Lua (gateway/shared-batch.ts): the requests of one gateway key that reached
// admission in the same event-loop turn, admitted in one script, each exactly as if ADMIT_ALL
// (shared-steps.ts) had run for it alone, one after the other in the batch's order. The windows, the
// in-flight slots and the budget counters are read once and charged once with the sums, instead of
// once per request: that is the whole gain. The admitted requests' worst cases are one group
// reservation (budget-scripts.ts), each request settling its own part.
//
// Anything but a plain check — no epoch, the counters being rebuilt, a counter to load from the
// ledger — answers {'X'} before anything is taken: the requests then go one by one (ADMIT_ALL, which
// knows those cases).
import { BUDGET_LUA } from '../budgets/budget-scripts.js';
import { LIMITER_LUA } from '../ratelimit/redis-scripts.js';

/** Requests per batch script at most (bounded work per script run). */
export const BATCH_MAX = 64;

/** Per request: ticket id, input estimate, output reserve, worst case. */
export const PER_REQUEST = 4;
/** ARGV before the scope limits (see the layout below). */
export const BATCH_HEAD = 15;

/**
 * KEYS: 1 requests ZSET, 2 in-flight ZSET, 3 requests HASH, 4 input HASH, 5 output HASH, 6 epoch,
 * 7 deadlines, 8 the group's reservation, 9… one hash per budget scope.
 * ARGV: 1 requests in the batch, 2 time ('' = Redis's), 3 rpm, 4 concurrency, 5 slot ttl ms, 6 exact
 * rpm maximum, 7 input tpm, 8 output tpm ('' = none for each limit), 9 budget prefix, 10 group id,
 * 11 ttl ms, 12 grace ms, 13 scopes, 14 day start, 15 month start, then per scope its day, month and
 * total limits, then PER_REQUEST values per request.
 * Returns {'X'}, or one reply per request: {'OK', remaining, slice, now, requests left, slot}, a rate
 * refusal {'T', 1 (request step) | 2 (token lanes), ...the step's refusal} or a budget refusal
 * {'R', counter, used}.
 */
export const ADMIT_BATCH = `${LIMITER_LUA}${BUDGET_LUA}
local N = tonumber(ARGV[1])
local n = tonumber(ARGV[13])

-- Budgets: a plain check only, else the requests go one by one.
local bnow = redis_ms()
local ep = redis.call('GET', KEYS[6])
if not ep then return {'X'} end
if (tonumber(string.match(ep, ':(%d+)$')) or 0) > bnow then return {'X'} end
sweep(ARGV[9], KEYS[7], bnow, 16, tonumber(ARGV[12]))
local fields = {'d' .. ARGV[14], 'm' .. ARGV[15], 't'}
local used_b = {}
for i = 1, n do
  local v = redis.call('HMGET', KEYS[8 + i], fields[1], fields[2], fields[3])
  for p = 1, 3 do
    if not v[p] then return {'X'} end
    used_b[3 * (i - 1) + p] = tonumber(v[p])
  end
end

-- The rate limits' state, read once.
local now = clock(ARGV[2])
local slice = math.floor(now / SLICE)
local rpm = tonumber(ARGV[3])
local conc = tonumber(ARGV[4])
local exact = rpm ~= nil and rpm <= tonumber(ARGV[6])
local flying = 0
if conc then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  flying = redis.call('ZCARD', KEYS[2])
end
local before = 0
if rpm and rpm >= 1 then
  if exact then
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - WINDOW)
    before = redis.call('ZCARD', KEYS[1])
  else
    before = used(KEYS[3], slice)
  end
end
local lanes = {tonumber(ARGV[7]), tonumber(ARGV[8])}
local lane_used = {0, 0}
for lane = 1, 2 do
  if lanes[lane] then lane_used[lane] = used(KEYS[3 + lane], slice) end
end

local counted, taken, admitted, reserved = 0, 0, 0, 0
local lane_acc = {0, 0}
local members, slots, out = {}, {}, {}
local base = ${BATCH_HEAD} + 3 * n
for r = 1, N do
  local at = base + ${PER_REQUEST} * (r - 1)
  local id = ARGV[at + 1]
  local wants = {tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])}
  local worst = tonumber(ARGV[at + 4])
  local reply
  local count = false
  if conc and flying + taken >= conc then
    reply = {'T', 1, 2, now, 0}
  elseif rpm and rpm < 1 then
    reply = {'T', 1, 3, now, now + WINDOW}
  elseif rpm and before + counted >= rpm then
    local retry_at
    if exact then
      -- The admission whose leaving brings the count under the limit; this batch's are all at now.
      local index = before + counted - rpm
      if index < before then
        local oldest = redis.call('ZRANGE', KEYS[1], index, index, 'WITHSCORES')
        retry_at = tonumber(oldest[2]) + WINDOW
      else
        retry_at = now + WINDOW
      end
    else
      retry_at = now + secondsUntil(KEYS[3], now, rpm, 1, before + counted, counted) * 1000
    end
    reply = {'T', 1, 3, now, retry_at}
  else
    local left = -1
    if rpm then left = rpm - (before + counted) - 1 end
    count = true
    for lane = 1, 2 do
      local limit = lanes[lane]
      if limit and not reply then
        local total = lane_used[lane] + lane_acc[lane]
        -- A single request larger than the whole limit may pass when the window is empty.
        if total > 0 and total + wants[lane] > limit then
          reply = {'T', 2, lane, now, total,
            secondsUntil(KEYS[3 + lane], now, limit, wants[lane], total, lane_acc[lane])}
        end
      end
    end
    if not reply then
      local remaining = -1
      for c = 1, 3 * n do
        local limit = ARGV[${BATCH_HEAD} + c]
        if limit ~= '' then
          local room = tonumber(limit) - used_b[c] - reserved - worst
          if room < 0 then
            reply = {'R', c, used_b[c] + reserved}
            break
          end
          if remaining < 0 or room < remaining then remaining = room end
        end
      end
      if not reply then
        local slot = 0
        if conc then
          taken = taken + 1
          slots[#slots + 1] = now + tonumber(ARGV[5])
          slots[#slots + 1] = id
          slot = 1
        end
        for lane = 1, 2 do
          if lanes[lane] then lane_acc[lane] = lane_acc[lane] + wants[lane] end
        end
        admitted = admitted + 1
        reserved = reserved + worst
        reply = {'OK', remaining, slice, now, left, slot}
      end
    end
  end
  -- Admitted, or refused on its tokens or budgets: the request counts this minute.
  if count then
    counted = counted + 1
    if exact then
      members[#members + 1] = now
      members[#members + 1] = id
    end
  end
  out[r] = reply
end

if counted > 0 and rpm then
  if exact then
    redis.call('ZADD', KEYS[1], unpack(members))
    redis.call('PEXPIRE', KEYS[1], WINDOW + 1000)
  else
    redis.call('HINCRBY', KEYS[3], slice, counted)
    redis.call('PEXPIRE', KEYS[3], WINDOW + SLICE + 1000)
  end
end
if taken > 0 then
  redis.call('ZADD', KEYS[2], unpack(slots))
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]))
end
if admitted > 0 then
  for lane = 1, 2 do
    if lanes[lane] then
      redis.call('HINCRBY', KEYS[3 + lane], slice, lane_acc[lane])
      redis.call('PEXPIRE', KEYS[3 + lane], WINDOW + SLICE + 1000)
    end
  end
  redis.call('HSET', KEYS[8], 'a', reserved, 'st', 'o', 'k', hold(KEYS, 8, n, fields, reserved), 'n', admitted)
  redis.call('ZADD', KEYS[7], redis_ms() + tonumber(ARGV[11]), ARGV[10])
end
return out
`;

/** Per settlement: its id, actual, part, member, then its finish's time, ticket id, deltas and slice. */
export const PER_SETTLEMENT = 9;

/**
 * Settles several requests in one script: each one's finish (its slot freed, its token charges
 * corrected) and its budget settlement, to the same state as when each is sent alone (finish in
 * ratelimit/redis-scripts.ts, budget_settle_part in budgets/redis-budget-book.ts), one after the other in
 * the batch's order — but with Redis's commands per key instead of per request: one ZREM per in-flight
 * set, one HINCRBY per token lane and slice with the corrections' sum, one read and one write per
 * reservation (a group's requests settled together), and one change per budget counter. Redis runs
 * the scripts of every instance one at a time, so what a settlement costs there bounds them all.
 * KEYS: 1 deadlines, then per settlement its reservation, in-flight ZSET, input HASH, output HASH.
 * ARGV: 1 settlements, 2 'r' when the script is sent again (see finish), then PER_SETTLEMENT values
 * each; a ticket id '' means no finish to run.
 */
export const SETTLE_BATCH = `${LIMITER_LUA}${BUDGET_LUA}
local M = tonumber(ARGV[1])
local again = ARGV[2]
local function later(list, order, key, value)
  local l = list[key]
  if not l then
    l = {}
    list[key] = l
    order[#order + 1] = key
  end
  l[#l + 1] = value
end

-- The finishes: slots to free per in-flight set, token corrections summed per lane hash and slice.
local tnow = nil
local frees, free_order = {}, {}
local fixes, fix_order = {}, {}
for i = 1, M do
  local k, a = 1 + 4 * (i - 1), 2 + ${PER_SETTLEMENT} * (i - 1)
  if ARGV[a + 6] ~= '' then
    local now = tonumber(ARGV[a + 5])
    if not now then
      tnow = tnow or clock('')
      now = tnow
    end
    later(frees, free_order, KEYS[k + 2], ARGV[a + 6])
    local charged = tonumber(ARGV[a + 9])
    if charged then
      local slice = math.floor(now / SLICE)
      for lane = 1, 2 do
        local delta = tonumber(ARGV[a + 6 + lane])
        if delta and delta < 0 and again == 'r' then delta = nil end
        if delta and delta ~= 0 then
          local target = nil
          if charged > slice - SLICES then target = charged elseif delta > 0 then target = slice end
          if target then later(fixes, fix_order, KEYS[k + 2 + lane], {target, delta}) end
        end
      end
    end
  end
end
for _, key in ipairs(free_order) do redis.call('ZREM', key, unpack(frees[key])) end
for _, key in ipairs(fix_order) do
  local sums, order = {}, {}
  for _, fix in ipairs(fixes[key]) do
    local target = fix[1]
    if not sums[target] then
      sums[target] = 0
      order[#order + 1] = target
    end
    sums[target] = sums[target] + fix[2]
  end
  for _, target in ipairs(order) do redis.call('HINCRBY', key, target, sums[target]) end
  redis.call('PEXPIRE', key, WINDOW + SLICE + 1000)
end

-- The budget settlements, grouped by reservation (budget_settle_part, applied in order in memory).
local settles, settle_order = {}, {}
for i = 1, M do later(settles, settle_order, KEYS[2 + 4 * (i - 1)], 2 + ${PER_SETTLEMENT} * (i - 1)) end
local sums, order = {}, {}
for _, rk in ipairs(settle_order) do
  local items = settles[rk]
  local fields, asked = {'a', 'st', 'k', 'n'}, {}
  for _, a in ipairs(items) do
    local member = ARGV[a + 4]
    if member ~= '' and not asked[member] then
      asked[member] = true
      fields[#fields + 1] = 's' .. member
    end
  end
  local h = redis.call('HMGET', rk, unpack(fields))
  if h[1] then
    local done = {}
    for f = 5, #fields do
      if h[f] then done[string.sub(fields[f], 2)] = true end
    end
    local held, open, lines, n = tonumber(h[1]), h[2] == 'o', h[3], tonumber(h[4])
    local gone, changed, marks = false, false, {}
    for _, a in ipairs(items) do
      local member = ARGV[a + 4]
      if not gone and not (member ~= '' and done[member]) then
        if member ~= '' then
          done[member] = true
          marks[#marks + 1] = 's' .. member
          marks[#marks + 1] = 1
        end
        local actual = tonumber(ARGV[a + 2])
        local part = tonumber(ARGV[a + 3]) or held
        local left = 0
        if n and member ~= '' then left = n - 1 end
        local delta = actual
        if open then delta = actual - part end
        if left > 0 then
          if open then held = held - part end
          n = left
          changed = true
        else
          gone = true
          redis.call('ZREM', KEYS[1], ARGV[a + 1])
          redis.call('DEL', rk)
        end
        if delta ~= 0 then
          if not sums[lines] then
            sums[lines] = 0
            order[#order + 1] = lines
          end
          sums[lines] = sums[lines] + delta
        end
      end
    end
    if changed and not gone then
      if open then
        redis.call('HSET', rk, 'a', held, 'n', n, unpack(marks))
      else
        redis.call('HSET', rk, 'n', n, unpack(marks))
      end
    end
  end
end
for _, lines in ipairs(order) do
  if sums[lines] ~= 0 then give_back(lines, sums[lines]) end
end
return M
`;
