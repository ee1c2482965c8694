// Issuing a gateway key (POST /admin/v1/keys): for a user, from a key profile and/or an explicit policy.
// With a profile its policy is the base and every field filled in here overrides it; a field left blank
// is left out of the request. The answer's key goes straight to the shown-once panel.
import type { TargetedSubmitEvent } from 'preact';
import { useState } from 'preact/hooks';
import { call } from '../api.js';
import { ErrorNote, Field, messageOf } from '../ui/kit.js';
import type { IssuedKey } from './keys-shown.js';
import type { User } from './users-api.js';

export interface Profile {
  id: string;
  name: string;
  description: string | null;
}

const ENVIRONMENTS = ['dev', 'staging', 'prod'] as const;

/** The request body from the form: blank fields stay out (the profile's or the default applies). */
function issueBody(data: FormData): Record<string, unknown> {
  const text = (name: string) => String(data.get(name) ?? '').trim();
  const body: Record<string, unknown> = { user: text('user') };
  const put = (field: string, value: unknown) => {
    if (value !== '' && value !== undefined) body[field] = value;
  };
  put('name', text('name'));
  put('profile', text('profile'));
  const models = text('models');
  if (models) body.models = models.split(/[\s,]+/).filter(Boolean);
  put('expires', text('expires'));
  put('env', text('env'));
  put('monthly_budget_usd', text('monthly'));
  put('daily_budget_usd', text('daily'));
  for (const [field, name] of [
    ['rpm', 'rpm'],
    ['max_tokens', 'max-tokens'],
  ] as const) {
    const n = text(name);
    if (n) body[field] = /^\d+$/.test(n) ? Number(n) : n;
  }
  return body;
}

export function IssueKey(props: {
  users: readonly User[];
  profiles: readonly Profile[];
  onIssued: (key: IssuedKey) => void;
}) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const people = props.users.filter((u) => !u.disabled_at);
  async function submit(event: TargetedSubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = event.currentTarget;
    setBusy(true);
    setError(null);
    try {
      const issued = await call<IssuedKey>('POST', '/admin/v1/keys', issueBody(new FormData(form)));
      form.reset();
      props.onIssued(issued);
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }
  if (people.length === 0)
    return (
      <p class="muted">
        Create a user on <a href="/users">Users &amp; teams</a> first.
      </p>
    );
  return (
    <form class="card" aria-labelledby="issue-heading" onSubmit={submit}>
      <h2 id="issue-heading">Issue a key</h2>
      <p class="muted">
        Start from a profile, set the policy here, or both: what you fill in overrides the profile; blank
        fields take the profile's value (or no limit).
      </p>
      <div class="form-grid">
        <Field id="issue-user" label="User">
          <select id="issue-user" name="user" required>
            {people.map((u) => (
              <option key={u.id} value={u.id}>
                {u.name}
              </option>
            ))}
          </select>
        </Field>
        <Field id="issue-name" label="Key name (optional)">
          <input id="issue-name" name="name" maxLength={64} autocomplete="off" />
        </Field>
        <Field id="issue-profile" label="Profile">
          <select id="issue-profile" name="profile">
            <option value="">none: the policy below</option>
            {props.profiles.map((p) => (
              <option key={p.id} value={p.name}>
                {p.description ? `${p.name} — ${p.description}` : p.name}
              </option>
            ))}
          </select>
        </Field>
        <Field id="issue-models" label="Allowed models" hint="Comma-separated ids; blank: any model">
          <input id="issue-models" name="models" autocomplete="off" aria-describedby="issue-models-hint" />
        </Field>
        <Field id="issue-expires" label="Expires after" hint="e.g. 90d or 24h; blank: never">
          <input
            id="issue-expires"
            name="expires"
            autocomplete="off"
            size={8}
            aria-describedby="issue-expires-hint"
          />
        </Field>
        <Field id="issue-env" label="Environment">
          <select id="issue-env" name="env">
            <option value="">any</option>
            {ENVIRONMENTS.map((e) => (
              <option key={e} value={e}>
                {e}
              </option>
            ))}
          </select>
        </Field>
        <Field id="issue-rpm" label="Requests per minute" hint="blank: no limit">
          <input
            id="issue-rpm"
            name="rpm"
            inputMode="numeric"
            autocomplete="off"
            size={8}
            aria-describedby="issue-rpm-hint"
          />
        </Field>
        <Field id="issue-max-tokens" label="Largest max_tokens" hint="blank: no limit">
          <input
            id="issue-max-tokens"
            name="max-tokens"
            inputMode="numeric"
            autocomplete="off"
            size={8}
            aria-describedby="issue-max-tokens-hint"
          />
        </Field>
        <Field id="issue-monthly" label="Monthly budget (USD)" hint="blank: none">
          <input
            id="issue-monthly"
            name="monthly"
            inputMode="decimal"
            autocomplete="off"
            size={8}
            aria-describedby="issue-monthly-hint"
          />
        </Field>
        <Field id="issue-daily" label="Daily budget (USD)" hint="blank: none">
          <input
            id="issue-daily"
            name="daily"
            inputMode="decimal"
            autocomplete="off"
            size={8}
            aria-describedby="issue-daily-hint"
          />
        </Field>
      </div>
      <ErrorNote error={error} />
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          Issue key
        </button>
      </div>
    </form>
  );
}
