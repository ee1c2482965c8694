// The one observation point of the gateway: it calls the store synchronously when an upstream call
// leaves its usage record and when a request ends (answered or refused). The store keeps cumulative
// totals in a bounded set of series; GET /metrics (prometheus.ts) and the OTLP push (otlp.ts) both read
// them when they collect, so a request costs a few map reads and additions whatever is exported.
import type { GatewayError } from '../gateway/anthropic-errors.js';
import type { SubjectInfo } from '../gateway/key-cache.js';
import type { UsageRecord } from '../usage/ledger.js';
import {
  COMMIT_BUCKETS,
  GENAI_DURATION_BUCKETS,
  GENAI_TOKEN_BUCKETS,
  NONE,
  OTHER,
  OVERHEAD_BUCKETS,
  UPSTREAM_BUCKETS,
} from './names.js';

export type MetricsEndpoint = 'messages' | 'count_tokens' | 'models';
/** Why Tollgate refused a request itself (the upstream never saw it). */
export type RefusalKind = 'auth' | 'rate_limit' | 'budget' | 'policy' | 'invalid' | 'overload';

/** What the gateway tells the metrics, synchronously, allocation-light, never awaited. */
export interface GatewayObserver {
  /** Every usage record, as the gateway appends it to the ledger (every upstream call). */
  call(subject: SubjectInfo, record: UsageRecord): void;
  /**
   * A request ended with `status` sent to the client. `totalMs` is the whole request in Tollgate,
   * `upstreamMs` the part spent on the upstream (0 when it never went there); the difference is the
   * gateway's overhead. `refusal` says why Tollgate refused it, or null.
   */
  end(
    endpoint: MetricsEndpoint,
    status: number,
    subject: SubjectInfo | null,
    model: string | null,
    totalMs: number,
    upstreamMs: number,
    refusal: RefusalKind | null,
  ): void;
}

/** Observes nothing: the gateway's default when no store is given (tests of other parts). */
export const NO_OBSERVER: GatewayObserver = { call() {}, end() {} };

/** Label values of one kind (users, teams, models): the first `max` distinct ones, then OTHER. */
export class LabelCap {
  private readonly seen = new Set<string>();
  /** Observations whose value was folded into OTHER. */
  overflowed = 0;
  constructor(readonly max: number) {}
  label(raw: string): string {
    if (this.seen.has(raw)) return raw;
    if (this.seen.size < this.max) {
      this.seen.add(raw);
      return raw;
    }
    this.overflowed++;
    return OTHER;
  }
  get size(): number {
    return this.seen.size;
  }
}

export interface Series {
  readonly labels: readonly string[];
  readonly values: Float64Array;
}

const SEP = '\u0001';

/** Counters under one set of label names; at most `maxSeries`, then one all-OTHER series. */
export class CounterFamily {
  readonly series = new Map<string, Series>();
  constructor(
    readonly labelNames: readonly string[],
    readonly width: number,
    private readonly maxSeries: number,
  ) {}
  at(key: string, a: string, b = '', c = '', d = '', e = ''): Float64Array {
    const found = this.series.get(key);
    if (found) return found.values;
    if (this.series.size >= this.maxSeries) return this.overflow();
    const labels = [a, b, c, d, e].slice(0, this.labelNames.length);
    const values = new Float64Array(this.width);
    this.series.set(key, { labels, values });
    return values;
  }
  private overflow(): Float64Array {
    const key = SEP;
    let s = this.series.get(key);
    if (!s) {
      s = { labels: this.labelNames.map(() => OTHER), values: new Float64Array(this.width) };
      this.series.set(key, s);
    }
    return s.values;
  }
}

/**
 * A histogram's counts per bucket (not cumulative: the last is above the highest bound), then its sum
 * and count, in one array.
 */
export class HistogramSeries {
  readonly data: Float64Array;
  constructor(
    readonly labels: readonly string[],
    readonly bounds: readonly number[],
  ) {
    this.data = new Float64Array(bounds.length + 3);
  }
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > (b[i] as number)) i++;
    const d = this.data;
    d[i] = (d[i] as number) + 1;
    d[b.length + 1] = (d[b.length + 1] as number) + v;
    d[b.length + 2] = (d[b.length + 2] as number) + 1;
  }
  get sum(): number {
    return this.data[this.bounds.length + 1] as number;
  }
  get count(): number {
    return this.data[this.bounds.length + 2] as number;
  }
}

