// Realistic usage records for the bench's seeders (pure, apart from the random source): the shape of a
// row the gateway appends to the ledger, a model mix with list prices, a few errors, streams and prompt
// caching, random ids like the gateway's, and timestamps in time order with a working-hours/weekday
// shape. The records are written by the compiled ledger's own batch pieces, never by SQL of our own.
import { randomFillSync } from 'node:crypto';

/** One ledger row, as dist/usage's batch writer takes it (src/db/schema.ts, UsageRecordTable). */
export interface UsageRecord {
  id: string;
  at: number;
  endpoint: 'messages';
  key_id: string;
  user_id: string;
  team_id: string | null;
  service_user_id: string | null;
  credential_id: string | null;
  model: string | null;
  input_tokens: number;
  output_tokens: number;
  cache_write_5m_tokens: number;
  cache_write_1h_tokens: number;
  cache_read_tokens: number;
  web_search_requests: number;
  cost_micro: number;
  saved_micro: number;
  latency_ms: number;
  status: number;
  outcome: string;
  upstream_request_id: string | null;
  stream: number;
  partial: number;
  estimated: number;
  attempts: number;
}

/** Who a request is charged to. */
export interface Charged {
  readonly keyId: string;
  readonly userId: string;
  readonly teamId: string | null;
  readonly credentialId: string | null;
}

export interface Model {
  readonly id: string;
  readonly share: number;
  /** micro-USD per token (= USD per million tokens) */
  readonly input: number;
  readonly output: number;
}

export const MODELS: readonly Model[] = [
  { id: 'claude-haiku-4-5', share: 0.35, input: 1, output: 5 },
  { id: 'claude-sonnet-4-6', share: 0.45, input: 3, output: 15 },
  { id: 'claude-opus-4-5', share: 0.12, input: 5, output: 25 },
  { id: 'claude-sonnet-4-5', share: 0.08, input: 3, output: 15 },
];

export function pickModel(r: number, models: readonly Model[] = MODELS): Model {
  let acc = 0;
  for (const m of models) {
    acc += m.share;
    if (r < acc) return m;
  }
  return models[0] as Model;
}

export function int(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const pool = Buffer.alloc(65_536);
let poolAt = pool.length;

/** A random id like the gateway's (`req_` + 22 base-62 characters), from a pooled random buffer. */
export function randomId(prefix: string, length = 22): string {
  if (poolAt + length > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  let s = prefix;
  for (let i = 0; i < length; i++) s += ALPHABET[(pool[poolAt++] ?? 0) % 62];
  return s;
}

/** One Messages record at `at`, charged to `who`, with `model`'s list prices; 1 % to 2 % fail. */
export function usageRecord(at: number, who: Charged, model: Model, errorRate = 0.015): UsageRecord {
  const failed = Math.random() < errorRate;
  const stream = Math.random() < 0.6 ? 1 : 0;
  const input = failed ? 0 : int(20, 8_000);
  const output = failed ? 0 : int(5, 1_500);
  const cacheWrite = !failed && Math.random() < 0.1 ? int(1_024, 20_000) : 0;
  const cacheRead = !failed && Math.random() < 0.3 ? int(1_024, 50_000) : 0;
  const cost = Math.round(
    input * model.input +
      output * model.output +
      cacheWrite * model.input * 1.25 +
      cacheRead * model.input * 0.1,
  );
  return {
    id: randomId('req_'),
    at,
    endpoint: 'messages',
    key_id: who.keyId,
    user_id: who.userId,
    team_id: who.teamId,
    service_user_id: null,
    credential_id: who.credentialId,
    model: model.id,
    input_tokens: input,
    output_tokens: output,
    cache_write_5m_tokens: cacheWrite,
    cache_write_1h_tokens: 0,
    cache_read_tokens: cacheRead,
    web_search_requests: 0,
    cost_micro: cost,
    saved_micro: Math.round(cacheRead * model.input * 0.9),
    latency_ms: int(150, stream ? 30_000 : 8_000),
    status: failed ? (Math.random() < 0.5 ? 429 : 529) : 200,
    outcome: failed ? 'error' : 'ok',
    upstream_request_id: failed ? null : randomId('req_011C', 18),
    stream,
    partial: 0,
    estimated: 0,
    attempts: 1,
  };
}

const HOUR = 3_600_000;

/** How busy an hour (UTC) is: working hours on weekdays, a shoulder around them, quiet nights and weekends. */
export function hourWeight(hourStart: number): number {
  const d = new Date(hourStart);
  const h = d.getUTCHours();
  const weekend = d.getUTCDay() === 0 || d.getUTCDay() === 6;
  const shape = h >= 9 && h < 18 ? 1 : (h >= 7 && h < 9) || (h >= 18 && h < 22) ? 0.3 : 0.03;
  return weekend ? shape * 0.15 : shape;
}

/**
 * `total` timestamps in [from, to), ascending, spread over the hours by `hourWeight` (each hour gets
 * its exact share, rounded so the counts add up to `total`), uniformly within an hour.
 */
export function* timestamps(total: number, from: number, to: number): Generator<number> {
  const hours: Array<{ start: number; end: number; weight: number }> = [];
  let sum = 0;
  for (let start = from - (from % HOUR); start < to; start += HOUR) {
    const lo = Math.max(start, from);
    const hi = Math.min(start + HOUR, to);
    const weight = hourWeight(start) * ((hi - lo) / HOUR);
    hours.push({ start: lo, end: hi, weight });
    sum += weight;
  }
  let cumulative = 0;
  let emitted = 0;
  for (const hour of hours) {
    cumulative += hour.weight;
    const upTo = Math.round((total * cumulative) / sum);
    const n = upTo - emitted;
    emitted = upTo;
    const ats = new Float64Array(n);
    for (let i = 0; i < n; i++) ats[i] = hour.start + Math.floor(Math.random() * (hour.end - hour.start));
    ats.sort();
    for (const at of ats) yield at;
  }
}
