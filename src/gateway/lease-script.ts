// The Lua of the shared stores' leases (gateway/leases.ts): an instance takes, for one busy gateway key,
// a chunk of each of its limits at once — requests and tokens counted in the current 5 s slice, slots
// in the in-flight set, an amount held on every budget scope like a reservation — and admits that
// key's requests in process against the chunk. Redis sees a script per chunk and one per turn (the
// spend report), not one per request.
//
// The lease's budget hold is a reservation hash (budget-scripts.ts: P r:ID) with two fields more:
// s, the spend moved out of the hold so far, and g, what the hold grew by beyond its chunks (a request
// that cost more than its worst case). Both are cumulative figures sent by the instance, so a report
// sent twice, or late, changes nothing twice. The book's renewal pushes the hold's deadline; an
// instance killed with -9 stops renewing, and the sweep gives back what the hold still has — never
// what was spent, which left the hold (before its record's commit) in a report.
import { BUDGET_LUA } from '../budgets/budget-scripts.js';
import { LIMITER_LUA } from '../ratelimit/redis-scripts.js';

const LEASE_LUA = `${LIMITER_LUA}${BUDGET_LUA}
local function part(t, from, to)
  local r = {}
  for i = from, to do r[#r + 1] = t[i] end
  return r
end
-- Gives a segment's unused requests or tokens back to the slice they were counted in, while it is in
-- the window (a negative amount adds what the segment used beyond its chunk). A slice Redis no longer
-- holds (lost with its data) is not recreated.
local function lease_return(key, slice, amount, now)
  if key == '' or amount == 0 then return end
  if slice <= math.floor(now / SLICE) - SLICES then return end
  if redis.call('HEXISTS', key, slice) == 1 then redis.call('HINCRBY', key, slice, -amount) end
end
-- The previous segment's unused parts (A at 'from': slice, requests, input, output) back to their slice
-- when it is not the current one; K: requests, input, output hashes ('' when not limited).
local function lease_returns(K, A, from, now, slice)
  local prev = tonumber(A[from])
  if not prev or prev == slice then return end
  lease_return(K[1], prev, tonumber(A[from + 1]), now)
  lease_return(K[2], prev, tonumber(A[from + 2]), now)
  lease_return(K[3], prev, tonumber(A[from + 3]), now)
end
-- Moves the lease's spend out of its hold: spent (T) and grown (G) are cumulative. An open hold loses
-- what was spent (the counters, settled + held, do not change) and gains the growth (counters too); an
-- expired one gave everything back already, so its spend is added to the counters. Returns the hold's
-- amount, state and counter lines, or nil when Redis does not know it.
local function lease_spend(rk, T, G)
  local h = redis.call('HMGET', rk, 'a', 'st', 'k', 's', 'g')
  if not h[1] then return nil end
  local s, g = tonumber(h[4]) or 0, tonumber(h[5]) or 0
  local dT, dG = math.max(0, T - s), math.max(0, G - g)
  local a = tonumber(h[1])
  if dT == 0 and dG == 0 then return a, h[2], h[3] end
  if h[2] == 'o' then
    if dG > 0 then give_back(h[3], dG) end
    a = a + dG - dT
    redis.call('HSET', rk, 'a', a, 's', s + dT, 'g', g + dG)
  else
    if dT > 0 then give_back(h[3], dT) end
    redis.call('HSET', rk, 's', s + dT, 'g', g + dG)
  end
  return a, h[2], h[3]
end
-- Adds delta to the lease's hold (a new hold: on every scope × period of the reservation's arguments)
-- and pushes its deadline. K and A: the budget step's (budget_check).
local function lease_hold(K, A, delta)
  local lines = redis.call('HGET', K[3], 'k')
  if lines then
    give_back(lines, delta)
    redis.call('HINCRBY', K[3], 'a', delta)
  else
    local fields = {'d' .. A[7], 'm' .. A[8], 't'}
    redis.call('HSET', K[3], 'a', delta, 'st', 'o', 'k', hold(K, 3, tonumber(A[6]), fields, delta), 's', 0, 'g', 0)
  end
  redis.call('ZADD', K[2], redis_ms() + tonumber(A[4]), A[2])
end
`;

/**
 * Takes a chunk (or the first one). KEYS: requests (sliced) hash, in-flight set, input hash, output
 * hash ('' when not limited), then the budget step's (epoch, deadlines, the hold, one hash per scope).
 * ARGV: 1 time, 2 rpm, 3 concurrency, 4 slot ttl, 5 input tpm, 6 output tpm ('' = none), 7 requests,
 * 8 input, 9 output to take, 10 slots to add, 11 slots held, 12 the slots' member prefix, 13–16 the
 * previous segment's slice ('' = none) and its unused requests, input, output, 17 room (how many
 * chunks must fit), 18 the amount to add to the hold, 19 spent, 20 grown (the spend report), 21 '1'
 * for a new lease; then the budget step's arguments, whose amount is the one checked for room.
 *
 * Returns {'OK', now, slice, requests left (-1: no rpm), budget left after the hold (-1: none)}; {'G'}
 * when the hold is gone (expired, or lost with Redis's data): the lease is over; {'N', which} when a
 * limit has too little room for a chunk (1 slots, 2 requests, 3 input, 4 output, 5 budget): requests go
 * one by one; or the budget step's {'E'}, {'Q', ms}, {'L', ...}: nothing was changed.
 */
