// Server-side sessions. The cookie carries `tgs_…` (256 random bits); the database keeps only its keyed
// hash. A session ends at its absolute expiry, after the idle time, when its person is removed or
// disabled, or when ended (logout, logout everywhere, password change, de-provisioning).
import {
  hashGatewayKey,
  hasPrefixedSecretShape,
  newPrefixedSecret,
  SESSION_TOKEN_PREFIX,
  safeEqualHex,
} from '../crypto/gateway-key.js';
import type { SessionMethod, UserRole } from '../db/schema.js';
import type { Tx } from '../db/tx.js';
import type { ChangeUnit } from '../install/context.js';
import type { Installation } from '../install/installation.js';
import { newId } from '../lib/ids.js';

export interface SessionSettings {
  /** A session unused this long ends. */
  readonly idleMs: number;
  /** A session ends this long after it opened. */
  readonly maxMs: number;
}

export interface SessionPerson {
  readonly id: string;
  readonly name: string;
  readonly email: string | null;
  readonly role: UserRole;
  readonly teamId: string | null;
}

export interface ActiveSession {
  readonly id: string;
  /** The session id the browser presented (never stored). */
  readonly token: string;
  readonly method: SessionMethod;
  readonly createdAt: number;
  readonly expiresAt: number;
  /** When it ends if not used again. */
  readonly idleExpiresAt: number;
  /** null = a session opened with the installation's admin token. */
  readonly person: SessionPerson | null;
  readonly oidcRefresh: string | null;
  readonly oidcCheckedAt: number | null;
}

export interface OpenedSession {
  readonly id: string;
  readonly token: string;
  readonly expiresAt: number;
}

export interface OpenSpec {
  readonly userId: string | null;
  readonly method: SessionMethod;
  readonly ip: string | null;
  readonly userAgent: string | null;
}

/** last_seen_at is written at most this often, so a busy page does not write on every call. */
const TOUCH_EVERY_MS = 60_000;

export function createSessionStore(installation: Installation, settings: SessionSettings) {
  const db = installation.db.kysely;
  const pepper = installation.pepper;

  /** Opens a session in the caller's change (so it commits with what granted it), audited `session.open`. */
  async function open(u: ChangeUnit, spec: OpenSpec): Promise<OpenedSession> {
    const now = u.now;
    const token = newPrefixedSecret(SESSION_TOKEN_PREFIX);
    const id = newId('ses');
    const expiresAt = now + settings.maxMs;
    await u.tx
      .insertInto('sessions')
      .values({
        id,
        hash: hashGatewayKey(pepper, token),
        user_id: spec.userId,
        method: spec.method,
        created_at: now,
        last_seen_at: now,
        expires_at: expiresAt,
        ended_at: null,
        ended_reason: null,
        ip: spec.ip?.slice(0, 64) ?? null,
        user_agent: spec.userAgent?.slice(0, 200) ?? null,
        oidc_refresh: null,
        oidc_checked_at: null,
      })
      .execute();
    await u.audit('session.open', 'session', id, {
      method: spec.method,
      ...(spec.userId === null ? {} : { user_id: spec.userId }),
      ip: spec.ip,
    });
    return { id, token, expiresAt };
  }

  /** The live session for a presented id, or null; the person's standing is read at every call. */
  async function resolve(token: string, now: number): Promise<ActiveSession | null> {
    if (!hasPrefixedSecretShape(token, SESSION_TOKEN_PREFIX)) return null;
    const hash = hashGatewayKey(pepper, token);
    const row = await db
      .selectFrom('sessions')
      .leftJoin('users', 'users.id', 'sessions.user_id')
      .select([
        'sessions.id',
        'sessions.hash',
        'sessions.user_id',
        'sessions.method',
        'sessions.created_at',
        'sessions.last_seen_at',
        'sessions.expires_at',
        'sessions.ended_at',
        'sessions.oidc_refresh',
        'sessions.oidc_checked_at',
        'users.name',
        'users.email',
        'users.role',
        'users.team_id',
        'users.removed_at',
        'users.disabled_at',
      ])
      .where('sessions.hash', '=', hash)
      .executeTakeFirst();
    if (!row || !safeEqualHex(row.hash, hash) || row.ended_at !== null) return null;
    if (row.expires_at <= now || row.last_seen_at + settings.idleMs <= now) return null;
    let person: SessionPerson | null = null;
    if (row.user_id !== null) {
      if (row.name == null || row.role == null) return null;
      if (row.removed_at != null || row.disabled_at != null || row.role === 'service') return null;
      person = {
        id: row.user_id,
        name: row.name,
        email: row.email ?? null,
        role: row.role,
        teamId: row.team_id ?? null,
      };
    }
    let lastSeen = row.last_seen_at;
    if (now - lastSeen >= TOUCH_EVERY_MS) {
      await db.updateTable('sessions').set({ last_seen_at: now }).where('id', '=', row.id).execute();
      lastSeen = now;
    }
    return {
      id: row.id,
      token,
      method: row.method,
      createdAt: row.created_at,
      expiresAt: row.expires_at,
      idleExpiresAt: Math.min(row.expires_at, lastSeen + settings.idleMs),
      person,
      oidcRefresh: row.oidc_refresh,
      oidcCheckedAt: row.oidc_checked_at,
    };
  }

  /** Ends one session; false when it had already ended. */
  async function end(id: string, reason: string, now: number): Promise<boolean> {
    const result = await db
      .updateTable('sessions')
      .set({ ended_at: now, ended_reason: reason })
      .where('id', '=', id)
      .where('ended_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async function recordOidcCheck(id: string, sealedRefresh: string | null, now: number): Promise<void> {
    await db
      .updateTable('sessions')
      .set({ oidc_refresh: sealedRefresh, oidc_checked_at: now })
      .where('id', '=', id)
      .execute();
  }

  return { open, resolve, end, endAllOf, recordOidcCheck, settings };
}

/**
 * Ends every live session of a person (null: every admin-token session) inside the caller's
 * transaction, except `keep`; returns how many ended.
 */
export async function endAllOf(
  tx: Tx,
  userId: string | null,
  reason: string,
  now: number,
  keep: string | null = null,
): Promise<number> {
  let query = tx
    .updateTable('sessions')
    .set({ ended_at: now, ended_reason: reason })
    .where('ended_at', 'is', null)
    .where('expires_at', '>', now);
  query = userId === null ? query.where('user_id', 'is', null) : query.where('user_id', '=', userId);
  if (keep !== null) query = query.where('id', '!=', keep);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows);
}

export type SessionStore = ReturnType<typeof createSessionStore>;
