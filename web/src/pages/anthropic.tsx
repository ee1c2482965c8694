// Anthropic's side of the bill (admin): the reconciliation of Tollgate's ledger with Anthropic's usage
// report per day × credential × model (from what the last sync imported; "Sync now" imports again),
// Anthropic's Claude Code analytics per coder beside their Tollgate spend, and the spend limits Tollgate
// mirrors to Anthropic (read from Anthropic on request, set with a confirmation). Everything goes
// through /admin/v1/anthropic/*, the operations `tollgate anthropic …` calls.
import type { TargetedSubmitEvent } from 'preact';
import { useState } from 'preact/hooks';
import { call, get, query } from '../api.js';
import { count, tokens, usd, when } from '../format.js';
import type { SignedInProps } from '../routes.js';
import {
  ConfirmButton,
  ErrorNote,
  Field,
  type Loaded,
  Loading,
  messageOf,
  Notice,
  Page,
  Table,
  useLoad,
} from '../ui/kit.js';

interface Figures {
  input_tokens: number;
  output_tokens: number;
  cache_write_5m_tokens: number;
  cache_write_1h_tokens: number;
  cache_read_tokens: number;
  cost_micro_usd: number | null;
}

interface Row {
  day: string;
  credential: string | null;
  api_key_id: string | null;
  api_key_name: string | null;
  model: string;
  tollgate: Figures;
  anthropic: Figures;
  drift_tokens: number;
  drift_micro_usd: number | null;
  flag: 'drift' | 'not_through_tollgate' | 'unpriced' | null;
}

interface Reconciliation {
  since: string;
  until: string;
  last_sync_at: string | null;
  rows: Row[];
  cost_report_micro_usd: number;
  priced_usage_micro_usd: number;
}

interface Synced extends Reconciliation {
  imported: { usage_rows: number; cost_rows: number; claude_code_rows: number | null };
}

export interface Activity {
  actor: string;
  actor_kind: 'user' | 'api_key';
  days: number;
  sessions: number;
  lines_added: number;
  lines_removed: number;
  commits: number;
  pull_requests: number;
  tool_accepted: number;
  tool_rejected: number;
  estimated_micro_usd: number;
  user: string | null;
  user_id: string | null;
  tollgate_micro_usd: number | null;
}

interface Limit {
  scope: { type: 'organization' } | { type: 'workspace'; workspace_id: string };
  team: string | null;
  anthropic_amount_cents: string | null;
  anthropic_limit_set: boolean;
  tollgate_amount_cents: string | null;
  difference_cents: number | null;
  action: 'create' | 'update' | 'none' | 'unmanaged';
}

type Range = { since?: string; until?: string };

const total = (f: Figures) =>
  f.input_tokens + f.output_tokens + f.cache_write_5m_tokens + f.cache_write_1h_tokens + f.cache_read_tokens;
const signed = (n: number, text: string) => (n > 0 ? `+${text}` : text);
const cents = (c: string | null) => (c === null ? 'no limit' : usd(Number(c) * 10_000));

/** The share of tool actions accepted, e.g. "83%" ("—" without any). */
export function acceptRate(a: Pick<Activity, 'tool_accepted' | 'tool_rejected'>): string {
  const all = a.tool_accepted + a.tool_rejected;
  return all === 0 ? '—' : `${Math.round((a.tool_accepted / all) * 100)}%`;
}

function FlagBadge(props: { row: Row }) {
  const { flag } = props.row;
  if (flag === null) return <span class="badge ok">matches</span>;
  if (flag === 'drift') return <span class="badge bad">drift</span>;
  if (flag === 'unpriced') return <span class="badge warn">no price</span>;
  return <span class="badge bad">not through Tollgate</span>;
}

function who(r: Row) {
  if (r.credential !== null) return r.credential;
  return (
    <>
      {r.api_key_name ?? 'unknown key'}
      <div class="muted">{r.api_key_id ?? 'no key id'}</div>
    </>
  );
}

