// GET /metrics: the store's totals in Prometheus text format (prom-client), read when scraped, plus
// gauges computed at scrape time (budget utilisation, ledger queue). Nothing here runs per request.
import { Counter, Gauge, Histogram, type MetricValueWithName, Registry } from 'prom-client';
import type { Budgets } from '../budgets/budget-book.js';
import type { BudgetPeriod } from '../db/schema.js';
import { NONE, PROM, TOKEN_KINDS } from './names.js';
import { type CounterFamily, type HistogramSeries, type MetricsStore, USAGE } from './store.js';

export interface PrometheusSources {
  readonly store: MetricsStore;
  readonly ledger: () => { queued: number; committed: number };
  readonly budgets: Budgets;
  readonly orgId: string;
  readonly clock: () => number;
}

type Labels = Record<string, string>;

function labelsOf(names: readonly string[], values: readonly string[]): Labels {
  const out: Labels = {};
  names.forEach((n, i) => {
    out[n] = values[i] ?? '';
  });
  return out;
}

/** A counter that shows one column of a store family when scraped. */
function familyCounter(
  registry: Registry,
  name: string,
  help: string,
  family: CounterFamily,
  column: number,
  scale = 1,
): void {
  new Counter({
    name,
    help,
    labelNames: family.labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const s of family.series.values())
        this.inc(labelsOf(family.labelNames, s.labels), (s.values[column] as number) / scale);
    },
  });
}

/**
 * A histogram whose series are the store's: prom-client's registry formats it as any histogram of its
 * own (`getForPromString` is what the registry reads for the text format).
 */
class StoreHistogram extends Histogram<string> {
  constructor(
    registry: Registry,
    private readonly metricName: string,
    private readonly metricHelp: string,
    private readonly names: readonly string[],
    private readonly series: () => Iterable<HistogramSeries>,
  ) {
    super({ name: metricName, help: metricHelp, labelNames: [...names], registers: [registry] });
  }
  async getForPromString() {
    const values: (MetricValueWithName<string> & { sharedLabels: Labels })[] = [];
    const name = this.metricName;
    for (const s of this.series()) {
      const labels = labelsOf(this.names, s.labels);
      let acc = 0;
      s.bounds.forEach((bound, i) => {
        acc += s.data[i] as number;
        values.push({
          labels: { le: bound },
          sharedLabels: labels,
          value: acc,
          metricName: `${name}_bucket`,
        });
      });
      values.push({
        labels: { le: '+Inf' },
        sharedLabels: labels,
        value: s.count,
        metricName: `${name}_bucket`,
      });
      values.push({ labels: {}, sharedLabels: labels, value: s.sum, metricName: `${name}_sum` });
      values.push({ labels: {}, sharedLabels: labels, value: s.count, metricName: `${name}_count` });
    }
    return { name, help: this.metricHelp, type: 'histogram', values, aggregator: 'sum' };
  }
  // get() (the JSON form) is prom-client's own: it reads getForPromString and merges the labels.
}

const PERIODS: readonly BudgetPeriod[] = ['day', 'month', 'total'];

