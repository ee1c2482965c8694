// Usage explorer: filter by user, team, key, model, credential and dates, group by any of them or by
// day, as a table and a chart, and export exactly the rows shown as CSV. The filters live in the URL
// (a plain GET form), so a view can be bookmarked or shared; none of them is a secret.
import { get, query } from '../api.js';
import { count, tokens, usd } from '../format.js';
import type { SignedInProps } from '../routes.js';
import { BarChart } from '../ui/chart.js';
import { ErrorNote, Field, Loading, Page, Table, useLoad } from '../ui/kit.js';

const GROUPS = ['day', 'model', 'user', 'team', 'key', 'credential'] as const;
type Group = (typeof GROUPS)[number];
const GROUP_LABEL: Record<Group, string> = {
  day: 'Day',
  model: 'Model',
  user: 'User',
  team: 'Team',
  key: 'Key',
  credential: 'Credential',
};

export interface UsageRow {
  requests: number;
  errors: number;
  input_tokens: number;
  output_tokens: number;
  cache_write_5m_tokens: number;
  cache_write_1h_tokens: number;
  cache_read_tokens: number;
  web_search_requests: number;
  cost_micro_usd: number;
  cost_usd: string;
  saved_micro_usd: number;
  estimated_requests: number;
  [group: string]: string | number | null | undefined;
}

interface UsagePage {
  items: UsageRow[];
  timezone?: string;
}

interface Named {
  id: string;
  name: string | null;
}

interface Choices {
  users: Named[];
  teams: Named[];
  keys: Array<Named & { user?: string }>;
  credentials: Named[];
}

interface Filters {
  by: Group;
  user: string;
  team: string;
  key: string;
  model: string;
  credential: string;
  from: string;
  to: string;
}

function readFilters(search: string, zone: string): Filters {
  const p = new URLSearchParams(search);
  const by = p.get('by');
  // Today as the reports count days (usage.timezone), and the 29 days before it.
  const today = dayIn(new Date(), zone);
  return {
    by: GROUPS.includes(by as Group) ? (by as Group) : 'day',
    user: p.get('user') ?? '',
    team: p.get('team') ?? '',
    key: p.get('key') ?? '',
    model: p.get('model') ?? '',
    credential: p.get('credential') ?? '',
    from: validDate(p.get('from')) ?? addDays(today, -29),
    to: validDate(p.get('to')) ?? today,
  };
}

/** YYYY-MM-DD of `date` in the zone. */
function dayIn(date: Date, zone: string): string {
  try {
    return new Intl.DateTimeFormat('en-CA', {
      timeZone: zone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
    }).format(date);
  } catch {
    return isoDay(date);
  }
}

function addDays(day: string, n: number): string {
  return isoDay(new Date(Date.parse(`${day}T00:00:00Z`) + n * 86_400_000));
}

function validDate(text: string | null): string | null {
  return text && /^\d{4}-\d{2}-\d{2}$/.test(text) ? text : null;
}

function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** The day after YYYY-MM-DD (the API's `until` is exclusive; the form's "to" is inclusive). */
export function nextDay(day: string): string {
  return addDays(day, 1);
}

async function loadChoices(): Promise<Choices> {
  const list = <T,>(path: string) => get<{ items: T[] }>(`${path}?limit=200`).then((p) => p.items);
  const [users, teams, keys, credentials] = await Promise.all([
    list<Named>('/admin/v1/users'),
    list<Named>('/admin/v1/teams'),
    list<Named & { user?: string }>('/admin/v1/keys'),
    list<Named>('/admin/v1/credentials'),
  ]);
  return { users, teams, keys, credentials };
}

export function UsagePage(_props: SignedInProps) {
  // The reporting timezone first: the default dates are days in it.
  const zone = useLoad(() => get<{ timezone: string }>('/admin/v1/whoami').then((w) => w.timezone), []);
  if (!zone.data)
    return (
      <Page title="Usage">
        <ErrorNote error={zone.error} />
        {zone.error ? null : <Loading what="usage" />}
      </Page>
    );
  return <Explorer zone={zone.data} />;
}

