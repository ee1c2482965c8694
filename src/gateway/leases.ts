// Leases: for a busy gateway key, this instance takes a chunk of each of the key's shared limits at once
// (lease-script.ts) and admits the key's requests in process against it, so that Redis sees one script
// per chunk and one per turn (the spend report) instead of two per request.
//
// - A chunk: requests and input/output tokens counted in the current 5 s slice of the key's minute
//   windows, slots added to its in-flight set, an amount added to a hold on every budget scope × period
//   (a reservation that the book renews with its own). A request fits when all of its needs fit in
//   what the lease has left; otherwise one script takes another chunk (requests of the key wait for it),
//   and a request that still does not fit goes one by one (shared-steps.ts), as every request does
//   without a lease. Either way it is counted exactly once.
// - Only where a lease cannot change an answer: a chunk is at most 1 / `share` of every limit and is
//   taken only while `room` chunks still fit under each (else requests go one by one, exact to the
//   last request as before); exact requests-per-minute windows (rpm ≤ EXACT_RPM_MAX) are never leased,
//   nor a key that is not busy (a key admitted fewer than `busyAfter` times in a second).
// - Time: a chunk's requests and tokens are counted in the slice it was taken in, so it serves only
//   until that slice ends (by Redis's clock, measured from when the script was sent). What a segment
//   did not use goes back to its slice when the next chunk is taken or the lease ends; a token
//   correction at finish stays in the lease while its segment is the lease's, else goes to Redis.
// - Spend: a finished request's cost leaves the hold in the turn's spend report (LEASE_REPORT), sent
//   before its record is committed — cumulative figures, so a report retried or late counts once. An
//   instance killed with -9 stops renewing; the hold expires and gives back what it still held, never
//   what was spent; its slots expire; its unused requests and tokens stay counted (too much, not too
//   little) until their slice leaves the window.
// - A lease whose hold is gone (Redis restarted empty, or it expired) is over at its next chunk (at most
//   one slice later); while its requests run, the book's renewal sees its hold vanished and holds
//   every instance's admissions back (budget-scripts.ts), as for a vanished reservation.
import type { Reservation, ScopeLimits } from '../budgets/budget-book.js';
import { PERIODS, periodEnd } from '../budgets/periods.js';
import type { RedisBudgetBook } from '../budgets/redis-budget-book.js';
import { EXACT_RPM_MAX } from '../ratelimit/limiter.js';
import { type RateLimits, requestHeaders, type Ticket } from '../ratelimit/rate-limiter.js';
import type { RedisRateLimiter, RedisTicket } from '../ratelimit/redis-limiter.js';
import { SLICE_MS, WINDOW_MS } from '../ratelimit/sliced-minutes.js';
import { RedisTimeoutError } from '../redis/connect.js';
import { script, sendInCheckPhase } from '../redis/script.js';
import { LEASE_CLOSE, LEASE_REPORT, LEASE_TAKE } from './lease-script.js';
import type { SharedAdmission } from './shared-steps.js';

export interface LeaseOptions {
  /** Admissions of one key within a second from which it takes leases (default 32). */
  readonly busyAfter?: number;
  /** How many chunks must still fit under every limit for one to be taken (default 16). */
  readonly room?: number;
  /** A chunk is at most this share of every limit: limit / share (default 100). */
  readonly share?: number;
  /** A lease unused this long ends, and gives back what it holds (default 1 s). */
  readonly idleMs?: number;
  /** The clock of `sweep` (the gateway's; tests drive `sweep` themselves). */
  readonly clock?: () => number;
  /** Whether a timer sweeps (default true). */
  readonly timer?: boolean;
}

/** Requests per chunk: the first chunk's, and at most (it doubles while chunks run out within a slice). */
const FIRST_SCALE = 16;
const MAX_SCALE = 2_048;
/** Slots a lease adds at least when it needs more. */
const MIN_SLOTS = 16;
const SWEEP_MS = 250;
/** After a chunk was refused (too little room, or the budgets not ready), one by one for this long. */
const COOL_MS = 1_000;
const BUSY_NAMES_MAX = 10_000;
const REPORT_MAX = 256;

const TAKE = script(LEASE_TAKE);
const REPORT = script(LEASE_REPORT);
const CLOSE = script(LEASE_CLOSE);
const NO_COUNTERS: readonly number[] = [];