export function AnthropicPage(_props: SignedInProps) {
  const [range, setRange] = useState<Range>({});
  const [synced, setSynced] = useState<string | null>(null);
  const recon = useLoad(
    () => get<Reconciliation>(`/admin/v1/anthropic/reconciliation${query(range)}`),
    [range.since, range.until],
  );
  const activity = useLoad(() => get<{ actors: Activity[] }>('/admin/v1/anthropic/claude-code'), []);

  function submit(event: TargetedSubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    const value = (name: string) => String(data.get(name) ?? '').trim() || undefined;
    const next: Range = {};
    const since = value('since');
    const until = value('until');
    if (since) next.since = since;
    if (until) next.until = until;
    setRange(next);
  }

  async function sync() {
    setSynced(null);
    const result = await call<Synced>('POST', '/admin/v1/anthropic/sync', range);
    const cc = result.imported.claude_code_rows;
    setSynced(
      `Imported ${count(result.imported.usage_rows)} usage and ${count(result.imported.cost_rows)} cost report rows` +
        (cc === null
          ? '; Claude Code analytics are not available to this organisation.'
          : ` and ${count(cc)} Claude Code rows.`),
    );
    recon.reload();
    activity.reload();
  }

  const data = recon.data;
  const drifting = data?.rows.filter((r) => r.flag !== null).length ?? 0;
  return (
    <Page
      title="Anthropic"
      intro="Anthropic's side of the bill: what its reports say beside Tollgate's ledger, Claude Code activity, and the spend limits at Anthropic."
    >
      <section aria-labelledby="recon-heading">
        <h2 id="recon-heading">Reconciliation</h2>
        <p>
          Per UTC day, credential and model: Anthropic's usage report (priced with Tollgate's prices) beside
          Tollgate's ledger. Drift is Anthropic's figure minus Tollgate's. A key that is no Tollgate
          credential carried traffic that went around Tollgate.
        </p>
        <form class="inline filters" onSubmit={submit} aria-label="Reconciliation range">
          <Field id="r-since" label="Since" hint="YYYY-MM-DD; default: 7 days back">
            <input id="r-since" name="since" autocomplete="off" size={12} aria-describedby="r-since-hint" />
          </Field>
          <Field id="r-until" label="Until" hint="exclusive; default: one hour ago">
            <input id="r-until" name="until" autocomplete="off" size={12} aria-describedby="r-until-hint" />
          </Field>
          <button type="submit">Show</button>
        </form>
        <div class="actions">
          <ConfirmButton
            label="Sync now"
            title="Import Anthropic's reports?"
            message={
              <p>
                Tollgate asks Anthropic's Admin API for the usage, cost and Claude Code reports of the range
                and replaces what it imported for those days. Running it again changes nothing.
              </p>
            }
            confirm="Sync"
            onConfirm={sync}
          />
        </div>
        {synced ? <Notice>{synced}</Notice> : null}
        <ErrorNote error={recon.error} />
        {!data ? (
          recon.error ? null : (
            <Loading what="the reconciliation" />
          )
        ) : (
          <>
            <p>
              {data.last_sync_at === null
                ? 'Never synced: run Sync now (or `tollgate anthropic sync`).'
                : `Last sync ${when(data.last_sync_at)}.`}{' '}
              UTC days from {data.since.slice(0, 10)} up to {data.until.slice(0, 16).replace('T', ' ')} UTC:{' '}
              {count(data.rows.length)} rows, {drifting === 0 ? 'none flagged' : `${count(drifting)} flagged`}
              . Cost report total {usd(data.cost_report_micro_usd)}; Anthropic's usage priced by Tollgate{' '}
              {usd(data.priced_usage_micro_usd)}.
            </p>
            <Table
              caption="Anthropic's usage report beside Tollgate's ledger"
              rows={data.rows}
              rowKey={(r) => `${r.day}|${r.credential ?? r.api_key_id}|${r.model}`}
              empty="Nothing imported for this range."
              columns={[
                { label: 'Day', cell: (r) => r.day },
                { label: 'Credential', cell: who },
                { label: 'Model', cell: (r) => r.model },
                { label: 'Tollgate tokens', numeric: true, cell: (r) => tokens(total(r.tollgate)) },
                { label: 'Anthropic tokens', numeric: true, cell: (r) => tokens(total(r.anthropic)) },
                {
                  label: 'Drift tokens',
                  numeric: true,
                  cell: (r) => signed(r.drift_tokens, count(r.drift_tokens)),
                },
                { label: 'Tollgate $', numeric: true, cell: (r) => usd(r.tollgate.cost_micro_usd) },
                { label: 'Anthropic $', numeric: true, cell: (r) => usd(r.anthropic.cost_micro_usd) },
                {
                  label: 'Drift $',
                  numeric: true,
                  cell: (r) =>
                    r.drift_micro_usd === null ? '—' : signed(r.drift_micro_usd, usd(r.drift_micro_usd)),
                },
                { label: 'Flag', cell: (r) => <FlagBadge row={r} /> },
              ]}
            />
          </>
        )}
      </section>
      <ClaudeCodeSection loaded={activity} />
      <LimitsSection />
    </Page>
  );
}