function Explorer(props: { zone: string }) {
  const filters = readFilters(location.search, props.zone);
  const apiQuery = query({
    by: filters.by,
    user: filters.user,
    team: filters.team,
    key: filters.key,
    model: filters.model,
    credential: filters.credential,
    since: filters.from,
    until: nextDay(filters.to),
  });
  const usage = useLoad(() => get<UsagePage>(`/admin/v1/usage${apiQuery}`), [apiQuery]);
  const choices = useLoad(loadChoices, []);
  const rows = usage.data?.items ?? [];
  const label = (row: UsageRow) => groupText(row, filters.by);
  // Days without usage are zero bars, so the chart's axis is the whole range; other groups: the top 20.
  const chartRows =
    filters.by === 'day'
      ? everyDay(rows, filters.from, filters.to)
      : [...rows].sort((a, b) => b.cost_micro_usd - a.cost_micro_usd).slice(0, 20);
  const zone = usage.data?.timezone ?? props.zone;
  return (
    <Page title="Usage">
      <form class="card explorer-filters" method="get" action="/usage" aria-label="Filters">
        <Field id="by" label="Group by">
          <select id="by" name="by" value={filters.by}>
            {GROUPS.map((g) => (
              <option key={g} value={g}>
                {GROUP_LABEL[g]}
              </option>
            ))}
          </select>
        </Field>
        <Choice id="user" label="User" value={filters.user} options={choices.data?.users} />
        <Choice id="team" label="Team" value={filters.team} options={choices.data?.teams} />
        <Choice id="key" label="Key" value={filters.key} options={choices.data?.keys} />
        <Choice
          id="credential"
          label="Credential"
          value={filters.credential}
          options={choices.data?.credentials}
        />
        <Field id="model" label="Model">
          <input id="model" name="model" value={filters.model} placeholder="any" />
        </Field>
        <Field id="from" label="From">
          <input id="from" name="from" type="date" value={filters.from} required />
        </Field>
        <Field id="to" label="To (inclusive)">
          <input id="to" name="to" type="date" value={filters.to} required />
        </Field>
        <button type="submit" class="primary">
          Show
        </button>
      </form>
      <ErrorNote error={usage.error ?? choices.error} />
      {usage.loading && !usage.data ? <Loading what="usage" /> : null}
      {usage.data ? (
        <>
          <p class="intro">
            {filters.from} to {filters.to}, days in <strong>{zone}</strong>: {count(sumOf(rows, 'requests'))}{' '}
            requests, {usd(sumOf(rows, 'cost_micro_usd'))}.{' '}
            <button type="button" onClick={() => downloadCsv(rows, filters)}>
              Export CSV
            </button>
          </p>
          {rows.length > 0 ? (
            <BarChart
              label={`Cost by ${GROUP_LABEL[filters.by].toLowerCase()}${filters.by === 'day' ? '' : ' (top 20)'}: ${usd(sumOf(rows, 'cost_micro_usd'))} in all`}
              labels={chartRows.map(label)}
              series={[{ label: 'Cost', values: chartRows.map((r) => r.cost_micro_usd) }]}
              money
              horizontal={filters.by !== 'day'}
            />
          ) : null}
          <Table
            caption={`Usage by ${GROUP_LABEL[filters.by].toLowerCase()}`}
            rowKey={(r) => `${label(r)}`}
            rows={rows}
            empty="No usage matches these filters."
            columns={[
              { label: GROUP_LABEL[filters.by], cell: label },
              { label: 'Requests', numeric: true, cell: (r) => count(r.requests) },
              { label: 'Errors', numeric: true, cell: (r) => count(r.errors) },
              { label: 'Input', numeric: true, cell: (r) => tokens(r.input_tokens) },
              { label: 'Output', numeric: true, cell: (r) => tokens(r.output_tokens) },
              {
                label: 'Cache writes',
                numeric: true,
                cell: (r) => tokens(r.cache_write_5m_tokens + r.cache_write_1h_tokens),
              },
              { label: 'Cache reads', numeric: true, cell: (r) => tokens(r.cache_read_tokens) },
              { label: 'Cost', numeric: true, cell: (r) => usd(r.cost_micro_usd) },
              { label: 'Saved', numeric: true, cell: (r) => usd(r.saved_micro_usd) },
            ]}
          />
        </>
      ) : null}
    </Page>
  );
}

function Choice(props: { id: string; label: string; value: string; options: Named[] | undefined }) {
  return (
    <Field id={props.id} label={props.label}>
      <select id={props.id} name={props.id} value={props.value}>
        <option value="">any</option>
        {/* The current filter stays selectable even before (or without) the list. */}
        {props.value && !props.options?.some((o) => o.id === props.value) ? (
          <option value={props.value}>{props.value}</option>
        ) : null}
        {(props.options ?? []).map((o) => (
          <option key={o.id} value={o.id}>
            {o.name ?? o.id}
          </option>
        ))}
      </select>
    </Field>
  );
}

/** The rows of each day from `from` to `to` (at most 400), a zero row where a day had no usage. */
function everyDay(rows: readonly UsageRow[], from: string, to: string): UsageRow[] {
  const byDay = new Map(rows.map((r) => [String(r.day), r]));
  const out: UsageRow[] = [];
  for (let day = from; day <= to && out.length < 400; day = nextDay(day))
    out.push(byDay.get(day) ?? { ...ZERO, day });
  return out;
}

const ZERO: UsageRow = {
  requests: 0,
  errors: 0,
  input_tokens: 0,
  output_tokens: 0,
  cache_write_5m_tokens: 0,
  cache_write_1h_tokens: 0,
  cache_read_tokens: 0,
  web_search_requests: 0,
  cost_micro_usd: 0,
  cost_usd: '0.00',
  saved_micro_usd: 0,
  estimated_requests: 0,
};

function groupText(row: UsageRow, by: Group): string {
  const value = row[by];
  return value === null || value === undefined ? `(no ${by})` : String(value);
}

function sumOf(rows: readonly UsageRow[], field: 'requests' | 'cost_micro_usd'): number {
  return rows.reduce((n, r) => n + r[field], 0);
}

const CSV_FIELDS = [
  'requests',
  'errors',
  'input_tokens',
  'output_tokens',
  'cache_write_5m_tokens',
  'cache_write_1h_tokens',
  'cache_read_tokens',
  'web_search_requests',
  'cost_usd',
  'cost_micro_usd',
  'saved_micro_usd',
  'estimated_requests',
] as const;

/** One CSV field: quoted when needed, and a leading = + - @ defused so a spreadsheet shows text. */
export function csvField(value: string | number | null | undefined): string {
  let text = value === null || value === undefined ? '' : String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function toCsv(rows: readonly UsageRow[], by: Group): string {
  const lines = [[by, ...CSV_FIELDS].join(',')];
  for (const r of rows)
    lines.push([csvField(r[by] ?? null), ...CSV_FIELDS.map((f) => csvField(r[f]))].join(','));
  return `${lines.join('\r\n')}\r\n`;
}

function downloadCsv(rows: readonly UsageRow[], f: Filters): void {
  const blob = new Blob([toCsv(rows, f.by)], { type: 'text/csv;charset=utf-8' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = `tollgate-usage-by-${f.by}-${f.from}-to-${f.to}.csv`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
