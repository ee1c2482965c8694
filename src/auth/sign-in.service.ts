// How people (and the installation's admin) get a session: the installation admin token, a password,
// or an invite link that sets a password. Every failure of a password sign-in answers alike — unknown
// person, wrong password, no password yet, disabled — after the same argon2 work, and failures are
// throttled per account and per address.

import { hashGatewayKey, hasValidAdminTokenShape, safeEqualHex } from '../crypto/gateway-key.js';
import type { UserRow } from '../db/schema.js';
import { type Actor, change, type ServiceContext } from '../install/context.js';
import { readMeta } from '../install/meta.repo.js';
import { AppError } from '../lib/errors.js';
import { checkNewPassword, hashPassword, verifyPassword } from './password.js';
import { type ActiveSession, endAllOf, type OpenedSession, type SessionStore } from './session.store.js';
import { accountKey, addressKey, type SignInThrottle } from './sign-in-throttle.js';

export interface ClientInfo {
  readonly ip: string;
  readonly userAgent: string | null;
}

export const WRONG_PASSWORD = 'wrong name or password';
const WRONG_TOKEN = 'that is not the admin token of this installation';

export function createSignInService(
  ctx: ServiceContext,
  deps: { sessions: SessionStore; throttle: SignInThrottle },
) {
  const db = ctx.installation.db.kysely;
  const { sessions, throttle } = deps;

  function refuseIfThrottled(keys: readonly string[]): void {
    const wait = throttle.retryAfter(keys, ctx.clock());
    if (wait > 0)
      throw new AppError('rate_limited', `too many failed sign-ins; try again in ${wait} s`, {
        retry_after_s: wait,
      });
  }

  /** The installation's admin token (printed by `init`) opens an admin session: the first sign-in. */
  async function withAdminToken(token: string, client: ClientInfo): Promise<OpenedSession> {
    const keys = [addressKey(client.ip)];
    refuseIfThrottled(keys);
    const stored = await readMeta(ctx.installation.db, 'admin_token_hash');
    const ok =
      hasValidAdminTokenShape(token) &&
      stored !== null &&
      safeEqualHex(hashGatewayKey(ctx.installation.pepper, token), stored);
    if (!ok) {
      throttle.fail(keys, ctx.clock());
      throw new AppError('unauthenticated', WRONG_TOKEN);
    }
    return change(ctx, { actor: 'admin-token' }, async (u) => {
      return sessions.open(u, { userId: null, method: 'admin-token', ...clientOf(client) });
    });
  }

  /** Name or email and password. */
  async function withPassword(login: string, password: string, client: ClientInfo): Promise<OpenedSession> {
    const keys = [accountKey(login), addressKey(client.ip)];
    refuseIfThrottled(keys);
    const user = await findPerson(login);
    // Always one verification, against a dummy hash when there is no one to check.
    const matches = await verifyPassword(user?.password_hash ?? null, password);
    if (!user || !matches || user.disabled_at !== null) {
      throttle.fail(keys, ctx.clock());
      throw new AppError('unauthenticated', WRONG_PASSWORD);
    }
    throttle.succeed(keys[0] as string);
    return change(ctx, { actor: `user:${user.name}` }, async (u) => {
      return sessions.open(u, { userId: user.id, method: 'password', ...clientOf(client) });
    });
  }

  /** A live person who may hold a session, by name or email (case-insensitive email); null otherwise. */
  async function findPerson(login: string): Promise<UserRow | null> {
    const text = login.trim().slice(0, 200);
    if (text === '') return null;
    const rows = await db
      .selectFrom('users')
      .selectAll()
      .where('removed_at', 'is', null)
      .where('role', '!=', 'service')
      .where((eb) => eb.or([eb('name', '=', text), eb(eb.fn('lower', ['email']), '=', text.toLowerCase())]))
      .limit(2)
      .execute();
    // Two people sharing an email cannot sign in by it: which one would be ambiguous.
    const byName = rows.find((r) => r.name === text);
    if (byName) return byName;
    return rows.length === 1 ? (rows[0] ?? null) : null;
  }

  /** Changes the password of the signed-in person; their other sessions end. */
  async function changePassword(session: ActiveSession, current: string, next: string, client: ClientInfo) {
    const person = session.person;
    if (!person)
      throw new AppError('forbidden', 'the installation admin has no password; sign in as a person');
    const keys = [accountKey(person.name), addressKey(client.ip)];
    refuseIfThrottled(keys);
    const row = await db
      .selectFrom('users')
      .select('password_hash')
      .where('id', '=', person.id)
      .executeTakeFirst();
    if (!(await verifyPassword(row?.password_hash ?? null, current))) {
      throttle.fail(keys, ctx.clock());
      throw new AppError('unauthenticated', 'the current password is wrong', {
        fields: ['current_password'],
      });
    }
    checkNewPassword(next, person);
    const hash = await hashPassword(next);
    return change(ctx, { actor: `user:${person.name}` }, async (u) => {
      await u.tx.updateTable('users').set({ password_hash: hash }).where('id', '=', person.id).execute();
      const ended = await endAllOf(u.tx, person.id, 'password changed', u.now, session.id);
      await u.audit('user.password_change', 'user', person.id, { ended_sessions: ended });
      return { endedSessions: ended };
    });
  }

  /** Ends this session. */
  async function logout(session: ActiveSession): Promise<void> {
    await change(ctx, actorOf(session), async (u) => {
      await u.tx
        .updateTable('sessions')
        .set({ ended_at: u.now, ended_reason: 'logout' })
        .where('id', '=', session.id)
        .where('ended_at', 'is', null)
        .execute();
      await u.audit('session.end', 'session', session.id, { reason: 'logout' });
    });
  }

  /** Ends every session of the signed-in person (for the admin-token session: every admin-token session). */
  async function logoutEverywhere(session: ActiveSession): Promise<number> {
    return change(ctx, actorOf(session), async (u) => {
      const ended = await endAllOf(u.tx, session.person?.id ?? null, 'logout everywhere', u.now);
      await u.audit(
        'session.end_all',
        session.person ? 'user' : 'org',
        session.person?.id ?? ctx.installation.orgId,
        {
          ended_sessions: ended,
        },
      );
      return ended;
    });
  }

  return { withAdminToken, withPassword, changePassword, logout, logoutEverywhere, refuseIfThrottled };
}

export function actorOf(session: ActiveSession): Actor {
  if (!session.person) return { actor: 'admin-token' };
  return {
    actor: session.person.role === 'admin' ? `admin:${session.person.name}` : `user:${session.person.name}`,
  };
}

function clientOf(client: ClientInfo): { ip: string; userAgent: string | null } {
  return { ip: client.ip, userAgent: client.userAgent };
}

export type SignInService = ReturnType<typeof createSignInService>;