function ClaudeCodeSection(props: { loaded: Loaded<{ actors: Activity[] }> }) {
  const { data, error } = props.loaded;
  return (
    <section aria-labelledby="cc-heading">
      <h2 id="cc-heading">Claude Code, last 30 days</h2>
      <p>
        Anthropic's Claude Code analytics as the last sync imported them. A coder whose email is a Tollgate
        user's is shown beside that user's Tollgate spend.
      </p>
      <ErrorNote error={error} />
      {!data ? null : (
        <Table
          caption="Claude Code activity per coder"
          rows={data.actors}
          rowKey={(a) => `${a.actor_kind}|${a.actor}`}
          empty="No Claude Code analytics imported for the last 30 days."
          columns={[
            {
              label: 'Coder',
              cell: (a) => (
                <>
                  {a.actor}
                  <div class="muted">
                    {a.actor_kind === 'api_key' ? 'API key' : (a.user ?? 'no Tollgate user')}
                  </div>
                </>
              ),
            },
            { label: 'Sessions', numeric: true, cell: (a) => count(a.sessions) },
            {
              label: 'Lines',
              numeric: true,
              cell: (a) => `+${count(a.lines_added)} −${count(a.lines_removed)}`,
            },
            { label: 'Commits', numeric: true, cell: (a) => count(a.commits) },
            { label: 'PRs', numeric: true, cell: (a) => count(a.pull_requests) },
            { label: 'Accepted', numeric: true, cell: acceptRate },
            { label: 'Anthropic estimate', numeric: true, cell: (a) => usd(a.estimated_micro_usd) },
            { label: 'Tollgate spend', numeric: true, cell: (a) => usd(a.tollgate_micro_usd) },
          ]}
        />
      )}
    </section>
  );
}

function scopeText(l: Limit): string {
  if (l.scope.type === 'organization') return 'organisation';
  return `workspace ${l.scope.workspace_id}`;
}

const ACTION: Record<Limit['action'], string> = {
  create: 'set',
  update: 'update',
  none: 'matches',
  unmanaged: 'left alone (no Tollgate budget)',
};

function LimitsSection() {
  const [limits, setLimits] = useState<Limit[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function check() {
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      setLimits((await get<{ limits: Limit[] }>('/admin/v1/anthropic/limits')).limits);
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }

  async function mirror() {
    const result = await call<{ changed: Limit[]; limits: Limit[] }>(
      'POST',
      '/admin/v1/anthropic/limits/sync',
      {},
    );
    // What Anthropic has now, read back (the sync's rows are the plan it carried out).
    setLimits((await get<{ limits: Limit[] }>('/admin/v1/anthropic/limits')).limits);
    setDone(
      result.changed.length === 0
        ? "Nothing to change: Anthropic's spend limits match Tollgate's."
        : `Set ${count(result.changed.length)} spend limit(s) at Anthropic.`,
    );
  }

  const pending = limits?.filter((l) => l.action === 'create' || l.action === 'update').length ?? 0;
  return (
    <section aria-labelledby="limits-heading">
      <h2 id="limits-heading">Spend limits at Anthropic</h2>
      <p>
        A second line of defence: the organisation's monthly cap and the monthly budgets of teams mapped to
        workspaces, mirrored to Anthropic's spend limits (rounded down to the cent), so traffic that goes
        around Tollgate is capped too. Where the organisation has no access to spend limits, Anthropic says so
        and nothing changes.
      </p>
      <div class="actions">
        <button type="button" disabled={busy} onClick={() => void check()}>
          Check Anthropic's limits
        </button>
        {limits ? (
          <ConfirmButton
            label="Mirror to Anthropic"
            title="Set Anthropic's spend limits?"
            message={
              <p>
                {pending === 0
                  ? "Anthropic's limits already match; nothing will change."
                  : `${count(pending)} limit(s) will be set at Anthropic to Tollgate's budgets.`}
              </p>
            }
            confirm="Set limits"
            onConfirm={mirror}
          />
        ) : null}
      </div>
      <ErrorNote error={error} />
      {done ? <Notice>{done}</Notice> : null}
      {busy && !limits ? <Loading what="Anthropic's spend limits" /> : null}
      {limits ? (
        <Table
          caption="Monthly spend limits: Anthropic's beside Tollgate's"
          rows={limits}
          rowKey={(l) => scopeText(l)}
          empty="No budgets to mirror and no limits at Anthropic."
          columns={[
            { label: 'Scope', cell: scopeText },
            { label: 'Team', cell: (l) => l.team ?? '—' },
            {
              label: 'At Anthropic',
              numeric: true,
              cell: (l) => (l.anthropic_limit_set ? cents(l.anthropic_amount_cents) : 'none'),
            },
            {
              label: 'Tollgate',
              numeric: true,
              cell: (l) => (l.tollgate_amount_cents === null ? '—' : cents(l.tollgate_amount_cents)),
            },
            { label: 'Sync', cell: (l) => ACTION[l.action] },
          ]}
        />
      ) : null}
    </section>
  );
}
