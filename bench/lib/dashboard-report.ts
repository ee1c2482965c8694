// The dashboard scenario's own results (it runs no load, so it has no proxy ratios): per database, how
// the installation was seeded, and per API call the cold and warm response times against the 200 ms
// target of issue 14, with the checks that the answers were right.
export const DASHBOARD_LIMIT_MS = 200;

export interface DashboardCall {
  /** What was asked, e.g. `usage by=day user=coder-001 (30 d)`. */
  readonly call: string;
  readonly path: string;
  /** The first call on a freshly started server, ms. */
  readonly coldMs: number;
  /** Of the warm calls that followed, ms. */
  readonly warmMedianMs: number;
  readonly warmMaxMs: number;
  readonly warmCalls: number;
  /** Cold and every warm call within DASHBOARD_LIMIT_MS. */
  readonly withinLimit: boolean;
  /** Rows in the answer (usage items; the overview's by_model series). */
  readonly items: number;
}

export interface DashboardDb {
  readonly db: 'sqlite' | 'postgres';
  readonly rows: number;
  readonly setupSeconds: number;
  readonly seedSeconds: number;
  readonly seedRowsPerSec: number;
  readonly dbSizeMb: number;
  readonly rollupRows: number;
  readonly calls: DashboardCall[];
  /** Answer checks that passed (failures are listed as problems). */
  readonly checks: string[];
  /** Why this database was not measured (e.g. PostgreSQL not answering), or null. */
  readonly skipped: string | null;
}

export interface DashboardResult {
  readonly limitMs: number;
  readonly databases: DashboardDb[];
}

function ms(v: number): string {
  return v < 100 ? v.toFixed(1) : v.toFixed(0);
}

export function renderDashboard(result: DashboardResult): string {
  const out: string[] = [`dashboard API calls (target: each ≤ ${result.limitMs} ms)`];
  for (const d of result.databases) {
    if (d.skipped) {
      out.push(`  ${d.db}: skipped — ${d.skipped}`);
      continue;
    }
    out.push(
      `  ${d.db}: ${d.rows.toLocaleString('en-US')} usage rows seeded in ${d.seedSeconds.toFixed(1)} s (${Math.round(d.seedRowsPerSec).toLocaleString('en-US')} rows/s; objects in ${d.setupSeconds.toFixed(1)} s), database ${d.dbSizeMb.toFixed(0)} MB, ${d.rollupRows.toLocaleString('en-US')} rollup rows`,
    );
  }
  out.push('');
  out.push(
    `| ${'db'.padEnd(8)} | ${'call'.padEnd(40)} | cold ms | warm p50 | warm max | ≤ ${result.limitMs} ms | rows |`,
  );
  out.push(`|:${'-'.repeat(9)}|:${'-'.repeat(41)}|--------:|---------:|---------:|--------:|-----:|`);
  for (const d of result.databases) {
    for (const c of d.calls) {
      out.push(
        `| ${d.db.padEnd(8)} | ${c.call.padEnd(40)} | ${ms(c.coldMs).padStart(7)} | ${ms(c.warmMedianMs).padStart(8)} | ${ms(c.warmMaxMs).padStart(8)} | ${(c.withinLimit ? 'yes' : 'NO').padStart(8)} | ${String(c.items).padStart(4)} |`,
      );
    }
  }
  for (const d of result.databases) {
    if (d.checks.length > 0) out.push(`  ${d.db} answers checked: ${d.checks.join('; ')}`);
  }
  return out.join('\n');
}
