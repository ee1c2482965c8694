// My settings: the person's own Anthropic key, GitHub token and Linear key (checked by the server
// before anything is stored; only "configured" and a hint come back) and their preferred model. A
// secret lives only in an uncontrolled password input, read once via FormData, then the form is reset.
import type { TargetedSubmitEvent } from 'preact';
import { useState } from 'preact/hooks';
import { call, get } from '../api.js';
import {
  ConfirmButton,
  ErrorNote,
  Field,
  type Loaded,
  Loading,
  messageOf,
  Notice,
  useLoad,
} from '../ui/kit.js';

export interface Settings {
  hasAnthropicKey: boolean;
  hasGitHubToken: boolean;
  hasLinearKey: boolean;
  preferredModel: string | null;
  anthropicKeyHint: string | null;
}

const OWN = [
  { provider: 'anthropic', label: 'Anthropic API key', has: (s: Settings) => s.hasAnthropicKey },
  { provider: 'github', label: 'GitHub token', has: (s: Settings) => s.hasGitHubToken },
  { provider: 'linear', label: 'Linear API key', has: (s: Settings) => s.hasLinearKey },
] as const;

/** Models offered in the list; the server decides what it accepts (priced and allowed). */

export function OwnCredentials(props: { settings: Loaded<Settings> }) {
  const s = props.settings;
  return (
    <section aria-labelledby="own-creds">
      <h2 id="own-creds">My own keys</h2>
      <p class="muted">
        Bring your own provider keys. Each is checked with the provider first; only a hint is ever shown
        again.
      </p>
      <ErrorNote error={s.error} />
      {!s.data ? (
        s.loading ? (
          <Loading what="your settings" />
        ) : null
      ) : (
        <div class="grid">
          {OWN.map((o) => (
            <OwnCredential
              key={o.provider}
              provider={o.provider}
              label={o.label}
              configured={o.has(s.data as Settings)}
              hint={o.provider === 'anthropic' ? (s.data as Settings).anthropicKeyHint : null}
              onChange={s.reload}
            />
          ))}
        </div>
      )}
    </section>
  );
}

function OwnCredential(props: {
  provider: string;
  label: string;
  configured: boolean;
  hint: string | null;
  onChange: () => void;
}) {
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const id = `own-${props.provider}`;
  async function submit(event: TargetedSubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = event.currentTarget;
    const secret = String(new FormData(form).get('secret') ?? '');
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      await call('PUT', `/api/v1/me/credentials/${props.provider}`, { secret });
      setNotice(`${props.label} saved.`);
      props.onChange();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      // Saved or refused, the secret does not stay in the page.
      form.reset();
      setBusy(false);
    }
  }
  return (
    <form class="card" onSubmit={submit} aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>{props.label}</h3>
      <p data-testid={`${id}-state`}>
        {props.configured ? (
          <>
            <strong>Configured</strong>
            {props.hint ? (
              <>
                {' '}
                · <code>{props.hint}</code>
              </>
            ) : null}
          </>
        ) : (
          'Not configured'
        )}
      </p>
      {notice ? <Notice>{notice}</Notice> : null}
      <ErrorNote error={error} />
      <Field id={`${id}-secret`} label={props.configured ? `Replace ${props.label}` : props.label}>
        <input
          id={`${id}-secret`}
          name="secret"
          type="password"
          required
          autocomplete="off"
          spellcheck={false}
        />
      </Field>
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Checking…' : `Save ${props.label}`}
        </button>
        {props.configured ? (
          <ConfirmButton
            label={`Remove ${props.label}`}
            title={`Remove your ${props.label}?`}
            message={<p>Its secret is destroyed; the gateway uses the organisation's key for you again.</p>}
            confirm="Remove"
            danger
            onConfirm={async () => {
              await call('DELETE', `/api/v1/me/credentials/${props.provider}`);
              setNotice(`${props.label} removed.`);
              props.onChange();
            }}
          />
        ) : null}
      </div>
    </form>
  );
}

export function PreferredModel(props: { settings: Loaded<Settings> }) {
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  // The models this gateway serves, as the server says (priced, and allowed when a list is set).
  const served = useLoad(() => get<{ models: string[] }>('/api/v1/me').then((me) => me.models), []);
  const data = props.settings.data;
  if (!data) return null;
  const current = data.preferredModel;
  const models = [...(served.data ?? []), ...(current && !served.data?.includes(current) ? [current] : [])];
  async function submit(event: TargetedSubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    const model = String(new FormData(event.currentTarget).get('model') ?? '').trim();
    setError(null);
    setNotice(null);
    try {
      await call('PATCH', '/api/v1/me/settings', { preferredModel: model || null });
      setNotice(model ? `Preferred model: ${model}.` : 'Preferred model cleared: the default applies.');
      props.settings.reload();
    } catch (e) {
      setError(messageOf(e));
    }
  }
  return (
    <section aria-labelledby="pref-model">
      <h2 id="pref-model">Preferred model</h2>
      <form class="inline" onSubmit={submit}>
        <Field id="model" label="Model">
          <select id="model" name="model" key={`${current ?? ''}-${models.length}`}>
            <option value="" selected={!current}>
              the gateway's default
            </option>
            {models.map((m) => (
              <option key={m} value={m} selected={m === current}>
                {m}
              </option>
            ))}
          </select>
        </Field>
        <button type="submit">Save model</button>
      </form>
      {notice ? <Notice>{notice}</Notice> : null}
      <ErrorNote error={error} />
    </section>
  );
}
