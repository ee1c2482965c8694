// What a sign-in form posted without script gets back when it is refused (and what a failed single
// sign-on shows): plain server-rendered forms, no script, no external resource, under a CSP that
// allows nothing else (FORM_PAGE_CSP, http/security-headers.ts). The pages people open are the
// dashboard's. Every value shown is HTML-escaped.

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Tollgate</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}
form{display:grid;gap:.5rem;margin:1.5rem 0}input,button{font:inherit;padding:.5rem}button{cursor:pointer}
.error{color:#a00000}hr{margin:2rem 0}</style></head>
<body><main><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`;
}

function errorLine(error: string | null): string {
  return error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : '';
}

/** The sign-in page: password, the installation admin token, and single sign-on when configured. */
export function loginPage(options: { error: string | null; oidc: boolean }): string {
  const sso = options.oidc ? '<p><a href="/auth/oidc/login">Sign in with single sign-on</a></p><hr>' : '';
  return page(
    'Sign in',
    `${errorLine(options.error)}${sso}
<form method="post" action="/auth/login">
<label for="login">Name or email</label><input id="login" name="login" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form><hr>
<form method="post" action="/auth/login">
<label for="token">Admin token</label><input id="token" name="token" type="password" autocomplete="off" required>
<button type="submit">Sign in with the admin token</button></form>`,
  );
}

/** The page an invite link opens: choose a password (the form posts back to the link, never repeating it). */
export function invitePage(options: { user: string | null; error: string | null }): string {
  if (options.user === null) return page('Invite link', errorLine(options.error));
  return page(
    'Choose a password',
    `<p>Welcome, ${escapeHtml(options.user)}. Choose a password of at least 12 characters.</p>${errorLine(options.error)}
<form method="post">
<label for="password">New password</label><input id="password" name="password" type="password" autocomplete="new-password" minlength="12" required>
<button type="submit">Set password and sign in</button></form>`,
  );
}
