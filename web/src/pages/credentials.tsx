// The upstream credentials (admin): the list with hints only and the live check `tollgate status`
// makes, adding one (checked by the server before it is stored), and per credential: rotate, use,
// enable/disable, remove. Secrets are typed into uncontrolled inputs, read once and the form reset.
import type { TargetedSubmitEvent } from 'preact';
import { useState } from 'preact/hooks';
import { call, get } from '../api.js';
import { when } from '../format.js';
import type { SignedInProps } from '../routes.js';
import {
  ConfirmButton,
  ErrorNote,
  Field,
  Loading,
  messageOf,
  Notice,
  Page,
  Table,
  useLoad,
} from '../ui/kit.js';

export interface Credential {
  id: string;
  name: string;
  provider: string;
  owner: string;
  environment: string | null;
  status: 'active' | 'inactive' | 'invalid';
  preferred: boolean;
  hint: string;
  last_used_at: string | null;
  rotated_at: string | null;
}

interface CredentialCheck {
  name: string;
  check: 'ACTIVE' | 'INVALID KEY' | 'RATE LIMITED' | 'ERROR' | 'SKIPPED';
  code: string | null;
  detail: string;
  age_days: number;
  rotate_due: boolean;
}

const PROVIDERS = ['anthropic', 'anthropic-admin', 'github', 'linear', 'generic'] as const;

