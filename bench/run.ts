// `npm run bench` — Tollgate against a minimal pass-through proxy and the fake upstream, side by side.
// `npm run bench:soak` — RSS of Tollgate under 64-connection load for 10 minutes, with its trend.
// bench/README.md says what is measured and how; `--help` lists the options.
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BenchContext } from './lib/context.js';
import { renderDashboard } from './lib/dashboard-report.js';
import { launcherNodeArgs } from './lib/launcher.js';
import { type Options, parseOptions, USAGE } from './lib/options.js';
import { installCleanup, stopAll } from './lib/procs.js';
import {
  addRatios,
  machine,
  renderMachine,
  renderScenarioLegend,
  renderTable,
  type ScenarioResult,
} from './lib/report.js';
import { formatDuration, log, ROOT } from './lib/util.js';
import { WRK_MISSING, wrkVersion } from './lib/wrk.js';
import { runScenario, SCENARIOS } from './scenarios.js';
import { runSoak } from './soak.js';

function commandLine(argv: readonly string[]): string {
  const quoted = argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`));
  const script = process.env.npm_lifecycle_event;
  if (script === 'bench') return ['npm run bench', ...(quoted.length ? ['--', ...quoted] : [])].join(' ');
  if (script === 'bench:soak') {
    const rest = quoted.filter((a, i) => !(i === 0 && a === '--soak'));
    return ['npm run bench:soak', ...(rest.length ? ['--', ...rest] : [])].join(' ');
  }
  return ['node dist/bench/bench/run.js', ...quoted].join(' ');
}

function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.ts')) {
      latest = Math.max(latest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
    }
  }
  return latest;
}

/** dist/ must hold a build of the current src/ (npm run bench builds first; a bare `node …run.js` may not). */
function checkBuild(): string | null {
  let built: number;
  try {
    built = statSync(join(ROOT, 'dist', 'cli', 'main.js')).mtimeMs;
  } catch {
    return 'dist/cli/main.js is missing: run `npm run build` first (npm run bench does it for you)';
  }
  if (newest(join(ROOT, 'src')) > built) {
    log('bench: warning: src/ has changed since dist/ was built; `npm run bench` rebuilds it');
  }
  return null;
}

function timeLimitMs(opts: Options, chosen: typeof SCENARIOS): number {
  const perRun = opts.warmupMs + opts.durationMs + 20_000;
  const measured = chosen.reduce(
    (ms, s) => ms + s.paths(opts) * opts.rounds * perRun + s.setupS(opts) * 3_000,
    0,
  );
  return measured + 5 * 60_000;
}

async function main(argv: readonly string[]): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(argv);
  } catch (error) {
    log(`bench: ${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (opts.list) {
    for (const s of SCENARIOS) process.stdout.write(`${s.name.padEnd(12)} ${s.title(opts)}\n`);
    return 0;
  }
  const chosen = opts.scenarios ? SCENARIOS.filter((s) => opts.scenarios?.includes(s.name)) : SCENARIOS;
  const unknown = (opts.scenarios ?? []).filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) {
    log(`bench: unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
    return 2;
  }
  // Only the load scenarios (and the soak) drive wrk; the dashboard scenario makes its own HTTP calls.
  const load = opts.soak || chosen.some((s) => s.load);
  const wrk = load ? wrkVersion() : 'wrk not used';
  if (!wrk) {
    log(`bench: ${WRK_MISSING}`);
    return 2;
  }
  const buildProblem = checkBuild();
  if (buildProblem) {
    log(`bench: ${buildProblem}`);
    return 2;
  }

  const tmp = mkdtempSync(join(tmpdir(), 'tollgate-bench-'));
  const ctx = new BenchContext(opts, tmp);
  const command = commandLine(argv);
  const m = machine(wrk);

  if (opts.soak) {
    installCleanup(opts.durationMs + 10 * 60_000);
    const code = await runSoak(ctx, m, command);
    await stopAll();
    finishTmp(ctx, code);
    return code;
  }

  const limit = timeLimitMs(opts, chosen);
  installCleanup(limit);
  log(
    `bench: ${chosen.length} scenario(s), ${formatDuration(opts.durationMs)} per run (+${formatDuration(Math.max(opts.warmupMs, 1))} warm-up), ${opts.rounds} round(s); time limit ${Math.ceil(limit / 60_000)} min; temp dir ${tmp}`,
  );
  log(renderMachine(m, command));

  const results: ScenarioResult[] = [];
  try {
    if (load) await ctx.startFakeAndProxy();
    for (const s of chosen) {
      const result = await runScenario(ctx, s);
      addRatios(result);
      results.push(result);
    }
  } catch (error) {
    ctx.problem(`run aborted: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    await ctx.stopShared().catch((error: unknown) => ctx.problem(`shared: cleanup failed: ${String(error)}`));
    await stopAll();
  }
  const metricsLine: string[] = [];
  if (ctx.metrics) {
    const m = ctx.metrics.summary();
    await ctx.metrics.close();
    metricsLine.push(
      `metrics on: ${m.payloads} OTLP payloads received (${(m.payloadBytes / 1024).toFixed(0)} KiB), ${m.scrapes} /metrics scrapes, ${m.scrapeFailures} failed`,
    );
    if (m.payloads === 0) ctx.problem('--metrics: the collector stub received no OTLP payload');
    if (m.scrapes === 0 || m.scrapeFailures > 0)
      ctx.problem(
        `--metrics: ${m.scrapeFailures} of ${m.scrapes + m.scrapeFailures} scrapes failed (${m.failureReasons.join('; ')})`,
      );
  }

  const text = [
    '',
    renderMachine(m, command, true),
    ...(load
      ? [
          `per run: ${formatDuration(opts.durationMs)} measured after ${opts.warmupMs > 0 ? formatDuration(opts.warmupMs) : 'no'} warm-up, wrk -t${opts.threads}, ${opts.rounds} round(s) (median); RSS = peak of the process under test during the run`,
        ]
      : []),
    `Tollgate runs as shipped: node ${[...launcherNodeArgs(ROOT), ...opts.nodeArgs].join(' ')} bin/tollgate.js serve`,
    ...metricsLine,
    'scenarios:',
    renderScenarioLegend(results),
    '',
    ...(results.some((s) => s.rows.length > 0) ? [renderTable(results), ''] : []),
    ...results.flatMap((s) => (s.dashboard ? [renderDashboard(s.dashboard), ''] : [])),
    ctx.problems.length === 0
      ? 'problems: none (every path verified; every Tollgate 2xx answer has its usage row; no non-2xx answers)'
      : `PROBLEMS (${ctx.problems.length}):\n${ctx.problems.map((p) => `  - ${p.replaceAll('\n', '\n    ')}`).join('\n')}`,
    '',
  ].join('\n');
  const json = `${JSON.stringify({ command, machine: m, options: opts, scenarios: results, problems: ctx.problems }, null, 2)}\n`;
  if (opts.out) {
    writeFileSync(opts.out, json);
    process.stdout.write(text);
    log(`bench: JSON written to ${opts.out}`);
  } else if (opts.json) {
    process.stderr.write(text);
    process.stdout.write(json);
  } else {
    process.stdout.write(text);
  }
  const code = ctx.problems.length === 0 ? 0 : 1;
  finishTmp(ctx, code);
  return code;
}

function finishTmp(ctx: BenchContext, code: number): void {
  if (ctx.opts.keep || code !== 0) {
    log(`bench: logs and Tollgate homes kept in ${ctx.tmp}`);
  } else {
    rmSync(ctx.tmp, { recursive: true, force: true });
  }
}

process.exitCode = await main(process.argv.slice(2));
// Timers of finished work (none should be left) must not keep the process alive.
process.exit();
