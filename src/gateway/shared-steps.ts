// With Redis, a governed request asks the shared stores twice instead of five times: its request slot,
// token lanes and budget reservation in one script before the upstream call, and its finish and
// settlement in one script after it — scripts shared with the other requests of the same event-loop
// turn (shared-batch.ts). A large body (see admission.ts) takes its request slot alone
// first, before the body is parsed (the cheap refusal first), then the token lanes and the budgets in
// one script: three round trips. Each script is atomic in Redis: nothing is charged, taken or reserved
// unless every step fits; a request refused on its tokens or budgets still counts as a request this
// minute (as when it took its slot alone). The scripts are the two stores' own Lua functions
// (ratelimit/redis-scripts.ts, budgets/budget-scripts.ts) called one after the other.
import type { Reservation, ScopeLimits, SharedReserveResult } from '../budgets/budget-book.js';
import { BUDGET_LUA } from '../budgets/budget-scripts.js';
import { type RedisBudgetBook, UNREACHABLE } from '../budgets/redis-budget-book.js';
import {
  type RateHeaders,
  type RateLimits,
  type RateRefusal,
  type Ticket,
  UNAVAILABLE,
} from '../ratelimit/rate-limiter.js';
import type { RedisRateLimiter } from '../ratelimit/redis-limiter.js';
import { LIMITER_LUA } from '../ratelimit/redis-scripts.js';
import { script } from '../redis/script.js';
import { createLeases, isLeased, type LeaseOptions } from './leases.js';
import { createAdmissionBatcher, createSettlementBatcher, type Pending } from './shared-batch.js';

const PART = `
local function part(t, from, to)
  local r = {}
  for i = from, to do r[#r + 1] = t[i] end
  return r
end
`;

/**
 * KEYS: the token lanes' 2, then the reservation's; ARGV: the lanes' 5, then the reservation's. Returns
 * {'T', ...the lanes' refusal}, the reservation's own refusal or request ({'E'}, {'Q', ms}, {'L', ...},
 * {'R', ...}), or {'OK', remaining, slice} with both taken.
 */
const TOKENS_AND_BUDGET = script(`${LIMITER_LUA}${BUDGET_LUA}${PART}
local tk, ta = part(KEYS, 1, 2), part(ARGV, 1, 5)
local bk, ba = part(KEYS, 3, #KEYS), part(ARGV, 6, #ARGV)
local refused, now, slice = tokens_check(tk, ta)
if refused then return {'T', refused[1], refused[2], refused[3], refused[4]} end
local held, remaining = budget_check(bk, ba)
if held then return held end
tokens_commit(tk, ta, slice)
budget_commit(bk, ba)
return {'OK', remaining, slice}
`);

/**
 * KEYS: the request step's 3, the token lanes' 2, then the reservation's; ARGV: 6, 5, then the
 * reservation's. Returns {'T', 1, ...the request step's refusal} or {'T', 2, ...the lanes' refusal}, the
 * reservation's own refusal or request, or {'OK', remaining, slice, now, requests left, slot}.
 */
const ADMIT_ALL = script(`${LIMITER_LUA}${BUDGET_LUA}${PART}
local rk, ra = part(KEYS, 1, 3), part(ARGV, 1, 6)
local tk, ta = part(KEYS, 4, 5), part(ARGV, 7, 11)
local bk, ba = part(KEYS, 6, #KEYS), part(ARGV, 12, #ARGV)
local refused, now, left = request_check(rk, ra)
if refused then return {'T', 1, refused[1], refused[2], refused[3] or 0} end
local lanes, _, slice = tokens_check(tk, ta)
if lanes then
  request_commit(rk, ra, now, false)
  return {'T', 2, lanes[1], lanes[2], lanes[3], lanes[4]}
end
local held, remaining = budget_check(bk, ba)
if held then
  if held[1] == 'R' then request_commit(rk, ra, now, false) end
  return held
end
local slot = request_commit(rk, ra, now, true)
tokens_commit(tk, ta, slice)
budget_commit(bk, ba)
return {'OK', remaining, slice, now, left, slot}
`);

/** The token lanes of a key without token limits: the script only reads the time. */
const NO_TOKENS = { keys: ['', ''], args: ['', '', '', 0, 0] } as const;

/** A rate refusal, or the reservation's result (which may be a budget refusal or unavailable). */
export type SharedAdmission = RateRefusal | (SharedReserveResult & { headers?: RateHeaders });