async function allCredentials(): Promise<Credential[]> {
  const items: Credential[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: Credential[]; next_cursor: string | null } = await get(
      `/admin/v1/credentials${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

const path = (c: Credential, verb = '') => `/admin/v1/credentials/${encodeURIComponent(c.id)}${verb}`;

function checkWords(c: CredentialCheck | undefined): string {
  if (!c) return 'not checked';
  const word = c.check === 'ERROR' && c.code !== null ? `ERROR (${c.code})` : c.check;
  return `${word}: ${c.detail}`;
}

export function CredentialsPage(_props: SignedInProps) {
  const list = useLoad(allCredentials, []);
  const [round, setRound] = useState(0);
  const status = useLoad(() => get<{ credentials: CredentialCheck[] }>('/admin/v1/status'), [round]);
  const [notice, setNotice] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const checks = new Map((status.data?.credentials ?? []).map((c) => [c.name, c]));
  const refresh = (message: string) => {
    setNotice(message);
    setActionError(null);
    list.reload();
    setRound((r) => r + 1);
  };
  async function act(c: Credential, verb: 'use' | 'enable' | 'disable') {
    try {
      await call('POST', path(c, `/${verb}`), {});
      refresh(
        verb === 'use' ? `${c.name} is now the one used for ${c.owner}.` : `${c.name} is now ${verb}d.`,
      );
    } catch (e) {
      setActionError(messageOf(e));
    }
  }

  return (
    <Page
      title="Credentials"
      intro="Upstream keys the gateway uses. Only hints are ever shown; secrets are checked, encrypted and never returned."
    >
      {notice ? <Notice>{notice}</Notice> : null}
      <ErrorNote error={actionError} />
      <section aria-labelledby="cred-list">
        <h2 id="cred-list">Stored credentials</h2>
        <ErrorNote error={list.error} />
        {status.error ? <p class="warn">The live check could not run: {status.error}</p> : null}
        {list.loading && !list.data ? (
          <Loading what="credentials" />
        ) : (
          <Table
            caption="Credentials, with the live check of each"
            rows={list.data ?? []}
            rowKey={(c) => c.id}
            empty="No credentials yet. Add one below."
            columns={[
              { label: 'Name', cell: (c) => (c.preferred ? `${c.name} (used)` : c.name) },
              { label: 'Provider', cell: (c) => c.provider },
              { label: 'Owner', cell: (c) => `${c.owner}${c.environment ? ` · ${c.environment}` : ''}` },
              { label: 'Hint', cell: (c) => <code>{c.hint}</code> },
              {
                label: 'Check',
                cell: (c) => (status.loading ? 'checking…' : checkWords(checks.get(c.name))),
              },
              { label: 'Stored as', cell: (c) => (c.status === 'inactive' ? 'disabled' : c.status) },
              { label: 'Last use', cell: (c) => when(c.last_used_at) },
              {
                label: 'Actions',
                cell: (c) => (
                  <div class="actions">
                    <RotateButton credential={c} onDone={refresh} />
                    {c.preferred ? null : (
                      <button type="button" onClick={() => void act(c, 'use')}>
                        Use
                        <span class="sr-only"> {c.name}</span>
                      </button>
                    )}
                    {c.status === 'inactive' ? (
                      <button type="button" onClick={() => void act(c, 'enable')}>
                        Enable
                        <span class="sr-only"> {c.name}</span>
                      </button>
                    ) : (
                      <button type="button" onClick={() => void act(c, 'disable')}>
                        Disable
                        <span class="sr-only"> {c.name}</span>
                      </button>
                    )}
                    <ConfirmButton
                      label={
                        <>
                          Remove<span class="sr-only"> {c.name}</span>
                        </>
                      }
                      title={`Remove ${c.name}?`}
                      message={
                        <p>
                          Its encrypted secret is destroyed and the gateway stops using it at once. Keys
                          pinned to it must be changed first.
                        </p>
                      }
                      confirm="Remove"
                      danger
                      onConfirm={async () => {
                        await call('DELETE', path(c));
                        refresh(`${c.name} was removed.`);
                      }}
                    />
                  </div>
                ),
              },
            ]}
          />
        )}
        <button type="button" onClick={() => setRound((r) => r + 1)} disabled={status.loading}>
          Check again
        </button>
      </section>
      <AddCredential onDone={refresh} />
    </Page>
  );
}

function AddCredential(props: { onDone: (message: string) => void }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function submit(event: TargetedSubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const text = (k: string) => String(data.get(k) ?? '').trim();
    setBusy(true);
    setError(null);
    try {
      const env = text('environment');
      const created = await call<Credential>('POST', '/admin/v1/credentials', {
        name: text('name'),
        provider: text('provider'),
        owner: text('owner') || 'org',
        ...(env ? { environment: env } : {}),
        secret: String(data.get('secret') ?? ''),
        validate: data.get('validate') === 'on',
      });
      form.reset();
      props.onDone(`${created.name} was checked and stored (${created.hint}).`);
    } catch (e) {
      // The secret stays only in the password input, so it can be corrected; it is never in state.
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }
  return (
    <section aria-labelledby="cred-add">
      <h2 id="cred-add">Add a credential</h2>
      <form class="card" onSubmit={submit}>
        <ErrorNote error={error} />
        <Field id="cred-name" label="Name">
          <input id="cred-name" name="name" required maxLength={64} autocomplete="off" />
        </Field>
        <Field id="cred-provider" label="Provider">
          <select id="cred-provider" name="provider">
            {PROVIDERS.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </Field>
        <Field id="cred-owner" label="Owner" hint="org, team:NAME or user:NAME">
          <input
            id="cred-owner"
            name="owner"
            defaultValue="org"
            aria-describedby="cred-owner-hint"
            autocomplete="off"
          />
        </Field>
        <Field id="cred-env" label="Environment">
          <select id="cred-env" name="environment">
            <option value="">any</option>
            <option value="dev">dev</option>
            <option value="staging">staging</option>
            <option value="prod">prod</option>
          </select>
        </Field>
        <Field id="cred-secret" label="Secret">
          <input
            id="cred-secret"
            name="secret"
            type="password"
            required
            autocomplete="off"
            spellcheck={false}
          />
        </Field>
        <div class="field check">
          <input id="cred-validate" name="validate" type="checkbox" defaultChecked />
          <label for="cred-validate">Check it with the provider first (a free call)</label>
        </div>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Checking…' : 'Add credential'}
        </button>
      </form>
    </section>
  );
}

function RotateButton(props: { credential: Credential; onDone: (message: string) => void }) {
  const c = props.credential;
  const [open, setOpen] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const id = `rotate-${c.id}`;
  async function submit(event: TargetedSubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const grace = String(data.get('grace') ?? '').trim();
    setBusy(true);
    setError(null);
    try {
      await call('POST', path(c, '/rotate'), {
        secret: String(data.get('secret') ?? ''),
        ...(grace ? { grace } : {}),
      });
      form.reset();
      setOpen(false);
      props.onDone(`${c.name} has a new secret.`);
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }
  if (!open)
    return (
      <button type="button" onClick={() => setOpen(true)}>
        Rotate
        <span class="sr-only"> {c.name}</span>
      </button>
    );
  return (
    <form class="rotate" onSubmit={submit}>
      <ErrorNote error={error} />
      <Field id={`${id}-secret`} label={`New secret for ${c.name}`}>
        <input id={`${id}-secret`} name="secret" type="password" required autocomplete="off" />
      </Field>
      <Field id={`${id}-grace`} label="Keep the old one for (optional, e.g. 24h)">
        <input id={`${id}-grace`} name="grace" autocomplete="off" />
      </Field>
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          Save new secret
        </button>
        <button type="button" onClick={() => setOpen(false)}>
          Cancel
        </button>
      </div>
    </form>
  );
}
