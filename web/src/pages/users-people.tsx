// The users half of the users page: everyone with role, team, sign-in method, status and budget bars;
// create a user, set a user's budget, disable/enable, remove (which revokes their keys), and issue an
// invite link (POST /admin/v1/users/{user}/login-link), shown once by the page.
import type { TargetedSubmitEvent } from 'preact';
import { useState } from 'preact/hooks';
import { call } from '../api.js';
import { count, usd } from '../format.js';
import { ConfirmButton, ErrorNote, Field, messageOf, Notice, Table } from '../ui/kit.js';
import { type Activity, acceptRate } from './anthropic.js';
import type { Budget, Team, User } from './users-api.js';
import { BudgetBars, BudgetForm } from './users-budget.js';

export interface LoginLink {
  user: string;
  url: string;
  expires_at: string;
}

const path = (u: User) => `/admin/v1/users/${encodeURIComponent(u.id)}`;

function signIn(u: User): string {
  if (u.role === 'service') return 'gateway keys only';
  if (u.sso) return 'single sign-on';
  return u.password_set ? 'password set' : 'not yet (send an invite link)';
}

export function PeopleSection(props: {
  users: readonly User[];
  teams: readonly Team[];
  budgets: Map<string, Budget[]>;
  /** Claude Code activity over the last 30 days, by user id (only coders whose email matched). */
  activity: Map<string, Activity>;
  onChanged: () => void;
  onLink: (link: LoginLink) => void;
}) {
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  async function act(run: () => Promise<string>) {
    setError(null);
    setDone(null);
    try {
      setDone(await run());
      props.onChanged();
    } catch (e) {
      setError(messageOf(e));
    }
  }
  const invite = (u: User) =>
    act(async () => {
      props.onLink(await call<LoginLink>('POST', `${path(u)}/login-link`));
      return `Invite link for ${u.name} issued; earlier links stop working.`;
    });
  const enable = (u: User) =>
    act(async () => {
      await call('POST', `${path(u)}/enable`);
      return `${u.name} can sign in again (revoked keys stay revoked).`;
    });
  async function disable(u: User) {
    await call('POST', `${path(u)}/disable`, {});
    setDone(`${u.name} is disabled: keys revoked, sessions ended.`);
    props.onChanged();
  }
  async function remove(u: User) {
    const r = await call<{ revoked_keys: number }>('DELETE', path(u));
    setDone(`${u.name} removed; ${count(r.revoked_keys)} gateway key(s) revoked.`);
    props.onChanged();
  }

  return (
    <section aria-labelledby="users-heading">
      <h2 id="users-heading">Users</h2>
      <ErrorNote error={error} />
      {done ? <Notice>{done}</Notice> : null}
      <Table
        caption="Users, their sign-in and budgets this period"
        rows={props.users}
        rowKey={(u) => u.id}
        empty="No users yet."
        columns={[
          {
            label: 'Name',
            cell: (u) => (
              <>
                <strong>{u.name}</strong>
                {u.email ? <div class="muted">{u.email}</div> : null}
              </>
            ),
          },
          { label: 'Role', cell: (u) => u.role },
          { label: 'Team', cell: (u) => u.team ?? <span class="muted">none</span> },
          { label: 'Sign-in', cell: signIn },
          {
            label: 'Status',
            cell: (u) =>
              u.disabled_at ? <span class="badge bad">disabled</span> : <span class="badge ok">active</span>,
          },
          { label: 'Active keys', numeric: true, cell: (u) => count(u.active_keys) },
          { label: 'Budgets', cell: (u) => <BudgetBars who={u.name} budgets={props.budgets.get(u.id)} /> },
          {
            label: 'Claude Code, 30 days',
            cell: (u) => <CoderActivity activity={props.activity.get(u.id)} />,
          },
          {
            label: 'Actions',
            cell: (u) => (
              <div class="actions">
                {u.role !== 'service' && !u.disabled_at ? (
                  <button type="button" onClick={() => void invite(u)}>
                    Invite link
                  </button>
                ) : null}
                {u.disabled_at ? (
                  <button type="button" onClick={() => void enable(u)}>
                    Enable
                  </button>
                ) : (
                  <ConfirmButton
                    label="Disable"
                    title={`Disable ${u.name}?`}
                    message={
                      <p>
                        Every gateway key and admin token of {u.name} is revoked and every dashboard session
                        ended. Enabling them later does not bring the keys back.
                      </p>
                    }
                    confirm={`Disable ${u.name}`}
                    onConfirm={() => disable(u)}
                  />
                )}
                <ConfirmButton
                  label="Remove"
                  danger
                  title={`Remove ${u.name}?`}
                  message={
                    <p>
                      Removing {u.name} revokes all their gateway keys ({count(u.active_keys)} active),
                      destroys their own stored credentials and ends their sessions. This cannot be undone.
                    </p>
                  }
                  confirm={`Remove ${u.name}`}
                  onConfirm={() => remove(u)}
                />
              </div>
            ),
          },
        ]}
      />
      <h3>User budget</h3>
      <BudgetForm scope="user" targets={props.users} onChanged={props.onChanged} />
      <CreateUser teams={props.teams} onCreated={props.onChanged} />
    </section>
  );
}

