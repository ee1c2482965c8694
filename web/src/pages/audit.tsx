// The audit log (admin): filter by actor, action, object and time, page through with the server's
// cursor, and verify the hash chain (ok with the count, or the first entry where it breaks).
import type { TargetedSubmitEvent } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { call, get, query } from '../api.js';
import { count, when } from '../format.js';
import type { SignedInProps } from '../routes.js';
import { ErrorNote, Field, messageOf, Notice, Page, Table } from '../ui/kit.js';

interface Entry {
  seq: number;
  id: string;
  at: string;
  actor: string;
  action: string;
  target_type: string | null;
  target_id: string | null;
  details: Record<string, string | number | boolean | null>;
}

type Verified =
  | { ok: true; entries: number; head: { seq: number; hash: string } }
  | {
      ok: false;
      entries: number;
      firstBroken: { index: number; seq: number | null; reason: string };
      detail?: string;
    };

const FILTERS = [
  ['actor', 'Actor', 'e.g. admin-token or admin:alice'],
  ['action', 'Action', 'e.g. credential.add'],
  ['target_type', 'Object type', 'e.g. credential, user, key'],
  ['target_id', 'Object id', ''],
  ['since', 'Since', 'YYYY-MM-DD, ISO time or e.g. 7d'],
  ['until', 'Until', 'same forms, exclusive'],
] as const;

type Filter = Partial<Record<(typeof FILTERS)[number][0], string>>;

function detailText(d: Entry['details']): string {
  return Object.entries(d)
    .map(([k, v]) => `${k}=${v === null ? 'null' : String(v)}`)
    .join(', ');
}

export function AuditPage(_props: SignedInProps) {
  const [entries, setEntries] = useState<Entry[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [filter, setFilter] = useState<Filter>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [verified, setVerified] = useState<Verified | null>(null);
  const [verifyError, setVerifyError] = useState<string | null>(null);

  async function load(f: Filter, cursor: string | null) {
    setBusy(true);
    setError(null);
    try {
      const page = await get<{ items: Entry[]; next_cursor: string | null }>(
        `/admin/v1/audit${query({ ...f, limit: 50, cursor })}`,
      );
      setEntries((prev) => (cursor && prev ? [...prev, ...page.items] : page.items));
      setNext(page.next_cursor);
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }
  // The first page loads once, with no filter.
  useEffect(() => {
    void load({}, null);
  }, []);

  function submit(event: TargetedSubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    const f: Filter = {};
    for (const [name] of FILTERS) {
      const v = String(data.get(name) ?? '').trim();
      if (v) f[name] = v;
    }
    setFilter(f);
    setEntries([]);
    void load(f, null);
  }

  async function verify() {
    setVerifyError(null);
    setVerified(null);
    try {
      setVerified(await call<Verified>('POST', '/admin/v1/audit/verify', {}));
    } catch (e) {
      setVerifyError(messageOf(e));
    }
  }

  return (
    <Page title="Audit log" intro="Every change, hash-chained: each entry seals the one before it.">
      <section aria-labelledby="verify">
        <h2 id="verify">Chain</h2>
        <button type="button" onClick={() => void verify()}>
          Verify chain
        </button>
        {verified?.ok ? (
          <Notice>
            The chain is intact: {count(verified.entries)} entries, up to #{verified.head.seq}.
          </Notice>
        ) : null}
        {verified && !verified.ok ? (
          <p class="error" role="alert">
            The chain is broken at entry {verified.firstBroken.index}
            {verified.firstBroken.seq === null ? '' : ` (#${verified.firstBroken.seq})`}:{' '}
            {verified.firstBroken.reason}
            {verified.detail ? ` — ${verified.detail}` : ''} ({count(verified.entries)} entries checked).
          </p>
        ) : null}
        <ErrorNote error={verifyError} />
      </section>
      <section aria-labelledby="entries">
        <h2 id="entries">Entries</h2>
        <form class="inline filters" onSubmit={submit}>
          {FILTERS.map(([name, label, hint]) => (
            <Field key={name} id={`f-${name}`} label={label}>
              <input id={`f-${name}`} name={name} placeholder={hint} autocomplete="off" />
            </Field>
          ))}
          <button type="submit" class="primary" disabled={busy}>
            Filter
          </button>
        </form>
        <ErrorNote error={error} />
        {entries === null ? null : (
          <Table
            caption={`Audit entries, oldest first${Object.keys(filter).length ? ' (filtered)' : ''}`}
            rows={entries}
            rowKey={(e) => String(e.seq)}
            empty={busy ? 'Loading…' : 'No entries match.'}
            columns={[
              { label: '#', cell: (e) => e.seq, numeric: true },
              { label: 'When', cell: (e) => when(e.at) },
              { label: 'Actor', cell: (e) => e.actor },
              { label: 'Action', cell: (e) => e.action },
              {
                label: 'Object',
                cell: (e) => (e.target_type ? `${e.target_type} ${e.target_id ?? ''}` : '—'),
              },
              { label: 'Details', cell: (e) => <span class="details">{detailText(e.details)}</span> },
            ]}
          />
        )}
        {next ? (
          <button type="button" disabled={busy} onClick={() => void load(filter, next)}>
            Show more (newer)
          </button>
        ) : null}
      </section>
    </Page>
  );
}