export class HistogramFamily {
  readonly series = new Map<string, HistogramSeries>();
  constructor(
    readonly labelNames: readonly string[],
    readonly bounds: readonly number[],
    private readonly maxSeries: number,
  ) {}
  at(key: string, a: string, b = ''): HistogramSeries {
    let s = this.series.get(key);
    if (s) return s;
    if (this.series.size >= this.maxSeries) return this.at(SEP, OTHER, OTHER);
    s = new HistogramSeries([a, b].slice(0, this.labelNames.length), this.bounds);
    this.series.set(key, s);
    return s;
  }
}

/** Columns of a usage series. */
export const USAGE = {
  input: 0,
  output: 1,
  cacheRead: 2,
  cacheWrite5m: 3,
  cacheWrite1h: 4,
  costMicro: 5,
  /** What caching saved, from the records where it saved (saved_micro > 0). */
  savedMicro: 6,
  records: 7,
  /** What caching cost extra, from the records where writes cost more than reads saved (saved_micro < 0). */
  extraMicro: 8,
} as const;

export interface StoreOptions {
  /** Distinct users with a label of their own (metrics.max_user_labels); the rest are OTHER. */
  readonly maxUsers: number;
  readonly maxTeams?: number;
  readonly maxModels?: number;
}

/** Upstream failures without an HTTP status, by the outcome the attempt recorded. */
const NO_STATUS_ERRORS = new Set(['connect_failed', 'timeout', 'connection_lost']);
const ENDPOINTS: readonly MetricsEndpoint[] = ['messages', 'count_tokens', 'models'];
const MODELS_PER_SUBJECT = 32;

function endpointIndex(e: MetricsEndpoint | string): number {
  return e === 'messages' ? 0 : e === 'count_tokens' ? 1 : 2;
}

/** A model's series for one subject's labels, found once and kept. */
interface ModelSlot {
  /** The model's label (capped). */
  readonly model: string;
  readonly team: string;
  readonly user: string;
  /** Made on the first usage record (a refused request's slot never has one). */
  usage: Float64Array | null;
  tokensIn: HistogramSeries | null;
  tokensOut: HistogramSeries | null;
  /** Request counters per endpoint (endpointIndex), by status. */
  readonly requests: readonly Map<number, Float64Array>[];
  /** gen_ai.client.operation.duration by failed status (0: success). */
  readonly durations: Map<number, HistogramSeries>;
}

interface SubjectSlot {
  readonly team: string;
  readonly user: string;
  /** By the model string the request named. */
  readonly models: Map<string, ModelSlot>;
  /** Refusal counters per endpoint, by kind. */
  readonly refusals: readonly Map<RefusalKind, Float64Array>[];
  noModel: ModelSlot | null;
}
const MAX_SERIES = 20_000;

