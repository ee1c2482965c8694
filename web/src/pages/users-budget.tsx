// Budgets on the users page: the usage bars of a team's or user's budgets (spent, reserved by requests
// in flight, remaining; one per period), and the form that sets or removes one (PUT/DELETE
// /admin/v1/budgets, the op `tollgate budget set/clear` uses).
import type { TargetedSubmitEvent } from 'preact';
import { useState } from 'preact/hooks';
import { call, query } from '../api.js';
import { ErrorNote, Field, messageOf, Notice, UsageBar } from '../ui/kit.js';
import { type Budget, PERIOD_LABEL, PERIODS, type Period, toMicro } from './users-api.js';

export function BudgetBars(props: { who: string; budgets: readonly Budget[] | undefined }) {
  const budgets = props.budgets ?? [];
  if (budgets.length === 0) return <span class="muted">no budget</span>;
  return (
    <div class="budget-bars">
      {budgets.map((b) => (
        <div key={b.period}>
          <span class="budget-period">{PERIOD_LABEL[b.period]}</span>
          <UsageBar
            label={`${props.who}, ${PERIOD_LABEL[b.period].toLowerCase()} budget`}
            spent={toMicro(b.spent_usd)}
            reserved={toMicro(b.reserved_usd)}
            limit={toMicro(b.limit_usd)}
          />
        </div>
      ))}
    </div>
  );
}

export function BudgetForm(props: {
  scope: 'team' | 'user';
  targets: ReadonlyArray<{ id: string; name: string }>;
  onChanged: () => void;
}) {
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const id = (name: string) => `${props.scope}-budget-${name}`;

  async function run(form: HTMLFormElement, clear: boolean) {
    const data = new FormData(form);
    const target = String(data.get('target') ?? '');
    const period = String(data.get('period') ?? 'month') as Period;
    const amount = String(data.get('amount') ?? '').trim();
    const name = props.targets.find((t) => t.id === target)?.name ?? target;
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      if (clear) {
        const answer = await call<{ removed: boolean }>(
          'DELETE',
          `/admin/v1/budgets${query({ scope: props.scope, target, period })}`,
        );
        setDone(
          answer.removed
            ? `Removed the ${period} budget of ${name}.`
            : `${name} had no ${period} budget to remove.`,
        );
      } else {
        if (!amount) throw new Error('Enter the limit in USD, e.g. 250 or 12.50.');
        const b = await call<Budget>('PUT', '/admin/v1/budgets', {
          scope: props.scope,
          target,
          period,
          limit_usd: amount,
        });
        setDone(`${PERIOD_LABEL[b.period]} budget of ${name} is now $${b.limit_usd}.`);
      }
      props.onChanged();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }

  if (props.targets.length === 0) return null;
  return (
    <form
      class="inline card"
      aria-label={`Set a ${props.scope}'s budget`}
      onSubmit={(event: TargetedSubmitEvent<HTMLFormElement>) => {
        event.preventDefault();
        void run(event.currentTarget, false);
      }}
    >
      <Field id={id('target')} label={props.scope === 'team' ? 'Team' : 'User'}>
        <select id={id('target')} name="target">
          {props.targets.map((t) => (
            <option key={t.id} value={t.id}>
              {t.name}
            </option>
          ))}
        </select>
      </Field>
      <Field id={id('period')} label="Period">
        <select id={id('period')} name="period">
          {PERIODS.map((p) => (
            <option key={p} value={p} selected={p === 'month'}>
              {PERIOD_LABEL[p]}
            </option>
          ))}
        </select>
      </Field>
      <Field id={id('amount')} label="Limit (USD)">
        <input id={id('amount')} name="amount" inputMode="decimal" autocomplete="off" size={10} />
      </Field>
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          Set budget
        </button>
        <button
          type="button"
          disabled={busy}
          onClick={(event) => {
            const form = event.currentTarget.form;
            if (form) void run(form, true);
          }}
        >
          Remove budget
        </button>
      </div>
      <div class="form-messages">
        <ErrorNote error={error} />
        {done ? <Notice>{done}</Notice> : null}
      </div>
    </form>
  );
}
