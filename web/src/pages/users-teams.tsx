// The teams half of the users page: each team with its members and budget bars, a form to create a
// team (POST /admin/v1/teams) and one to set or remove a team budget.
import type { TargetedSubmitEvent } from 'preact';
import { useState } from 'preact/hooks';
import { call } from '../api.js';
import { count } from '../format.js';
import { ErrorNote, Field, messageOf, Notice, Table } from '../ui/kit.js';
import type { Budget, Team } from './users-api.js';
import { BudgetBars, BudgetForm } from './users-budget.js';

export function TeamsSection(props: {
  teams: readonly Team[];
  budgets: Map<string, Budget[]>;
  onChanged: () => void;
}) {
  return (
    <section aria-labelledby="teams-heading">
      <h2 id="teams-heading">Teams</h2>
      <Table
        caption="Teams and their budgets this period"
        rows={props.teams}
        rowKey={(t) => t.id}
        empty="No teams yet."
        columns={[
          { label: 'Team', cell: (t) => <strong>{t.name}</strong> },
          { label: 'Members', numeric: true, cell: (t) => count(t.members) },
          { label: 'Budgets', cell: (t) => <BudgetBars who={t.name} budgets={props.budgets.get(t.id)} /> },
        ]}
      />
      <h3>Team budget</h3>
      <BudgetForm scope="team" targets={props.teams} onChanged={props.onChanged} />
      <CreateTeam onCreated={props.onChanged} />
    </section>
  );
}

function CreateTeam(props: { onCreated: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function submit(event: TargetedSubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const budget = String(data.get('monthly') ?? '').trim();
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const team = await call<Team>('POST', '/admin/v1/teams', {
        name: String(data.get('name') ?? '').trim(),
        ...(budget ? { monthly_budget_usd: budget } : {}),
      });
      form.reset();
      setDone(`Team ${team.name} created.`);
      props.onCreated();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }
  return (
    <>
      <h3>New team</h3>
      <form class="inline card" aria-label="Create a team" onSubmit={submit}>
        <Field id="team-name" label="Team name">
          <input id="team-name" name="name" required maxLength={64} autocomplete="off" />
        </Field>
        <Field id="team-monthly" label="Monthly budget (USD, optional)">
          <input id="team-monthly" name="monthly" inputMode="decimal" autocomplete="off" size={10} />
        </Field>
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            Create team
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