export function createPrometheus(sources: PrometheusSources) {
  const { store } = sources;
  const registry = new Registry();

  familyCounter(
    registry,
    PROM.requests,
    'Gateway requests by endpoint, answered status, model, team and user.',
    store.requests,
    0,
  );
  familyCounter(
    registry,
    PROM.refusals,
    'Requests Tollgate refused itself (auth, rate_limit, budget, policy, invalid, overload).',
    store.refusals,
    0,
  );
  familyCounter(
    registry,
    PROM.upstreamErrors,
    'Upstream calls that failed, by HTTP status or by what happened when none came.',
    store.upstreamErrors,
    0,
  );
  new Counter({
    name: PROM.tokens,
    help: 'Tokens recorded in the usage ledger, by kind, model, team and user.',
    labelNames: ['kind', 'model', 'team', 'user'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of store.usage.series.values()) {
        const [model = NONE, team = NONE, user = NONE] = s.labels;
        TOKEN_KINDS.forEach((kind, i) => {
          this.inc({ kind, model, team, user }, s.values[i] as number);
        });
      }
    },
  });
  familyCounter(
    registry,
    PROM.cost,
    'Cost recorded in the usage ledger (USD), by model, team and user.',
    store.usage,
    5,
    1_000_000,
  );
  familyCounter(
    registry,
    PROM.saved,
    'What prompt caching saved (USD) on the records where it saved, by model, team and user.',
    store.usage,
    USAGE.savedMicro,
    1_000_000,
  );
  familyCounter(
    registry,
    PROM.cacheExtra,
    'What prompt caching cost extra (USD) on the records where cache writes cost more than reads saved; net savings = saved − extra.',
    store.usage,
    USAGE.extraMicro,
    1_000_000,
  );
  new StoreHistogram(
    registry,
    PROM.overhead,
    "Tollgate's own time per request (total minus upstream), seconds.",
    ['endpoint'],
    () => store.overhead.series.values(),
  );
  new StoreHistogram(
    registry,
    PROM.upstream,
    'Time spent on the upstream per request (all attempts, to the last byte), seconds.',
    ['endpoint'],
    () => store.upstream.series.values(),
  );
  new StoreHistogram(registry, PROM.ledgerCommit, 'Usage ledger transaction time, seconds.', [], () => [
    store.ledgerCommit,
  ]);
  new Gauge({
    name: PROM.ledgerQueue,
    help: 'Usage records waiting for the next ledger commit.',
    registers: [registry],
    collect() {
      this.set(sources.ledger().queued);
    },
  });
  new Counter({
    name: PROM.ledgerCommitted,
    help: 'Usage records committed by the ledger since start.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sources.ledger().committed);
    },
  });
  new Gauge({
    name: PROM.userLabelsOverflow,
    help: 'Users folded into user="other" (metrics.max_user_labels reached), counted when the gateway first sees each (again after a change to keys, users or teams).',
    registers: [registry],
    collect() {
      this.set(store.users.overflowed);
    },
  });

  const budgetLabels = ['scope', 'name', 'period'];
  const utilisation = new Gauge({
    name: PROM.budgetUtilisation,
    help: 'Settled spend over the limit per budget scope and period (users with a label of their own, their teams, the org).',
    labelNames: budgetLabels,
    registers: [registry],
  });
  const spent = new Gauge({
    name: PROM.budgetSpent,
    help: 'Settled spend of the current period (USD).',
    labelNames: budgetLabels,
    registers: [registry],
  });
  const limit = new Gauge({
    name: PROM.budgetLimit,
    help: 'Budget limit of the period (USD).',
    labelNames: budgetLabels,
    registers: [registry],
  });

  /** Budget gauges from the book (in-process, no database read): scopes the gateway holds now. */
  function refreshBudgets(): void {
    utilisation.reset();
    spent.reset();
    limit.reset();
    const now = sources.clock();
    const done = new Set<string>();
    const add = (
      scope: 'user' | 'team' | 'org',
      id: string,
      name: string,
      limits: Partial<Record<BudgetPeriod, number>>,
    ) => {
      if (done.has(`${scope}:${id}`)) return;
      done.add(`${scope}:${id}`);
      for (const period of PERIODS) {
        const max = limits[period];
        if (max === undefined) continue;
        const at = sources.budgets.current(scope, id, period, now);
        if (at === null) continue;
        const labels = { scope, name, period };
        utilisation.set(labels, max > 0 ? at.spent / max : at.spent > 0 ? 1 : 0);
        spent.set(labels, at.spent / 1_000_000);
        limit.set(labels, max / 1_000_000);
      }
    };
    for (const subject of store.subjects.values())
      add('user', subject.userId, subject.userName, subject.userLimits);
    for (const [teamId, subject] of store.teamSubjects)
      add('team', teamId, subject.teamName ?? teamId, subject.teamLimits);
    const org = store.latest.subject;
    if (org !== null) add('org', sources.orgId, 'org', org.orgLimits);
  }

  return {
    contentType: registry.contentType,
    async text(): Promise<string> {
      refreshBudgets();
      return registry.metrics();
    },
  };
}

export type Prometheus = ReturnType<typeof createPrometheus>;
