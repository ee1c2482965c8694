// What an admin sees and does with a person's sessions: list the live ones (never their hashes) and
// end them all ("log out everywhere" on their behalf), audited as `session.end_all`.
import type { SessionMethod } from '../db/schema.js';
import type { UserService } from '../identity/user.service.js';
import { type Actor, change, type ServiceContext } from '../install/context.js';
import { endAllOf, type SessionSettings } from './session.store.js';

export interface SessionView {
  readonly id: string;
  readonly method: SessionMethod;
  readonly createdAt: number;
  readonly lastSeenAt: number;
  readonly expiresAt: number;
  readonly ip: string | null;
  readonly userAgent: string | null;
}

export function createSessionAdmin(
  ctx: ServiceContext,
  deps: { users: UserService; settings: SessionSettings },
) {
  const db = ctx.installation.db.kysely;

  /** The person's sessions still live now (not ended, not past their expiry or idle time). */
  async function listOf(nameOrId: string): Promise<SessionView[]> {
    const user = await deps.users.get(nameOrId);
    const now = ctx.clock();
    const rows = await db
      .selectFrom('sessions')
      .select(['id', 'method', 'created_at', 'last_seen_at', 'expires_at', 'ip', 'user_agent'])
      .where('user_id', '=', user.id)
      .where('ended_at', 'is', null)
      .where('expires_at', '>', now)
      .where('last_seen_at', '>', now - deps.settings.idleMs)
      .execute();
    return rows.map((r) => ({
      id: r.id,
      method: r.method,
      createdAt: r.created_at,
      lastSeenAt: r.last_seen_at,
      expiresAt: r.expires_at,
      ip: r.ip,
      userAgent: r.user_agent,
    }));
  }

  /** Ends every session of the person; returns how many ended. */
  async function endAll(by: Actor, nameOrId: string): Promise<{ user: string; endedSessions: number }> {
    const user = await deps.users.get(nameOrId);
    return change(ctx, by, async (u) => {
      const ended = await endAllOf(u.tx, user.id, 'ended by an admin', u.now);
      await u.audit('session.end_all', 'user', user.id, { ended_sessions: ended, by_admin: true });
      return { user: user.name, endedSessions: ended };
    });
  }

  return { listOf, endAll };
}

export type SessionAdmin = ReturnType<typeof createSessionAdmin>;