/** The largest chunk of each limit (see `share`); Infinity when not limited. */
interface Caps {
  readonly requests: number;
  readonly input: number;
  readonly output: number;
  readonly slots: number;
  readonly budget: number;
}

interface Lease {
  readonly name: string;
  readonly id: string;
  /** The prefix of its slots' members in the in-flight set. */
  readonly member: string;
  readonly keyId: string;
  readonly limits: RateLimits;
  readonly scopes: readonly ScopeLimits[];
  readonly caps: Caps;
  /** When the budget periods its hold counts in end (local clock). */
  readonly periodEnd: number;
  state: 'open' | 'ending' | 'closed';
  /** No chunk taken yet: Redis holds nothing for it. */
  fresh: boolean;
  tracked: { readonly id: string; settled: boolean } | null;
  slots: Ticket[];
  /** Slots a chunk whose reply was lost may have added (freed by the final script). */
  maybeSlots: number;
  running: number;
  /** What Redis holds for it once every report is applied; of it, `reserved` for running requests. */
  hold: number;
  reserved: number;
  /** Cumulative: spent (moved out of the hold), grown (added to it beyond the chunks), as reported. */
  spent: number;
  grown: number;
  reportedSpent: number;
  reportedGrown: number;
  queued: boolean;
  /** The budget left outside the lease when its chunk was taken (null: no budget limit). */
  budgetLeft: number | null;
  /** The current segment: its slice (-1: none), until when it serves (local), when it was taken. */
  slice: number;
  until: number;
  redisAt: number;
  localAt: number;
  /** What is left of the segment's chunk; requestsLeft: the key's rpm left outside it. */
  requests: number;
  input: number;
  output: number;
  requestsLeft: number;
  /** Requests admitted in the segment, and the chunk's size in requests. */
  taken: number;
  scale: number;
  lastUsed: number;
  taking: Promise<void> | null;
}

/** A request admitted on a lease. */
interface LeasedReservation extends Reservation {
  readonly lease: Lease;
}

export function isLeased(r: Reservation): boolean {
  return 'lease' in r;
}

