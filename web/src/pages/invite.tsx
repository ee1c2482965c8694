// The page an invite link opens: who it is for, then choose a password, which signs the person in.
// The link's token stays in this page's memory and the address bar; the server sends no-referrer.
import type { TargetedSubmitEvent } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { call, get } from '../api.js';
import type { PageProps } from '../routes.js';
import { ErrorNote, Field, Loading, messageOf } from '../ui/kit.js';
import { Bare } from '../ui/layout.js';
import { landingFor } from './login.js';

interface InviteInfo {
  user: string;
  expires_at: string;
}

export function InvitePage(props: PageProps) {
  const token = props.params.token ?? '';
  const [info, setInfo] = useState<InviteInfo | null>(null);
  const [linkError, setLinkError] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    document.title = 'Choose a password · Tollgate';
    get<InviteInfo>(`/auth/invite/${encodeURIComponent(token)}`).then(setInfo, (e) =>
      setLinkError(messageOf(e)),
    );
  }, [token]);

  async function submit(event: TargetedSubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const password = String(data.get('password') ?? '');
    const again = String(data.get('password-again') ?? '');
    if (password !== again) {
      setError('The two passwords differ.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const session = await call<{ role: string }>('POST', `/invite/${encodeURIComponent(token)}`, {
        password,
      });
      form.reset();
      location.assign(landingFor(session.role));
    } catch (e) {
      setError(messageOf(e));
      setBusy(false);
    }
  }

  return (
    <Bare>
      <h1>Choose a password</h1>
      {linkError ? (
        <>
          <ErrorNote error={linkError} />
          <p>
            Ask an admin for a new link, or <a href="/login">go to sign-in</a>.
          </p>
        </>
      ) : !info ? (
        <Loading what="the invite" />
      ) : (
        <form class="card" onSubmit={submit}>
          <p>
            Welcome, <strong>{info.user}</strong>. Choose a password of at least 12 characters; this link then
            stops working.
          </p>
          <ErrorNote error={error} />
          <Field id="password" label="New password">
            <input
              id="password"
              name="password"
              type="password"
              autocomplete="new-password"
              minLength={12}
              required
            />
          </Field>
          <Field id="password-again" label="New password, again">
            <input
              id="password-again"
              name="password-again"
              type="password"
              autocomplete="new-password"
              minLength={12}
              required
            />
          </Field>
          <button type="submit" class="primary" disabled={busy}>
            Set password and sign in
          </button>
        </form>
      )}
    </Bare>
  );
}
