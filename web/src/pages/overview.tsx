// Overview: where the money goes, at a glance (GET /admin/v1/overview).
import { get } from '../api.js';
import { count, tokens, usd, when } from '../format.js';
import type { SignedInProps } from '../routes.js';
import { BarChart } from '../ui/chart.js';
import { ErrorNote, Loading, Page, Table, UsageBar, useLoad } from '../ui/kit.js';

interface Sums {
  requests: number;
  errors: number;
  input_tokens: number;
  output_tokens: number;
  cache_write_5m_tokens: number;
  cache_write_1h_tokens: number;
  cache_read_tokens: number;
  web_search_requests: number;
  cost_micro: number;
  saved_micro: number;
  estimated: number;
}

interface BudgetLine {
  scope: string;
  id: string;
  name: string | null;
  period: string;
  limit_micro_usd: number;
  spent_micro_usd: number;
  reserved_micro_usd: number;
}

interface Alert {
  kind: string;
  severity: 'warning' | 'critical';
  message: string;
  object: { type: string; id: string; name: string | null };
}

interface SentAlert {
  id: string;
  kind: string;
  raised_at: string;
  message: string;
  delivery: 'pending' | 'delivered' | 'failed' | 'off';
  attempts: number;
  last_error: string | null;
}

interface AlertLog {
  webhook: boolean;
  recent: SentAlert[];
  undelivered: SentAlert[];
  undelivered_count: number;
}

interface Overview {
  timezone: string;
  month: { start: string; spent_micro_usd: number; org_cap: BudgetLine | null; teams: BudgetLine[] };
  days: string[];
  by_model: Array<{ model: string | null; cost_micro_usd: number[] }>;
  top_users: Array<{ id: string; name: string | null } & Sums>;
  top_keys: Array<{ id: string; name: string | null; user: string | null } & Sums>;
  totals: Sums;
  alerts: Alert[];
  alert_log: AlertLog;
}

const ALERT_PAGE: Record<string, string> = {
  budget: '/users',
  credential: '/credentials',
  key_age: '/keys',
  credential_age: '/credentials',
};

export function OverviewPage(_props: SignedInProps) {
  const overview = useLoad(() => get<Overview>('/admin/v1/overview'), []);
  const o = overview.data;
  return (
    <Page title="Overview">
      <ErrorNote error={overview.error} />
      {!o ? (
        overview.error ? null : (
          <Loading what="the overview" />
        )
      ) : (
        <>
          <p class="intro">
            Days are cut in <strong>{o.timezone}</strong>; budgets count calendar months in UTC (this one
            began {o.month.start.slice(0, 10)}).
          </p>
          <Alerts alerts={o.alerts} />
          <AlertLogCard log={o.alert_log} />
          <div class="grid">
            <section class="card" aria-labelledby="mtd">
              <h2 id="mtd">Month to date</h2>
              <span class="stat">{usd(o.month.spent_micro_usd)}</span>
              {o.month.org_cap ? (
                <UsageBar
                  label="Organisation monthly cap"
                  spent={o.month.org_cap.spent_micro_usd}
                  reserved={o.month.org_cap.reserved_micro_usd}
                  limit={o.month.org_cap.limit_micro_usd}
                />
              ) : (
                <p class="muted">No organisation cap is set.</p>
              )}
            </section>
            <section class="card" aria-labelledby="requests">
              <h2 id="requests">Last 30 days</h2>
              <span class="stat">{usd(o.totals.cost_micro)}</span>
              <p>
                {count(o.totals.requests)} requests, {count(o.totals.errors)} errors
                {o.totals.estimated > 0 ? `, ${count(o.totals.estimated)} charged at a bound` : ''}
              </p>
            </section>
            <section class="card" aria-labelledby="savings">
              <h2 id="savings">Cache savings</h2>
              <span class="stat">{usd(o.totals.saved_micro)}</span>
              <p class="muted">what prompt caching saved in the last 30 days</p>
            </section>
          </div>
          <TokenTable totals={o.totals} />
          <h2 id="daily">Spend per day by model</h2>
          <BarChart
            label={`Spend per day by model over the last 30 days: ${usd(o.totals.cost_micro)} in all`}
            labels={o.days.map((d) => d.slice(5))}
            series={o.by_model.map((m) => ({ label: m.model ?? 'no model', values: m.cost_micro_usd }))}
            stacked
            money
          />
          <h2 id="teams">Team budgets</h2>
          {o.month.teams.length === 0 ? (
            <p class="muted">No team has a budget.</p>
          ) : (
            <Table
              caption="Team budgets, current period"
              rowKey={(t) => `${t.id}-${t.period}`}
              rows={o.month.teams}
              columns={[
                { label: 'Team', cell: (t) => t.name ?? t.id },
                { label: 'Period', cell: (t) => t.period },
                {
                  label: 'Usage',
                  cell: (t) => (
                    <UsageBar
                      label={`${t.name ?? t.id} ${t.period} budget`}
                      spent={t.spent_micro_usd}
                      reserved={t.reserved_micro_usd}
                      limit={t.limit_micro_usd}
                    />
                  ),
                },
              ]}
            />
          )}
          <div class="grid">
            <div>
              <h2 id="top-users">Top users</h2>
              <Table
                caption="Top users, last 30 days"
                rowKey={(u) => u.id}
                rows={o.top_users}
                empty="No usage in the last 30 days."
                columns={[
                  { label: 'User', cell: (u) => u.name ?? u.id },
                  { label: 'Requests', numeric: true, cell: (u) => count(u.requests) },
                  { label: 'Cost', numeric: true, cell: (u) => usd(u.cost_micro) },
                ]}
              />
            </div>
            <div>
              <h2 id="top-keys">Top keys</h2>
              <Table
                caption="Top gateway keys, last 30 days"
                rowKey={(k) => k.id}
                rows={o.top_keys}
                empty="No usage in the last 30 days."
                columns={[
                  { label: 'Key', cell: (k) => <span class="mono">{k.name ?? k.id}</span> },
                  { label: 'User', cell: (k) => k.user ?? '—' },
                  { label: 'Requests', numeric: true, cell: (k) => count(k.requests) },
                  { label: 'Cost', numeric: true, cell: (k) => usd(k.cost_micro) },
                ]}
              />
            </div>
          </div>
        </>
      )}
    </Page>
  );
}