export function createLeases(limiter: RedisRateLimiter, book: RedisBudgetBook, options: LeaseOptions = {}) {
  const busyAfter = options.busyAfter ?? 32;
  const room = options.room ?? 16;
  const share = options.share ?? 100;
  const idleMs = options.idleMs ?? 1_000;
  const clock = options.clock ?? Date.now;
  /** The open lease of each key (and acted-for user). */
  const current = new Map<string, Lease>();
  /** Every lease not closed yet (ending ones close when their requests are done). */
  const live = new Set<Lease>();
  const busy = new Map<string, { from: number; n: number }>();
  const cool = new Map<string, number>();
  let reports: Lease[] = [];

  function isBusy(name: string, now: number): boolean {
    let b = busy.get(name);
    if (b === undefined || now - b.from >= 1_000 || now < b.from) {
      if (b === undefined && busy.size >= BUSY_NAMES_MAX) busy.clear();
      b = { from: now, n: 0 };
      busy.set(name, b);
    }
    return ++b.n >= busyAfter;
  }

  function coolDown(name: string, now: number): void {
    if (cool.size >= BUSY_NAMES_MAX) cool.clear();
    cool.set(name, now + COOL_MS);
  }

  /** The chunk caps of a key's limits, or null when they cannot be leased. */
  function capsOf(limits: RateLimits, scopes: readonly ScopeLimits[]): Caps | null {
    const { rpm, concurrency, inputTpm, outputTpm } = limits;
    if (rpm !== null && (rpm <= EXACT_RPM_MAX || rpm < share)) return null;
    if (concurrency !== null && concurrency < share) return null;
    let budget = Number.POSITIVE_INFINITY;
    for (const s of scopes) {
      for (const p of PERIODS) {
        const limit = s.limits[p];
        if (limit !== undefined) budget = Math.min(budget, Math.floor(limit / share));
      }
    }
    const cap = (limit: number | null) =>
      limit === null ? Number.POSITIVE_INFINITY : Math.floor(limit / share);
    return {
      requests: cap(rpm),
      input: cap(inputTpm),
      output: cap(outputTpm),
      slots: cap(concurrency),
      budget,
    };
  }

  function fits(caps: Caps, input: number, output: number, worst: number): boolean {
    return input <= caps.input && output <= caps.output && worst <= caps.budget && worst > 0;
  }

  /**
   * Admits the request on the key's lease: the answer, a promise of it (a chunk was taken first), or
   * null when it goes one by one (`oneByOne` then, after a chunk that did not make it fit).
   */
  function admit(
    t: Ticket,
    limits: RateLimits,
    now: number,
    inputEstimate: number,
    outputReserve: number,
    scopes: readonly ScopeLimits[],
    worst: number,
    oneByOne: () => Promise<SharedAdmission>,
  ): SharedAdmission | Promise<SharedAdmission> | null {
    const ticket = t as RedisTicket;
    const name = scopes.length > 1 ? `${ticket.keyId}\t${(scopes[1] as ScopeLimits).id}` : ticket.keyId;
    const input = Math.ceil(inputEstimate);
    const output = Math.ceil(outputReserve);
    let lease = current.get(name);
    if (lease === undefined) {
      if (!isBusy(name, now)) return null;
      const cooling = cool.get(name);
      if (cooling !== undefined) {
        if (now < cooling) return null;
        cool.delete(name);
      }
      const caps = capsOf(limits, scopes);
      if (caps === null || !fits(caps, input, output, worst)) return null;
      lease = create(name, ticket.keyId, limits, scopes, caps, now);
    } else if (
      !sameLimits(lease.limits, limits) ||
      !sameScopes(lease.scopes, scopes) ||
      now >= lease.periodEnd
    ) {
      // The key, its owner's budgets or the period changed: the next request takes a new lease.
      end(lease, now);
      return null;
    } else if (!fits(lease.caps, input, output, worst)) return null;
    const got = take(lease, ticket, now, input, output, worst);
    if (got !== null) return got;
    const leased = lease;
    const again = () => take(leased, ticket, now, input, output, worst);
    // A burst may outrun one chunk: a second, twice as large, before going one by one.
    return chunk(leased, now, input, output, worst).then(
      () =>
        again() ??
        (leased.state === 'open'
          ? chunk(leased, now, input, output, worst).then(() => again() ?? oneByOne())
          : oneByOne()),
    );
  }

  function create(
    name: string,
    keyId: string,
    limits: RateLimits,
    scopes: readonly ScopeLimits[],
    caps: Caps,
    now: number,
  ): Lease {
    const id = book.newId();
    const lease: Lease = {
      name,
      id,
      member: `${id}#`,
      keyId,
      limits,
      scopes,
      caps,
      periodEnd: Math.min(periodEnd('day', now) ?? 0, periodEnd('month', now) ?? 0),
      state: 'open',
      fresh: true,
      tracked: null,
      slots: [],
      maybeSlots: 0,
      running: 0,
      hold: 0,
      reserved: 0,
      spent: 0,
      grown: 0,
      reportedSpent: 0,
      reportedGrown: 0,
      queued: false,
      budgetLeft: null,
      slice: -1,
      until: 0,
      redisAt: 0,
      localAt: 0,
      requests: 0,
      input: 0,
      output: 0,
      requestsLeft: -1,
      taken: 0,
      scale: FIRST_SCALE,
      lastUsed: now,
      taking: null,
    };
    current.set(name, lease);
    live.add(lease);
    return lease;
  }

  /** The request admitted on what the lease has left, or null when it does not fit. */
  function take(
    lease: Lease,
    ticket: RedisTicket,
    now: number,
    input: number,
    output: number,
    worst: number,
  ): SharedAdmission | null {
    const { limits } = lease;
    if (lease.state !== 'open' || lease.slice < 0 || now >= lease.until || now < lease.localAt) return null;
    if (limits.rpm !== null && lease.requests < 1) return null;
    if (limits.inputTpm !== null && lease.input < input) return null;
    if (limits.outputTpm !== null && lease.output < output) return null;
    if (limits.concurrency !== null && lease.running >= lease.slots.length) return null;
    if (lease.hold - lease.reserved < worst) return null;
    lease.requests--;
    lease.taken++;
    lease.running++;
    lease.reserved += worst;
    lease.lastUsed = now;
    ticket.slice = lease.slice;
    if (limits.inputTpm !== null) {
      lease.input -= input;
      ticket.inputCharged = input;
    }
    if (limits.outputTpm !== null) {
      lease.output -= output;
      ticket.outputCharged = output;
    }
    const reservation: LeasedReservation = { counters: NO_COUNTERS, amount: worst, settled: false, lease };
    const free = lease.hold - lease.reserved;
    return {
      ok: true,
      reservation,
      remainingMicro: lease.budgetLeft === null ? null : lease.budgetLeft + free,
      headers:
        limits.rpm === null
          ? {}
          : requestHeaders(
              limits.rpm,
              lease.requestsLeft + lease.requests,
              lease.redisAt + (now - lease.localAt) + WINDOW_MS,
            ),
    };
  }

  /** Takes a chunk for the lease (one at a time: requests that need one wait for the same). */
  function chunk(lease: Lease, now: number, input: number, output: number, worst: number): Promise<void> {
    if (lease.taking === null) {
      lease.taking = takeChunk(lease, now, input, output, worst).finally(() => {
        lease.taking = null;
        if (lease.state === 'ending' && lease.running === 0) close(lease, now);
      });
    }
    return lease.taking;
  }

  async function takeChunk(lease: Lease, now: number, input: number, output: number, worst: number) {
    const { limits, caps } = lease;
    // Ran out within its slice: twice as large; a new slice after a quiet one: half as large.
    if (lease.slice >= 0 && now < lease.until) lease.scale = Math.min(lease.scale * 2, MAX_SCALE);
    else if (lease.taken * 4 < lease.scale) lease.scale = Math.max(FIRST_SCALE, lease.scale / 2);
    const scale = lease.scale;
    const requests = limits.rpm === null ? 0 : Math.min(caps.requests, scale);
    const inputs = limits.inputTpm === null ? 0 : Math.min(caps.input, scale * Math.max(1, input));
    const outputs = limits.outputTpm === null ? 0 : Math.min(caps.output, scale * Math.max(1, output));
    const slotsHeld = lease.slots.length;
    const slotsAdded =
      limits.concurrency !== null && lease.running >= slotsHeld
        ? Math.max(0, Math.min(caps.slots - slotsHeld, Math.max(MIN_SLOTS, slotsHeld)))
        : 0;
    const target = Math.min(caps.budget, scale * worst);
    const free = lease.hold - lease.reserved;
    const delta = free >= worst ? 0 : Math.max(0, target - free);
    const check = Number.isFinite(caps.budget) ? room * target : target;
    const names = limiter.keysOf(lease.keyId);
    const budget = book.leaseStep(lease.scopes, now, lease.id, check);
    const spent = lease.spent;
    const grown = lease.grown;
    const segment = segmentArgs(lease);
    const keys = [
      limits.rpm === null ? '' : names.requestsSliced,
      names.inFlight,
      limits.inputTpm === null ? '' : names.input,
      limits.outputTpm === null ? '' : names.output,
      ...budget.keys,
    ];
    const args = [
      limiter.timeArg(now),
      limits.rpm ?? '',
      limits.concurrency ?? '',
      limiter.slotTtlMs,
      limits.inputTpm ?? '',
      limits.outputTpm ?? '',
      requests,
      inputs,
      outputs,
      slotsAdded,
      slotsHeld,
      lease.member,
      ...segment,
      room,
      delta,
      spent,
      grown,
      lease.fresh ? '1' : '0',
      ...budget.args,
    ];
    let reply: (string | number)[];
    try {
      reply = (await book.run(TAKE, keys, args)) as (string | number)[];
    } catch (error) {
      // Answered too late, it may have run all the same: the final script frees what it may have taken.
      if (error instanceof RedisTimeoutError) {
        lease.fresh = false;
        lease.maybeSlots = slotsAdded;
      }
      // Redis failing: one by one (which answers 503) rather than a lease attempt per request.
      coolDown(lease.name, now);
      end(lease, now);
      return;
    }
    const kind = reply[0];
    if (kind === 'OK' || kind === 'N') {
      // The previous segment's unused parts went back to their slice, the spend left the hold.
      if (!lease.fresh) {
        lease.reportedSpent = Math.max(lease.reportedSpent, spent);
        lease.reportedGrown = Math.max(lease.reportedGrown, grown);
      }
    }
    if (kind !== 'OK') {
      // Too little room ('N': the segment's parts went back), the hold gone ('G'), or the budgets not
      // ready ('E', 'Q', 'L': nothing changed; one by one, their script loads or waits).
      if (kind === 'N') segmentReturned(lease);
      // Counters to load, or no epoch: one by one loads them (or starts it); the next request leases.
      if (kind !== 'L' && kind !== 'E') coolDown(lease.name, now);
      end(lease, now);
      return;
    }
    const at = Number(reply[1]);
    const slice = Number(reply[2]);
    if (slice === lease.slice) {
      lease.requests += requests;
      lease.input += inputs;
      lease.output += outputs;
    } else {
      lease.slice = slice;
      lease.requests = requests;
      lease.input = inputs;
      lease.output = outputs;
      lease.taken = 0;
    }
    lease.until = now + ((slice + 1) * SLICE_MS - at);
    lease.redisAt = at;
    lease.localAt = now;
    lease.requestsLeft = Number(reply[3]);
    if (slotsAdded > 0) {
      lease.slots.push(
        ...limiter.holdSlots(lease.keyId, lease.member, slotsHeld + 1, slotsHeld + slotsAdded),
      );
    }
    lease.hold += delta;
    const remaining = Number(reply[4]);
    lease.budgetLeft = remaining < 0 || delta === 0 ? lease.budgetLeft : remaining + check - delta;
    if (lease.fresh) {
      lease.fresh = false;
      lease.tracked = book.track(lease.id);
    }
  }

  /** The segment's slice and unused parts, for a script that gives them back ('' when none). */
  function segmentArgs(lease: Lease): (string | number)[] {
    if (lease.slice < 0) return ['', 0, 0, 0];
    const { limits } = lease;
    return [
      lease.slice,
      limits.rpm === null ? 0 : lease.requests,
      limits.inputTpm === null ? 0 : lease.input,
      limits.outputTpm === null ? 0 : lease.output,
    ];
  }

  /** After a script gave the segment's unused parts back. */
  function segmentReturned(lease: Lease): void {
    lease.slice = -1;
    lease.requests = 0;
    lease.input = 0;
    lease.output = 0;
  }

  /** Admits nothing more; closes when its requests are done. */
  function end(lease: Lease, now: number): void {
    if (lease.state === 'closed') return;
    lease.state = 'ending';
    if (current.get(lease.name) === lease) current.delete(lease.name);
    if (lease.running === 0 && lease.taking === null) close(lease, now);
  }

  /** The lease's final script: unused parts back, spend reported, hold given back, slots freed. */
  function close(lease: Lease, now: number): void {
    lease.state = 'closed';
    live.delete(lease);
    if (current.get(lease.name) === lease) current.delete(lease.name);
    limiter.dropSlots(lease.slots);
    if (lease.tracked) book.untrack(lease.tracked);
    if (lease.fresh) return;
    sendClose(lease, true, now);
  }

  /** Ends the segment (or, final, the lease) in Redis: retried until it runs (the retry returns nothing). */
  function sendClose(lease: Lease, final: boolean, now: number): void {
    const names = limiter.keysOf(lease.keyId);
    const { limits } = lease;
    const keys = [
      limits.rpm === null ? '' : names.requestsSliced,
      names.inFlight,
      limits.inputTpm === null ? '' : names.input,
      limits.outputTpm === null ? '' : names.output,
      book.deadlinesKey,
      book.holdKey(lease.id),
    ];
    const args = [
      limiter.timeArg(now),
      lease.id,
      lease.spent,
      lease.grown,
      lease.slots.length + lease.maybeSlots,
      lease.member,
      ...segmentArgs(lease),
      '',
      final ? '1' : '0',
    ];
    lease.reportedSpent = lease.spent;
    lease.reportedGrown = lease.grown;
    segmentReturned(lease);
    book.sendSettlement(CLOSE, keys, args, 10);
  }

  /**
   * A leased request is over: its slot and worst case go back to the lease, its cost leaves the hold
   * (in the turn's report), its token figures are corrected in the lease or, when its segment is over,
   * in Redis. Once per request.
   */
  function finish(
    r: Reservation,
    actual: number,
    t: Ticket,
    now: number,
    actualInput: number,
    actualOutput: number,
  ): void {
    if (r.settled) return;
    r.settled = true;
    const lease = (r as LeasedReservation).lease;
    lease.running--;
    lease.reserved -= r.amount;
    lease.spent += actual;
    lease.hold -= actual;
    if (lease.hold < lease.reserved) {
      // Cost more than its worst case: the hold grows back to what the running requests reserved.
      lease.grown += lease.reserved - lease.hold;
      lease.hold = lease.reserved;
    }
    const ticket = t as RedisTicket;
    if (!ticket.done) {
      if (ticket.slice === lease.slice && lease.state !== 'closed') {
        ticket.done = true;
        if (ticket.inputCharged >= 0) lease.input += ticket.inputCharged - Math.ceil(actualInput);
        if (ticket.outputCharged >= 0) lease.output += ticket.outputCharged - Math.ceil(actualOutput);
      } else {
        const step = limiter.finishStep(ticket, now, actualInput, actualOutput);
        if (step !== null) limiter.sendFinish(step);
      }
    }
    if (actual !== 0 && !lease.queued) {
      lease.queued = true;
      if (reports.length === 0) sendInCheckPhase(sendReports);
      reports.push(lease);
    }
    if (lease.state === 'ending' && lease.running === 0 && lease.taking === null) close(lease, now);
  }

  /** The turn's spend report: one script for every lease whose requests finished this turn. */
  function sendReports(): void {
    const list = reports;
    reports = [];
    let keys: string[] = [];
    let args: number[] = [];
    for (const lease of list) {
      lease.queued = false;
      if (lease.state === 'closed') continue;
      if (lease.spent === lease.reportedSpent && lease.grown === lease.reportedGrown) continue;
      keys.push(book.holdKey(lease.id));
      args.push(lease.spent, lease.grown);
      lease.reportedSpent = lease.spent;
      lease.reportedGrown = lease.grown;
      if (keys.length === REPORT_MAX) {
        book.sendSettlement(REPORT, keys, args);
        keys = [];
        args = [];
      }
    }
    if (keys.length > 0) book.sendSettlement(REPORT, keys, args);
  }

  /**
   * Ends segments whose slice is over (their unused parts go back while the slice is in the window)
   * and leases unused for idleMs (they give back all they hold).
   */
  function sweep(now: number = clock()): void {
    for (const lease of live) {
      if (lease.taking !== null) continue;
      if (lease.state === 'ending') {
        if (lease.running === 0) close(lease, now);
        continue;
      }
      if (lease.state !== 'open') continue;
      if (now - lease.lastUsed >= idleMs && lease.running === 0) end(lease, now);
      else if (lease.slice >= 0 && now >= lease.until && !lease.fresh) sendClose(lease, false, now);
    }
  }

  const timer = options.timer === false ? null : setInterval(() => sweep(), SWEEP_MS);
  timer?.unref();

  return {
    admit,
    finish,
    sweep,
    /** Ends every lease; those with requests running close when they are done (call after draining). */
    close(now: number = clock()): void {
      if (timer) clearInterval(timer);
      for (const lease of live) end(lease, now);
    },
    /** Leases not closed yet (tests). */
    liveCount: () => live.size,
  };
}

export type Leases = ReturnType<typeof createLeases>;

// By value when not the same objects: concurrent first lookups of a key, or a change elsewhere that
// renewed the key cache, give equal entries that must not end the lease (only a real change does).
function sameLimits(a: RateLimits, b: RateLimits): boolean {
  return (
    a === b ||
    (a.rpm === b.rpm &&
      a.concurrency === b.concurrency &&
      a.inputTpm === b.inputTpm &&
      a.outputTpm === b.outputTpm)
  );
}

function sameScopes(a: readonly ScopeLimits[], b: readonly ScopeLimits[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as ScopeLimits;
    const y = b[i] as ScopeLimits;
    if (x === y) continue;
    if (x.scope !== y.scope || x.id !== y.id) return false;
    for (const p of PERIODS) if (x.limits[p] !== y.limits[p]) return false;
  }
  return true;
}
