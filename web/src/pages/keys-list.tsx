// The list of gateway keys (hints only, never a key) with a summary of each policy, and per key:
// rotate with an optional grace period (the old key keeps working that long) and revoke.
import { call } from '../api.js';
import { when } from '../format.js';
import { ConfirmButton, Field, Table } from '../ui/kit.js';
import type { IssuedKey, Key } from './keys-shown.js';

const GRACE = [
  { value: '', label: 'stops now' },
  { value: '1h', label: 'works 1 more hour' },
  { value: '24h', label: 'works 24 more hours' },
  { value: '7d', label: 'works 7 more days' },
] as const;

/** The policy in a few words ("any model" when nothing restricts it). */
export function policySummary(k: Key): string {
  const parts: string[] = [k.models ? `models: ${k.models.join(', ')}` : 'any model'];
  if (k.environment) parts.push(`env ${k.environment}`);
  if (k.rpm !== null) parts.push(`${k.rpm} rpm`);
  if (k.max_tokens !== null) parts.push(`max_tokens ≤ ${k.max_tokens}`);
  if (k.monthly_budget_usd !== null) parts.push(`$${k.monthly_budget_usd}/month`);
  if (k.daily_budget_usd !== null) parts.push(`$${k.daily_budget_usd}/day`);
  if (k.max_cost_per_request_usd !== null) parts.push(`≤ $${k.max_cost_per_request_usd}/request`);
  if (k.scopes.length !== 1 || k.scopes[0] !== 'inference') parts.push(`scopes: ${k.scopes.join(', ')}`);
  return parts.join(' · ');
}

function Status(props: { k: Key }) {
  const { k } = props;
  if (k.status === 'active')
    return k.rotated_to ? (
      <span class="badge warn">active until grace ends</span>
    ) : (
      <span class="badge ok">active</span>
    );
  return <span class={`badge ${k.status === 'revoked' ? 'bad' : 'warn'}`}>{k.status}</span>;
}

export function KeyList(props: {
  keys: readonly Key[];
  onChanged: () => void;
  onRotated: (key: IssuedKey) => void;
}) {
  const path = (k: Key) => `/admin/v1/keys/${encodeURIComponent(k.id)}`;
  return (
    <Table
      caption="Gateway keys (only their hints are stored)"
      rows={props.keys}
      rowKey={(k) => k.id}
      empty="No keys match."
      columns={[
        {
          label: 'Key',
          cell: (k) => (
            <>
              <span class="mono">{k.id}</span>
              <div class="muted mono">{k.hint}</div>
            </>
          ),
        },
        { label: 'User', cell: (k) => k.user },
        { label: 'Name', cell: (k) => k.name ?? <span class="muted">—</span> },
        { label: 'Policy', cell: policySummary },
        { label: 'Created', cell: (k) => when(k.created_at) },
        { label: 'Last used', cell: (k) => when(k.last_used_at) },
        { label: 'Expires', cell: (k) => (k.expires_at ? when(k.expires_at) : 'never') },
        { label: 'Status', cell: (k) => <Status k={k} /> },
        {
          label: 'Actions',
          cell: (k) =>
            k.status !== 'active' ? null : (
              <div class="actions">
                {k.rotated_to ? null : (
                  <ConfirmButton
                    label="Rotate"
                    title={`Rotate ${k.id}?`}
                    message={
                      <>
                        <p>
                          A replacement with the same policy is issued and shown once. Choose how long the old
                          key keeps working.
                        </p>
                        <Field id={`grace-${k.id}`} label="Old key">
                          <select id={`grace-${k.id}`}>
                            {GRACE.map((g) => (
                              <option key={g.value} value={g.value}>
                                {g.label}
                              </option>
                            ))}
                          </select>
                        </Field>
                      </>
                    }
                    confirm="Rotate key"
                    onConfirm={async () => {
                      const select = document.getElementById(`grace-${k.id}`);
                      const grace = select instanceof HTMLSelectElement ? select.value : '';
                      const issued = await call<IssuedKey>(
                        'POST',
                        `${path(k)}/rotate`,
                        grace ? { grace } : {},
                      );
                      props.onRotated(issued);
                    }}
                  />
                )}
                <ConfirmButton
                  label="Revoke"
                  danger
                  title={`Revoke ${k.id}?`}
                  message={
                    <p>
                      {k.user}'s key {k.hint} stops working within a second; requests with it are refused.
                      This cannot be undone.
                    </p>
                  }
                  confirm="Revoke key"
                  onConfirm={async () => {
                    await call('POST', `${path(k)}/revoke`);
                    props.onChanged();
                  }}
                />
              </div>
            ),
        },
      ]}
    />
  );
}
