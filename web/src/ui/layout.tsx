// The frame of every signed-in page: a skip link, the navigation (ordinary links; admins see the
// admin pages), who is signed in, and sign-out.
import type { ComponentChildren } from 'preact';
import { type Session, signOut } from '../api.js';

interface NavItem {
  href: string;
  label: string;
  admin: boolean;
}

export const NAV: readonly NavItem[] = [
  { href: '/', label: 'Overview', admin: true },
  { href: '/users', label: 'Users & teams', admin: true },
  { href: '/keys', label: 'Gateway keys', admin: true },
  { href: '/credentials', label: 'Credentials', admin: true },
  { href: '/usage', label: 'Usage', admin: true },
  { href: '/audit', label: 'Audit log', admin: true },
  { href: '/anthropic', label: 'Anthropic', admin: true },
  { href: '/settings', label: 'My settings', admin: false },
];

export function isAdmin(session: Session): boolean {
  return session.role === 'admin';
}

export function Layout(props: { session: Session; path: string; children: ComponentChildren }) {
  const admin = isAdmin(props.session);
  const who = props.session.user ? props.session.user.name : 'installation admin';
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={admin ? '/' : '/settings'}>
          Tollgate
        </a>
        <nav aria-label="Main">
          <ul>
            {NAV.filter((item) => admin || !item.admin).map((item) => (
              <li key={item.href}>
                <a href={item.href} aria-current={item.href === props.path ? 'page' : undefined}>
                  {item.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span>
            Signed in as <strong>{who}</strong>
          </span>
          <button type="button" class="link" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {props.children}
      </main>
    </>
  );
}

/** The frame of the pages before sign-in. */
export function Bare(props: { children: ComponentChildren }) {
  return (
    <main id="main" class="bare">
      <p class="brand">Tollgate</p>
      {props.children}
    </main>
  );
}
