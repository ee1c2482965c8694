// Sign in: name-or-email and password, the installation admin token (field `token`), and single
// sign-on when the server has OIDC configured. Posts JSON to /auth/login; the session cookie is set by
// the answer, never seen by the script.
import type { TargetedSubmitEvent } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { call, get } from '../api.js';
import { ErrorNote, Field, messageOf } from '../ui/kit.js';
import { Bare, NAV } from '../ui/layout.js';

interface Methods {
  oidc: boolean;
}

interface SignedIn {
  role: string;
}

export function landingFor(role: string): string {
  return role === 'admin' ? (NAV[0]?.href ?? '/') : '/settings';
}

export function LoginPage() {
  const [methods, setMethods] = useState<Methods | null>(null);
  const [error, setError] = useState<string | null>(() => new URLSearchParams(location.search).get('error'));
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    document.title = 'Sign in · Tollgate';
    get<Methods>('/auth/methods').then(setMethods, () => setMethods({ oidc: false }));
  }, []);

  async function submit(event: TargetedSubmitEvent<HTMLFormElement>, body: Record<string, string>) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const session = await call<SignedIn>('POST', '/auth/login', body);
      location.assign(landingFor(session.role));
    } catch (e) {
      setError(messageOf(e));
      setBusy(false);
    }
  }

  function values(form: HTMLFormElement, ...names: string[]): Record<string, string> {
    const data = new FormData(form);
    return Object.fromEntries(names.map((n) => [n, String(data.get(n) ?? '')]));
  }

  return (
    <Bare>
      <h1>Sign in</h1>
      <ErrorNote error={error} />
      {methods?.oidc ? (
        <p>
          <a class="button primary" href="/auth/oidc/login">
            Sign in with SSO
          </a>
        </p>
      ) : null}
      <form
        class="card"
        aria-labelledby="password-heading"
        onSubmit={(e) => submit(e, values(e.currentTarget, 'login', 'password'))}
      >
        <h2 id="password-heading">With your password</h2>
        <Field id="login" label="Name or email">
          <input id="login" name="login" autocomplete="username" required />
        </Field>
        <Field id="password" label="Password">
          <input id="password" name="password" type="password" autocomplete="current-password" required />
        </Field>
        <button type="submit" class="primary" disabled={busy}>
          Sign in
        </button>
      </form>
      <form
        class="card"
        aria-labelledby="token-heading"
        onSubmit={(e) => {
          const body = values(e.currentTarget, 'token');
          e.currentTarget.reset();
          return submit(e, body);
        }}
      >
        <h2 id="token-heading">With the admin token</h2>
        <Field id="token" label="Admin token" hint="The installation admin token printed by tollgate init.">
          <input
            id="token"
            name="token"
            type="password"
            autocomplete="off"
            aria-describedby="token-hint"
            required
          />
        </Field>
        <button type="submit" disabled={busy}>
          Sign in with the admin token
        </button>
      </form>
    </Bare>
  );
}
