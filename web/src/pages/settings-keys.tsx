// My settings: the person's own gateway keys (hints only), revoking one, and issuing one within their
// ceiling. A new key is shown once with a copy button and is gone when dismissed.
import type { TargetedSubmitEvent } from 'preact';
import { useState } from 'preact/hooks';
import { call, get } from '../api.js';
import { when } from '../format.js';
import {
  ConfirmButton,
  CopyField,
  ErrorNote,
  Field,
  Loading,
  messageOf,
  Notice,
  Table,
  useLoad,
} from '../ui/kit.js';

interface MyKey {
  id: string;
  name: string | null;
  hint: string;
  status: string;
  expires_at: string | null;
  last_used_at: string | null;
}

export function MyKeys() {
  const keys = useLoad(() => get<{ items: MyKey[] }>('/api/v1/me/keys?limit=200'), []);
  const [issued, setIssued] = useState<{ key: string; hint: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  async function issue(event: TargetedSubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const name = String(data.get('name') ?? '').trim();
    const expires = String(data.get('expires') ?? '').trim();
    setError(null);
    setNotice(null);
    try {
      const answer = await call<{ key: string; hint: string }>('POST', '/api/v1/me/keys', {
        ...(name ? { name } : {}),
        ...(expires ? { expires } : {}),
      });
      form.reset();
      setIssued({ key: answer.key, hint: answer.hint });
      keys.reload();
    } catch (e) {
      setError(messageOf(e));
    }
  }
  return (
    <section aria-labelledby="my-keys">
      <h2 id="my-keys">My gateway keys</h2>
      {notice ? <Notice>{notice}</Notice> : null}
      {issued ? (
        <section class="card new-key" aria-label="New key">
          <p>
            <strong>Copy this key now.</strong> It is shown only once; afterwards only its hint is known.
          </p>
          <CopyField id="new-key" label="Your new gateway key" value={issued.key} />
          <button type="button" onClick={() => setIssued(null)}>
            I have copied it
          </button>
        </section>
      ) : null}
      <ErrorNote error={keys.error} />
      {!keys.data ? (
        keys.loading ? (
          <Loading what="your keys" />
        ) : null
      ) : (
        <Table
          caption="My gateway keys"
          rows={keys.data.items}
          rowKey={(k) => k.id}
          empty="You have no gateway keys yet."
          columns={[
            { label: 'Name', cell: (k) => k.name ?? '(unnamed)' },
            { label: 'Hint', cell: (k) => <code>{k.hint}</code> },
            { label: 'Status', cell: (k) => k.status },
            { label: 'Expires', cell: (k) => (k.expires_at ? when(k.expires_at) : 'never') },
            { label: 'Last use', cell: (k) => when(k.last_used_at) },
            {
              label: 'Actions',
              cell: (k) =>
                k.status === 'active' ? (
                  <ConfirmButton
                    label={`Revoke ${k.name ?? k.hint}`}
                    title="Revoke this key?"
                    message={<p>Anything using {k.hint} stops working at once.</p>}
                    confirm="Revoke"
                    danger
                    onConfirm={async () => {
                      await call('DELETE', `/api/v1/me/keys/${encodeURIComponent(k.id)}`);
                      setNotice(`Key ${k.hint} revoked.`);
                      keys.reload();
                    }}
                  />
                ) : null,
            },
          ]}
        />
      )}
      <form class="inline" onSubmit={issue}>
        <Field id="key-name" label="New key name (optional)">
          <input id="key-name" name="name" autocomplete="off" maxLength={64} />
        </Field>
        <Field id="key-expires" label="Lifetime (optional, e.g. 30d)">
          <input id="key-expires" name="expires" autocomplete="off" />
        </Field>
        <button type="submit" class="primary">
          Issue a key
        </button>
      </form>
      <ErrorNote error={error} />
    </section>
  );
}