/** One coder's Claude Code activity (Anthropic's analytics) beside their Tollgate spend. */
function CoderActivity(props: { activity: Activity | undefined }) {
  const a = props.activity;
  if (!a) return <span class="muted">none imported</span>;
  return (
    <span class="activity">
      {count(a.sessions)} sessions · +{count(a.lines_added)} −{count(a.lines_removed)} lines ·{' '}
      {count(a.commits)} commits · {acceptRate(a)} accepted
      <div class="muted">
        Anthropic's estimate {usd(a.estimated_micro_usd)}; Tollgate {usd(a.tollgate_micro_usd)}
      </div>
    </span>
  );
}

function CreateUser(props: { teams: readonly Team[]; onCreated: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function submit(event: TargetedSubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const text = (name: string) => String(data.get(name) ?? '').trim();
    const budget = text('monthly');
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const user = await call<User>('POST', '/admin/v1/users', {
        name: text('name'),
        email: text('email') || null,
        role: text('role'),
        team: text('team') || null,
        // Blank: the installation's default budget for new people; "none": no budget.
        ...(budget === '' ? {} : { monthly_budget_usd: budget.toLowerCase() === 'none' ? null : budget }),
      });
      form.reset();
      setDone(`User ${user.name} created.`);
      props.onCreated();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }
  return (
    <>
      <h3>New user</h3>
      <form class="inline card" aria-label="Create a user" onSubmit={submit}>
        <Field id="user-name" label="Name">
          <input id="user-name" name="name" required maxLength={64} autocomplete="off" />
        </Field>
        <Field id="user-email" label="Email (optional)">
          <input id="user-email" name="email" type="email" maxLength={254} autocomplete="off" />
        </Field>
        <Field id="user-role" label="Role">
          <select id="user-role" name="role">
            <option value="member">member</option>
            <option value="admin">admin</option>
            <option value="service">service (workers, CI)</option>
          </select>
        </Field>
        <Field id="user-team" label="Team">
          <select id="user-team" name="team">
            <option value="">no team</option>
            {props.teams.map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
              </option>
            ))}
          </select>
        </Field>
        <Field
          id="user-monthly"
          label="Monthly budget (USD)"
          hint="Blank: the installation's default; none: no budget"
        >
          <input
            id="user-monthly"
            name="monthly"
            autocomplete="off"
            size={10}
            aria-describedby="user-monthly-hint"
          />
        </Field>
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            Create user
          </button>
        </div>
        <div class="form-messages">
          <ErrorNote error={error} />
          {done ? <Notice>{done}</Notice> : null}
        </div>
      </form>
    </>
  );
}
