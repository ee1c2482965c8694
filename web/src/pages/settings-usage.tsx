// My settings: what remains of each budget that applies to the person, and their cost per day over
// the last 30 days as a chart beside a table with the same figures.
import { get } from '../api.js';
import { count, usd } from '../format.js';
import { BarChart } from '../ui/chart.js';
import { ErrorNote, Loading, Table, UsageBar, useLoad } from '../ui/kit.js';

interface Budget {
  scope: 'key' | 'user' | 'team' | 'org';
  period: 'day' | 'month' | 'total';
  remaining_usd: string;
  spent_usd?: string;
  limit_usd?: string;
  resets_at: string | null;
}

interface DayRow {
  day?: string | null;
  requests: number;
  cost_micro_usd: number;
}

const micro = (dollars: string): number => Math.round(Number(dollars) * 1_000_000);
const SCOPE: Record<Budget['scope'], string> = {
  key: 'This key',
  user: 'Me',
  team: 'My team',
  org: 'Organisation',
};

export function MyBudgets() {
  const me = useLoad(() => get<{ budgets: Budget[] }>('/api/v1/me'), []);
  return (
    <section aria-labelledby="my-budgets">
      <h2 id="my-budgets">My remaining budget</h2>
      <ErrorNote error={me.error} />
      {!me.data ? (
        me.loading ? (
          <Loading what="your budgets" />
        ) : null
      ) : me.data.budgets.length === 0 ? (
        <p class="muted">No budget applies to you.</p>
      ) : (
        <ul class="budgets">
          {me.data.budgets.map((b) => {
            const label = `${SCOPE[b.scope]}, per ${b.period === 'total' ? 'all time' : b.period}`;
            return (
              <li key={`${b.scope}-${b.period}`}>
                <strong>{label}</strong>
                {b.spent_usd !== undefined && b.limit_usd !== undefined ? (
                  <UsageBar label={label} spent={micro(b.spent_usd)} limit={micro(b.limit_usd)} />
                ) : (
                  <span class="usage-text"> {usd(micro(b.remaining_usd))} remaining</span>
                )}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}

export function MyUsage() {
  const usage = useLoad(() => get<{ items: DayRow[] }>('/api/v1/me/usage?by=day&since=30d'), []);
  const rows = usage.data?.items ?? [];
  return (
    <section aria-labelledby="my-usage">
      <h2 id="my-usage">My usage, last 30 days</h2>
      <ErrorNote error={usage.error} />
      {!usage.data ? (
        usage.loading ? (
          <Loading what="your usage" />
        ) : null
      ) : rows.length === 0 ? (
        <p class="muted">No requests in the last 30 days.</p>
      ) : (
        <>
          <BarChart
            label="My cost per day, last 30 days"
            labels={rows.map((r) => r.day ?? '')}
            series={[{ label: 'Cost', values: rows.map((r) => r.cost_micro_usd) }]}
            money
          />
          <Table
            caption="My cost per day"
            rows={rows}
            rowKey={(r) => r.day ?? ''}
            columns={[
              { label: 'Day', cell: (r) => r.day ?? '' },
              { label: 'Requests', cell: (r) => count(r.requests), numeric: true },
              { label: 'Cost', cell: (r) => usd(r.cost_micro_usd), numeric: true },
            ]}
          />
        </>
      )}
    </section>
  );
}