function Alerts(props: { alerts: readonly Alert[] }) {
  return (
    <section class="card" aria-labelledby="alerts">
      <h2 id="alerts">Alerts</h2>
      {props.alerts.length === 0 ? (
        <p class="muted">Nothing needs attention.</p>
      ) : (
        <ul class="alerts">
          {props.alerts.map((a) => (
            <li key={`${a.kind}-${a.object.type}-${a.object.id}-${a.message}`}>
              <span class={`badge ${a.severity === 'critical' ? 'bad' : 'warn'}`}>{a.severity}</span>{' '}
              {a.message} <a href={ALERT_PAGE[a.kind] ?? '/'}>Open</a>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

const DELIVERY: Record<SentAlert['delivery'], { word: string; badge: string }> = {
  delivered: { word: 'delivered', badge: 'ok' },
  pending: { word: 'pending', badge: 'warn' },
  failed: { word: 'failed', badge: 'bad' },
  off: { word: 'not sent', badge: 'warn' },
};

/** Alerts raised (budget crossings, invalid credentials, ages) and whether the webhook received them. */
function AlertLogCard(props: { log: AlertLog }) {
  const log = props.log;
  const undelivered = log.undelivered.filter((u) => !log.recent.some((r) => r.id === u.id));
  return (
    <section class="card" aria-labelledby="alert-log">
      <h2 id="alert-log">Recent alerts</h2>
      <p class="muted">
        {log.webhook
          ? 'Each is sent once to the configured webhook.'
          : 'No webhook is configured (alerts.webhook_url): alerts are recorded here and in the audit log only.'}
        {log.undelivered_count > 0 ? ` Undelivered: ${count(log.undelivered_count)}.` : ''}
      </p>
      {log.recent.length === 0 ? (
        <p class="muted">No alert has been raised.</p>
      ) : (
        <ul class="alerts">
          {[...log.recent, ...undelivered].map((a) => (
            <li key={a.id}>
              <span class={`badge ${DELIVERY[a.delivery].badge}`}>{DELIVERY[a.delivery].word}</span>{' '}
              {a.message.replace(/^Tollgate: /, '')} <span class="muted">({when(a.raised_at)}</span>
              {a.last_error ? <span class="muted">; last attempt: {a.last_error}</span> : null}
              <span class="muted">)</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function TokenTable(props: { totals: Sums }) {
  const t = props.totals;
  const rows = [
    { kind: 'Input', n: t.input_tokens },
    { kind: 'Output', n: t.output_tokens },
    { kind: 'Cache writes (5 minutes)', n: t.cache_write_5m_tokens },
    { kind: 'Cache writes (1 hour)', n: t.cache_write_1h_tokens },
    { kind: 'Cache reads', n: t.cache_read_tokens },
    { kind: 'Web searches', n: t.web_search_requests },
  ];
  return (
    <Table
      caption="Tokens by kind, last 30 days"
      rowKey={(r) => r.kind}
      rows={rows}
      columns={[
        { label: 'Kind', cell: (r) => r.kind },
        { label: 'Count', numeric: true, cell: (r) => tokens(r.n) },
      ]}
    />
  );
}