export function createMetricsStore(options: StoreOptions) {
  const users = new LabelCap(options.maxUsers);
  const teams = new LabelCap(options.maxTeams ?? 1000);
  const models = new LabelCap(options.maxModels ?? 200);
  const requests = new CounterFamily(['endpoint', 'status', 'model', 'team', 'user'], 1, MAX_SERIES);
  const refusals = new CounterFamily(['endpoint', 'kind', 'team'], 1, MAX_SERIES);
  const usage = new CounterFamily(['model', 'team', 'user'], 9, MAX_SERIES);
  const upstreamErrors = new CounterFamily(['endpoint', 'status'], 1, MAX_SERIES);
  const overhead = new HistogramFamily(['endpoint'], OVERHEAD_BUCKETS, 3);
  const upstream = new HistogramFamily(['endpoint'], UPSTREAM_BUCKETS, 3);
  const genaiTokens = new HistogramFamily(['model', 'token_type'], GENAI_TOKEN_BUCKETS, MAX_SERIES);
  const genaiDuration = new HistogramFamily(['model', 'error_type'], GENAI_DURATION_BUCKETS, MAX_SERIES);
  const ledgerCommit = new HistogramSeries([], COMMIT_BUCKETS);
  // Per endpoint (endpointIndex order): the histograms, and upstream errors by status.
  const overheadOf = ENDPOINTS.map((e) => overhead.at(e, e));
  const upstreamOf = ENDPOINTS.map((e) => upstream.at(e, e));
  const upstreamErrorsOf = ENDPOINTS.map(() => new Map<string | number, Float64Array>());
  /** The subjects whose user has a label of its own, by user id: their budgets are reported. */
  const subjects = new Map<string, SubjectInfo>();
  /** A subject of each labelled team, by team id (for the team's budget limits). */
  const teamSubjects = new Map<string, SubjectInfo>();
  /** The last subject seen (for the org's limits, which every subject carries). */
  const latest: { subject: SubjectInfo | null } = { subject: null };
  const startedAt = Date.now();

  const teamOf = (s: SubjectInfo) => (s.teamName === null ? NONE : teams.label(s.teamName));

  // The hot path reads series through slots cached per subject object (the key cache shares one per
  // user until a change replaces it) and per model: a request costs map reads by a number or by a
  // string it already has, never a label key built from strings (one such key cost ~0.5 µs).
  const slots = new WeakMap<SubjectInfo, SubjectSlot>();
  const anonymous = newSubjectSlot(NONE, NONE);

  function newSubjectSlot(team: string, user: string): SubjectSlot {
    return { team, user, models: new Map(), refusals: [new Map(), new Map(), new Map()], noModel: null };
  }

  function subjectSlot(subject: SubjectInfo | null): SubjectSlot {
    if (subject === null) return anonymous;
    let slot = slots.get(subject);
    if (slot === undefined) {
      slot = newSubjectSlot(teamOf(subject), users.label(subject.userName));
      slots.set(subject, slot);
    }
    return slot;
  }

  function newModelSlot(slot: SubjectSlot, model: string): ModelSlot {
    return {
      model,
      team: slot.team,
      user: slot.user,
      usage: null,
      tokensIn: null,
      tokensOut: null,
      requests: [new Map(), new Map(), new Map()],
      durations: new Map(),
    };
  }

  function modelSlot(slot: SubjectSlot, raw: string | null): ModelSlot {
    if (raw === null) {
      slot.noModel ??= newModelSlot(slot, NONE);
      return slot.noModel;
    }
    let m = slot.models.get(raw);
    if (m === undefined) {
      m = newModelSlot(slot, models.label(raw));
      // Bounded: past this many model strings per subject they are looked up again each time.
      if (slot.models.size < MODELS_PER_SUBJECT) slot.models.set(raw, m);
    }
    return m;
  }

  const observer: GatewayObserver = {
    call(subject, r) {
      const m = modelSlot(subjectSlot(subject), r.model);
      m.usage ??= usage.at(m.model + SEP + m.team + SEP + m.user, m.model, m.team, m.user);
      const u = m.usage;
      u[0] = (u[0] as number) + r.input_tokens;
      u[1] = (u[1] as number) + r.output_tokens;
      u[2] = (u[2] as number) + r.cache_read_tokens;
      u[3] = (u[3] as number) + r.cache_write_5m_tokens;
      u[4] = (u[4] as number) + r.cache_write_1h_tokens;
      u[5] = (u[5] as number) + r.cost_micro;
      // A counter only grows: a record's net saving goes to one of two columns by its sign.
      if (r.saved_micro > 0) u[6] = (u[6] as number) + r.saved_micro;
      else if (r.saved_micro < 0) u[8] = (u[8] as number) - r.saved_micro;
      u[7] = (u[7] as number) + 1;
      if (r.status >= 400 || (r.status === 0 && NO_STATUS_ERRORS.has(r.outcome))) {
        const key = r.status === 0 ? r.outcome : r.status;
        const byStatus = upstreamErrorsOf[endpointIndex(r.endpoint)] as Map<string | number, Float64Array>;
        let e = byStatus.get(key);
        if (e === undefined) {
          const label = String(key);
          e = upstreamErrors.at(r.endpoint + SEP + label, r.endpoint, label);
          byStatus.set(key, e);
        }
        e[0] = (e[0] as number) + 1;
      }
      if (r.endpoint === 'messages' && r.status >= 200 && r.status < 300) {
        // The conventions count every input token, cached or not, as input.
        m.tokensIn ??= genaiTokens.at(`${m.model}${SEP}input`, m.model, 'input');
        m.tokensOut ??= genaiTokens.at(`${m.model}${SEP}output`, m.model, 'output');
        m.tokensIn.observe(
          r.input_tokens + r.cache_read_tokens + r.cache_write_5m_tokens + r.cache_write_1h_tokens,
        );
        m.tokensOut.observe(r.output_tokens);
      }
    },
    end(endpoint, status, subject, modelId, totalMs, upstreamMs, refusal) {
      const slot = subjectSlot(subject);
      const m = modelSlot(slot, modelId);
      const e = endpointIndex(endpoint);
      const byStatus = m.requests[e] as Map<number, Float64Array>;
      let c = byStatus.get(status);
      if (c === undefined) {
        const st = String(status);
        c = requests.at(
          endpoint + SEP + st + SEP + m.model + SEP + slot.team + SEP + slot.user,
          endpoint,
          st,
          m.model,
          slot.team,
          slot.user,
        );
        byStatus.set(status, c);
      }
      c[0] = (c[0] as number) + 1;
      if (refusal !== null) {
        const byKind = slot.refusals[e] as Map<RefusalKind, Float64Array>;
        let f = byKind.get(refusal);
        if (f === undefined) {
          f = refusals.at(endpoint + SEP + refusal + SEP + slot.team, endpoint, refusal, slot.team);
          byKind.set(refusal, f);
        }
        f[0] = (f[0] as number) + 1;
      }
      const up = Math.max(upstreamMs, 0);
      (overheadOf[e] as HistogramSeries).observe(Math.max(0, totalMs - up) / 1000);
      if (up > 0) {
        (upstreamOf[e] as HistogramSeries).observe(up / 1000);
        if (e === 0) {
          const failed = status >= 400 ? status : 0;
          let d = m.durations.get(failed);
          if (d === undefined) {
            const error = failed === 0 ? '' : String(failed);
            d = genaiDuration.at(m.model + SEP + error, m.model, error);
            m.durations.set(failed, d);
          }
          d.observe(up / 1000);
        }
      }
      if (subject !== null) {
        // What the budget gauges read at scrape time: the latest limits of labelled users and teams.
        if (slot.user !== OTHER && subjects.get(subject.userId) !== subject) {
          if (subjects.has(subject.userId) || subjects.size < options.maxUsers)
            subjects.set(subject.userId, subject);
        }
        const teamId = subject.teamId;
        if (teamId !== null && slot.team !== OTHER && teamSubjects.get(teamId) !== subject) {
          if (teamSubjects.has(teamId) || teamSubjects.size < teams.max) teamSubjects.set(teamId, subject);
        }
        latest.subject = subject;
      }
    },
  };

  return {
    observer,
    startedAt,
    users,
    requests,
    refusals,
    usage,
    upstreamErrors,
    overhead,
    upstream,
    genaiTokens,
    genaiDuration,
    ledgerCommit,
    subjects,
    teamSubjects,
    latest,
    /** One ledger transaction of `ms` milliseconds (the ledger's onCommit). */
    commit(ms: number): void {
      ledgerCommit.observe(ms / 1000);
    },
  };
}

export type MetricsStore = ReturnType<typeof createMetricsStore>;

/** The refusal kind of a gateway error Tollgate answered itself. */
export function refusalKind(e: GatewayError): RefusalKind {
  if (e.status === 401) return 'auth';
  if (e.details?.error_code === 'enforced_spend_limit_reached') return 'budget';
  if (e.type === 'rate_limit_error') return 'rate_limit';
  if (e.status === 503 || e.type === 'overloaded_error') return 'overload';
  if (e.status === 403) return 'policy';
  return 'invalid';
}