export function createSharedSteps(
  limiter: RedisRateLimiter,
  book: RedisBudgetBook,
  leaseOptions: LeaseOptions | false = {},
) {
  /** One request's admission in its own script. */
  async function admitOne(p: Pending): Promise<SharedAdmission> {
    const { ticket, limits, now, scopes, worst, request, tokens } = p;
    const lanes = tokens ?? NO_TOKENS;
    const r = await book.reserveWith(scopes, worst, now, {
      script: ADMIT_ALL,
      keys: [...request.keys, ...lanes.keys],
      args: [...request.args, ...lanes.args],
      // The refusal's finish (admission.ts) then frees the slot the lost script may have taken.
      lost: () => limiter.slotMaybeTaken(ticket),
    });
    if (r.ok) {
      const [slice, at, left, slot] = r.companion.map(Number) as [number, number, number, number];
      tokens?.charged(slice);
      return { ...r, headers: request.admitted(at, left, slot === 1) };
    }
    // Redis unreachable: the rate limits are the first step that could not be checked, as when the
    // request step goes alone (a key without rate limits hears that budgets could not be).
    if (r === UNREACHABLE && (limits.rpm !== null || limits.concurrency !== null || tokens !== null))
      return UNAVAILABLE;
    if ('companion' in r) {
      const [which, ...reply] = r.companion.map(Number);
      // Without token limits the lanes never refuse: a refusal is the request step's then.
      return which === 2 && tokens ? tokens.refused(reply) : request.refused(reply);
    }
    return r;
  }
  // Requests of one key in one turn share a script (shared-batch.ts).
  const batcher = createAdmissionBatcher(limiter, book, admitOne);
  // Settlements of one turn share a script too.
  const settlements = createSettlementBatcher(book);
  // A busy key's requests are admitted in process on chunks of its limits (leases.ts).
  const leases = leaseOptions === false ? null : createLeases(limiter, book, leaseOptions);

  return {
    /** A ticket for `admit` (which takes the request slot itself). */
    ticket: (keyId: string): Ticket => limiter.newTicket(keyId),

    /**
     * Takes the request slot, charges the token lanes and reserves the worst case on every budget
     * scope, in one round trip: a rate refusal, or the reservation's result (which may be a budget
     * refusal or unavailable) with the requests-per-minute headers.
     */
    admit(
      ticket: Ticket,
      limits: RateLimits,
      now: number,
      inputEstimate: number,
      outputReserve: number,
      scopes: readonly ScopeLimits[],
      worst: number,
    ): Promise<SharedAdmission> {
      if (!limiter.connected()) return Promise.resolve(UNAVAILABLE);
      // The scripts' steps are built only for a request that goes one by one (a leased one needs none).
      const oneByOne = (): Promise<SharedAdmission> => {
        const request = limiter.requestStep(ticket, limits, now);
        const tokens = limiter.tokensStep(ticket, limits, now, inputEstimate, outputReserve);
        if (tokens !== null && !('keys' in tokens)) return Promise.resolve(tokens);
        return batcher.admit({ ticket, limits, now, scopes, worst, request, tokens });
      };
      const leased = leases?.admit(
        ticket,
        limits,
        now,
        inputEstimate,
        outputReserve,
        scopes,
        worst,
        oneByOne,
      );
      if (leased === undefined || leased === null) return oneByOne();
      return leased instanceof Promise ? leased : Promise.resolve(leased);
    },

    /**
     * Charges the token lanes and reserves the worst case on every budget scope, in one round trip:
     * a rate refusal, or the reservation's result (which may be a budget refusal or unavailable).
     */
    async tokensAndBudget(
      ticket: Ticket,
      limits: RateLimits,
      now: number,
      inputEstimate: number,
      outputReserve: number,
      scopes: readonly ScopeLimits[],
      worst: number,
    ): Promise<RateRefusal | SharedReserveResult> {
      const step = limiter.tokensStep(ticket, limits, now, inputEstimate, outputReserve);
      if (step === null) return book.reserve(scopes, worst, now);
      if (!('keys' in step)) return step;
      const r = await book.reserveWith(scopes, worst, now, {
        script: TOKENS_AND_BUDGET,
        keys: step.keys,
        args: step.args,
      });
      if (r.ok) {
        step.charged(Number(r.companion[0]));
        return r;
      }
      if ('companion' in r) return step.refused(r.companion.map(Number));
      return r;
    },

    /**
     * Settles the reservation and finishes the ticket, in one round trip (off the request path) shared
     * with the turn's other settlements.
     */
    finish(
      reservation: Reservation,
      actual: number,
      ticket: Ticket,
      now: number,
      actualInput: number,
      actualOutput: number,
    ): void {
      if (leases !== null && isLeased(reservation)) {
        leases.finish(reservation, actual, ticket, now, actualInput, actualOutput);
        return;
      }
      const finishing = limiter.finishStep(ticket, now, actualInput, actualOutput);
      const settling = book.settleStep(reservation, actual);
      if (settling !== null) settlements.settle(finishing, settling);
      // Settled before (never on the gateway's paths): the finish still goes, alone.
      else if (finishing !== null) limiter.sendFinish(finishing);
    },

    /** Ends every lease (after the requests drained; before the stores close). */
    close(): void {
      leases?.close();
    },
    /** The leases' sweep and count (tests). */
    leases,
  };
}

export type SharedSteps = ReturnType<typeof createSharedSteps>;