export const LEASE_TAKE = `${LEASE_LUA}
local bk, ba = part(KEYS, 5, #KEYS), part(ARGV, 22, #ARGV)
local state = redis.call('HGET', bk[3], 'st')
if ARGV[21] == '1' then
  if state then return {'G'} end
elseif state ~= 'o' then
  return {'G'}
end
local delta = tonumber(ARGV[18])
local remaining = -1
local refusedBudget = false
if delta > 0 then
  local held, left = budget_check(bk, ba)
  if held then
    if held[1] ~= 'R' then return held end
    refusedBudget = true
  else
    remaining = left
  end
end
local now = clock(ARGV[1])
local slice = math.floor(now / SLICE)
lease_returns({KEYS[1], KEYS[3], KEYS[4]}, ARGV, 13, now, slice)
if ARGV[21] ~= '1' then lease_spend(bk[3], tonumber(ARGV[19]), tonumber(ARGV[20])) end
if refusedBudget then return {'N', 5} end
local room = tonumber(ARGV[17])
local concurrency, add = tonumber(ARGV[3]), tonumber(ARGV[10])
if concurrency and add > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) + room * add > concurrency then return {'N', 1} end
end
local rpm, requests = tonumber(ARGV[2]), tonumber(ARGV[7])
local requestsLeft = -1
if rpm then
  local total = used(KEYS[1], slice)
  if total + room * requests > rpm then return {'N', 2} end
  requestsLeft = rpm - total - requests
end
for lane = 1, 2 do
  local limit = tonumber(ARGV[4 + lane])
  if limit and used(KEYS[2 + lane], slice) + room * tonumber(ARGV[7 + lane]) > limit then
    return {'N', 2 + lane}
  end
end
if rpm and requests > 0 then
  redis.call('HINCRBY', KEYS[1], slice, requests)
  redis.call('PEXPIRE', KEYS[1], WINDOW + SLICE + 1000)
end
for lane = 1, 2 do
  local want = tonumber(ARGV[7 + lane])
  if tonumber(ARGV[4 + lane]) and want > 0 then
    redis.call('HINCRBY', KEYS[2 + lane], slice, want)
    redis.call('PEXPIRE', KEYS[2 + lane], WINDOW + SLICE + 1000)
  end
end
if concurrency and add > 0 then
  local held, ttl = tonumber(ARGV[11]), tonumber(ARGV[4])
  for i = held + 1, held + add do redis.call('ZADD', KEYS[2], now + ttl, ARGV[12] .. i) end
  redis.call('PEXPIRE', KEYS[2], ttl)
end
if delta > 0 then lease_hold(bk, ba, delta) end
return {'OK', now, slice, requestsLeft, remaining}
`;

/**
 * The turn's spend report: KEYS the holds; ARGV per hold its spent and grown (cumulative). Returns 1.
 */
export const LEASE_REPORT = `${LEASE_LUA}
for i = 1, #KEYS do lease_spend(KEYS[i], tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])) end
return 1
`;

/**
 * Ends a lease's segment, and with 'final' the lease. KEYS: requests, in-flight, input, output, deadlines,
 * the hold. ARGV: 1 time, 2 the hold's id, 3 spent, 4 grown, 5 slots held, 6 their member prefix, 7–10
 * the segment's slice ('' = none) and its unused requests, input, output, 11 'r' when sent again after a
 * reply that never came (the returns may have run: not again; too much counted, never too little),
 * 12 '1' for the final one: the hold gives back what it still has, its slots are freed, it is deleted.
 * Returns 1.
 */
export const LEASE_CLOSE = `${LEASE_LUA}
local now = clock(ARGV[1])
if ARGV[11] ~= 'r' then lease_returns({KEYS[1], KEYS[3], KEYS[4]}, ARGV, 7, now, -1) end
local a, state, lines = lease_spend(KEYS[6], tonumber(ARGV[3]), tonumber(ARGV[4]))
if ARGV[12] == '1' then
  if a and state == 'o' and a ~= 0 then give_back(lines, -a) end
  redis.call('DEL', KEYS[6])
  redis.call('ZREM', KEYS[5], ARGV[2])
  for i = 1, tonumber(ARGV[5]) do redis.call('ZREM', KEYS[2], ARGV[6] .. i) end
end
return 1
`;
