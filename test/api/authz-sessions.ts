// The dashboard sessions the authorization matrix calls with, each opened over HTTP as a browser would
// (invite link → password, password sign-in, the installation admin token). The ended ones belong to an
// admin, whose live session may do everything: so their 401s can only come from the session having ended.
import { expect } from 'vitest';
import { type SessionClient, signIn } from '../helpers/browser-session.js';
import type { Person, World } from './authz-fixtures.js';

export interface MatrixSessions {
  /** Member A (alice), signed in through an invite link. */
  member: SessionClient;
  /** An admin person, signed in through an invite link. */
  admin: SessionClient;
  adminPerson: Person;
  /** The installation admin token's session. */
  installation: SessionClient;
  /** The admin's sessions, ended past their absolute expiry, their idle time, and by logout. */
  expired: SessionClient;
  idle: SessionClient;
  loggedOut: SessionClient;
}

const MEMBER_PASSWORD = 'matrix member password';
const ADMIN_PASSWORD = 'matrix admin password';

async function throughInvite(w: World, name: string, password: string): Promise<SessionClient> {
  const invite = await w.h.services.invites.issue(w.h.admin, name);
  const token = invite.url.split('/invite/')[1] ?? '';
  return signIn(w.h.url, `/invite/${token}`, { password });
}

/** A session that answers before it is ended (the control for its refusals later). */
async function live(session: SessionClient): Promise<SessionClient> {
  expect((await session.call('GET', '/auth/session')).status).toBe(200);
  return session;
}

export async function openSessions(w: World): Promise<MatrixSessions> {
  const { h } = w;
  const ada = await h.services.users.add(h.admin, { name: 'ada', role: 'admin' });
  const member = await live(await throughInvite(w, w.a.name, MEMBER_PASSWORD));
  // Accepting an invite ends the person's other sessions, so the password sign-ins come after it.
  const admin = await live(await throughInvite(w, 'ada', ADMIN_PASSWORD));
  const installation = await live(await signIn(h.url, '/auth/login', { token: h.adminToken }));
  const again = async () =>
    live(await signIn(h.url, '/auth/login', { login: 'ada', password: ADMIN_PASSWORD }));
  const [expired, idle, loggedOut] = [await again(), await again(), await again()];

  const db = h.installation.db.kysely;
  const now = Date.now();
  await db
    .updateTable('sessions')
    .set({ expires_at: now - 1000 })
    .where('id', '=', expired.json.session_id)
    .execute();
  const idleMs = h.config.auth.session_idle_minutes * 60_000;
  await db
    .updateTable('sessions')
    .set({ last_seen_at: now - idleMs - 1000 })
    .where('id', '=', idle.json.session_id)
    .execute();
  expect((await loggedOut.call('POST', '/auth/logout')).status).toBe(200);
  return { member, admin, adminPerson: { id: ada.id, name: 'ada' }, installation, expired, idle, loggedOut };
}
