// Every page and its URL. The server serves the same shell for each of these paths
// (src/http/dashboard.routes.ts keeps the same list); the shell's script renders the page.
import type { JSX } from 'preact';
import type { Session } from './api.js';
import { AnthropicPage } from './pages/anthropic.js';
import { AuditPage } from './pages/audit.js';
import { CredentialsPage } from './pages/credentials.js';
import { InvitePage } from './pages/invite.js';
import { KeysPage } from './pages/keys.js';
import { LoginPage } from './pages/login.js';
import { NotFoundPage } from './pages/not-found.js';
import { OverviewPage } from './pages/overview.js';
import { SettingsPage } from './pages/settings.js';
import { UsagePage } from './pages/usage.js';
import { UsersPage } from './pages/users.js';

export interface PageProps {
  /** Null only on public pages. */
  session: Session | null;
  params: Record<string, string>;
}

/** The props of a page that needs a signed-in session. */
export interface SignedInProps {
  session: Session;
  params: Record<string, string>;
}

interface RouteDef {
  pattern: RegExp;
  keys: readonly string[];
  /** Reachable signed out (sign-in pages). */
  public: boolean;
  /** Admins only; members are sent to their settings. */
  admin: boolean;
  render: (props: PageProps) => JSX.Element;
}

const signedIn =
  (Page: (props: SignedInProps) => JSX.Element) =>
  (props: PageProps): JSX.Element => <Page session={props.session as Session} params={props.params} />;

const ROUTES: readonly RouteDef[] = [
  { pattern: /^\/login$/, keys: [], public: true, admin: false, render: () => <LoginPage /> },
  {
    pattern: /^\/invite\/([^/]+)$/,
    keys: ['token'],
    public: true,
    admin: false,
    render: (p) => <InvitePage {...p} />,
  },
  { pattern: /^\/$/, keys: [], public: false, admin: true, render: signedIn(OverviewPage) },
  { pattern: /^\/users$/, keys: [], public: false, admin: true, render: signedIn(UsersPage) },
  { pattern: /^\/keys$/, keys: [], public: false, admin: true, render: signedIn(KeysPage) },
  { pattern: /^\/credentials$/, keys: [], public: false, admin: true, render: signedIn(CredentialsPage) },
  { pattern: /^\/usage$/, keys: [], public: false, admin: true, render: signedIn(UsagePage) },
  { pattern: /^\/audit$/, keys: [], public: false, admin: true, render: signedIn(AuditPage) },
  { pattern: /^\/anthropic$/, keys: [], public: false, admin: true, render: signedIn(AnthropicPage) },
  { pattern: /^\/settings$/, keys: [], public: false, admin: false, render: signedIn(SettingsPage) },
];

export interface Matched {
  path: string;
  public: boolean;
  admin: boolean;
  params: Record<string, string>;
  render: (props: PageProps) => JSX.Element;
}

export function findRoute(path: string): Matched {
  for (const route of ROUTES) {
    const m = route.pattern.exec(path);
    if (!m) continue;
    const params: Record<string, string> = {};
    route.keys.forEach((key, i) => {
      params[key] = decodeURIComponent(m[i + 1] ?? '');
    });
    return { path, public: route.public, admin: route.admin, params, render: route.render };
  }
  return { path, public: false, admin: false, params: {}, render: signedIn(NotFoundPage) };
}
