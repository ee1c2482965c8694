// In-process costs of the hot path's parts, for the bars of ../shared/docs/performance.md that a load
// generator cannot isolate: cached key verifications per second, admission (policy, rate limits, four
// budget reservations), the SSE usage tap per streamed answer, and usage-ledger records per second with
// group commit. `npm run bench:micro` (after `npm run build`); nothing here is asserted, only printed.
//
// The installation is a real one, made through the CLI in a temporary directory (bench/lib/tollgate.ts),
// and the parts are the compiled program's own modules (dist/), loaded as `node bin/tollgate.js` would.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UsageRecordTable } from '../src/db/schema.js';
import { distFunction as fn } from './lib/dist.js';
import { createHome } from './lib/tollgate.js';
import { benchRecord } from './lib/usage-record.js';

interface Gateway {
  deps: {
    budgets: { settle(reservation: unknown, cost: number): void };
    limiter: { finish(ticket: unknown, now: number, input: number, output: number): void };
    ledger: { append(record: UsageRecordTable): Promise<void>; close(): Promise<void> };
  };
}
type Admit = (
  deps: Gateway['deps'],
  caller: unknown,
  raw: Buffer,
  headers: Record<string, string>,
  now: number,
) => Promise<{ ok: boolean; value?: { reservation: unknown; ticket: unknown } }>;
type Authenticate = (
  deps: Gateway['deps'],
  headers: Record<string, string>,
  now: number,
  scope: string,
) => Promise<{ ok: boolean; value?: unknown }>;

/** Best of `rounds` timings of `n` calls, in µs per call (the best: the neighbours only ever add). */
async function best(n: number, rounds: number, body: () => unknown): Promise<number> {
  let min = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await body();
    min = Math.min(min, ((performance.now() - t0) * 1000) / n);
  }
  return min;
}

function sseEvent(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

const dir = mkdtempSync(join(tmpdir(), 'tollgate-micro-'));
try {
  // Nothing is sent upstream here: the URL only has to be well-formed.
  const home = await createHome(dir, 'micro', 'http://127.0.0.1:9');
  Object.assign(process.env, home.env);
  const loadConfig = await fn<(i: { env: NodeJS.ProcessEnv; cwd: string }) => Promise<unknown>>(
    'config/load.js',
    'loadConfig',
  );
  const openInstallation = await fn<(c: unknown) => Promise<{ close(): Promise<void> }>>(
    'install/installation.js',
    'openInstallation',
  );
  const createGateway = await fn<(ctx: unknown, config: unknown) => Gateway>(
    'gateway/gateway.js',
    'createGateway',
  );
  const authenticate = await fn<Authenticate>('gateway/admission.js', 'authenticate');
  const admitMessage = await fn<Admit>('gateway/admission.js', 'admitMessage');
  const createUsageTap = await fn<() => { push(b: Buffer): void; result(): { deltas: number } }>(
    'gateway/sse/usage-tap.js',
    'createUsageTap',
  );

  const config = await loadConfig({ env: process.env, cwd: dir });
  const installation = await openInstallation(config);
  const gateway = createGateway({ installation, clock: Date.now }, config);
  const { deps } = gateway;
  const headers = { 'x-api-key': home.key, 'anthropic-version': '2023-06-01' };
  const raw = Buffer.from(
    JSON.stringify({
      model: 'claude-haiku-4-5',
      max_tokens: 50,
      messages: [{ role: 'user', content: 'Hello' }],
    }),
  );
  const rows: Array<[string, string]> = [];

  // 1. Cached key verification (shape, lookup, status, expiry, scope).
  const first = await authenticate(deps, headers, Date.now(), 'inference');
  if (!first.ok) throw new Error('the bench key does not authenticate');
  const verifyUs = await best(200_000, 5, () => authenticate(deps, headers, Date.now(), 'inference'));
  rows.push([
    'key verification, cached',
    `${(1e6 / verifyUs / 1000).toFixed(0)}k/s (${verifyUs.toFixed(2)} µs)`,
  ]);

  // 2. Admission after authentication: request slot, JSON parse (nesting, duplicate keys), policy, worst case, rate limits, 4 budget scopes.
  const caller = first.value;
  const admitUs = await best(50_000, 5, async () => {
    const now = Date.now();
    const admitted = await admitMessage(deps, caller, raw, headers, now);
    if (!admitted.ok || !admitted.value) throw new Error('admission refused the bench request');
    deps.budgets.settle(admitted.value.reservation, 0);
    deps.limiter.finish(admitted.value.ticket, now, 0, 0);
  });
  rows.push(['parse + admit + settle', `${admitUs.toFixed(2)} µs per request`]);

  // 3. The SSE usage tap over a 200-delta answer arriving in one chunk (the wrk scenarios' shape).
  const deltas = Array.from({ length: 200 }, () =>
    sseEvent('content_block_delta', {
      type: 'content_block_delta',
      index: 0,
      delta: { type: 'text_delta', text: 'tok ' },
    }),
  ).join('');
  const stream = Buffer.from(
    sseEvent('message_start', {
      type: 'message_start',
      message: { id: 'msg_micro', model: 'claude-haiku-4-5', usage: { input_tokens: 9, output_tokens: 1 } },
    }) +
      deltas +
      sseEvent('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: 'end_turn' },
        usage: { output_tokens: 200 },
      }) +
      sseEvent('message_stop', { type: 'message_stop' }),
  );
  const tapUs = await best(20_000, 5, () => {
    const tap = createUsageTap();
    tap.push(stream);
    if (tap.result().deltas !== 200) throw new Error('the tap miscounted');
  });
  rows.push([
    'SSE usage tap, 200-delta answer',
    `${tapUs.toFixed(1)} µs (${((tapUs * 1000) / 200).toFixed(0)} ns per event)`,
  ]);

  // 4. The ledger: records made durable per second, with `group` appends waiting in the same turn.
  let n = 0;
  const record = () => benchRecord(`req_micro_${n++}`, { key_id: home.keyId });
  for (const group of [1, 8, 64]) {
    const perRecordUs =
      (await best(Math.max(1, Math.floor(20_000 / group)), 3, () =>
        Promise.all(Array.from({ length: group }, () => deps.ledger.append(record()))),
      )) / group;
    rows.push([
      `ledger, ${group} record(s) per commit`,
      `${(1e6 / perRecordUs / 1000).toFixed(1)}k records/s (${perRecordUs.toFixed(1)} µs each)`,
    ]);
  }

  await deps.ledger.close();
  await installation.close();
  const width = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(
    `in-process costs (node ${process.version}; best of several rounds)\n${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')}\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
