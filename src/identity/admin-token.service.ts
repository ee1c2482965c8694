// Admin API tokens: personal tokens of admin users (`admin_tokens`, audited as `admin:NAME`) and the
// installation's own token (meta `admin_token_hash`). Only keyed hashes are stored; a token is shown
// once, when it is made, and never reaches the audit log (its hint does).

import { endAllOf } from '../auth/session.store.js';
import { adminTokenHint, hashGatewayKey, newAdminToken } from '../crypto/gateway-key.js';
import type { UserRole } from '../db/schema.js';
import type { Tx } from '../db/tx.js';
import { type Actor, change, type ServiceContext } from '../install/context.js';
import { writeMeta } from '../install/meta.repo.js';
import { AppError } from '../lib/errors.js';
import { newId } from '../lib/ids.js';
import { validateName } from '../lib/validate.js';

/**
 * `active`: it authenticates; `revoked`: revoked by an admin; `inactive`: not revoked, but its holder
 * was removed or is no longer an admin, so the principal check refuses it at every call.
 */
export type AdminTokenStatus = 'active' | 'revoked' | 'inactive';

export interface AdminTokenView {
  id: string;
  userId: string;
  user: string;
  name: string | null;
  hint: string;
  status: AdminTokenStatus;
  createdAt: number;
  createdBy: string;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

export interface IssuedAdminToken {
  view: AdminTokenView;
  /** The token itself: returned once, never stored. */
  token: string;
}

interface JoinedRow {
  id: string;
  user_id: string;
  name: string | null;
  hint: string;
  created_at: number;
  created_by: string;
  last_used_at: number | null;
  revoked_at: number | null;
  user_name: string;
  role: UserRole;
  removed_at: number | null;
}

/**
 * Marks every live token of a user revoked, inside the caller's write transaction. For the user
 * service's `remove` and a demotion from admin: the principal already refuses such tokens at each
 * call, this makes the list say so and keeps them dead if the user is ever promoted again.
 */
export async function revokeAdminTokensOf(tx: Tx, userId: string, now: number): Promise<number> {
  const rows = await tx
    .updateTable('admin_tokens')
    .set({ revoked_at: now })
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .returning('id')
    .execute();
  return rows.length;
}

export function createAdminTokenService(ctx: ServiceContext) {
  const { installation } = ctx;
  const db = installation.db.kysely;

  function rows() {
    return db
      .selectFrom('admin_tokens')
      .innerJoin('users', 'users.id', 'admin_tokens.user_id')
      .select([
        'admin_tokens.id',
        'admin_tokens.user_id',
        'admin_tokens.name',
        'admin_tokens.hint',
        'admin_tokens.created_at',
        'admin_tokens.created_by',
        'admin_tokens.last_used_at',
        'admin_tokens.revoked_at',
        'users.name as user_name',
        'users.role',
        'users.removed_at',
      ]);
  }

  /** Issues a personal token to a live admin user; the token is in the answer only. */
  async function issue(by: Actor, input: { user: string; name?: string | null }): Promise<IssuedAdminToken> {
    const name = input.name == null ? null : validateName('token', input.name);
    return change(ctx, by, async (u) => {
      // Read in the transaction: a user removed or demoted meanwhile cannot receive a token.
      const user = await u.tx
        .selectFrom('users')
        .select(['id', 'name', 'role'])
        .where('removed_at', 'is', null)
        .where((eb) => eb.or([eb('name', '=', input.user), eb('id', '=', input.user)]))
        .executeTakeFirst();
      if (!user) throw new AppError('not_found', `no user named ${input.user}`);
      if (user.role !== 'admin')
        throw new AppError(
          'invalid_input',
          `${user.name} is a ${user.role}, not an admin: personal admin tokens are only issued to admin users`,
        );
      const token = newAdminToken();
      const hint = adminTokenHint(token);
      const id = newId('atk');
      await u.tx
        .insertInto('admin_tokens')
        .values({
          id,
          user_id: user.id,
          name,
          hash: hashGatewayKey(installation.pepper, token),
          hint,
          created_at: u.now,
          created_by: by.actor,
          last_used_at: null,
          revoked_at: null,
        })
        .execute();
      await u.audit('admin_token.issue', 'admin_token', id, { user_id: user.id, name, hint });
      return {
        token,
        view: {
          id,
          userId: user.id,
          user: user.name,
          name,
          hint,
          status: 'active',
          createdAt: u.now,
          createdBy: by.actor,
          lastUsedAt: null,
          revokedAt: null,
        },
      };
    });
  }

  /** Every personal token (revoked ones too), oldest first; `user` (name or id) narrows to one holder. */
  async function list(filter: { user?: string } = {}): Promise<AdminTokenView[]> {
    let query = rows().orderBy('admin_tokens.created_at').orderBy('admin_tokens.id');
    const ref = filter.user;
    if (ref !== undefined) {
      const user = await db
        .selectFrom('users')
        .select('id')
        .where('removed_at', 'is', null)
        .where((eb) => eb.or([eb('name', '=', ref), eb('id', '=', ref)]))
        .executeTakeFirst();
      if (!user) throw new AppError('not_found', `no user named ${ref}`);
      query = query.where('admin_tokens.user_id', '=', user.id);
    }
    return (await query.execute()).map(view);
  }

  async function get(id: string): Promise<AdminTokenView> {
    const row = await rows().where('admin_tokens.id', '=', id).executeTakeFirst();
    if (!row) throw new AppError('not_found', `no admin token ${id}`);
    return view(row);
  }

  /** Revokes a personal token; it stops at the next call (the principal reads `revoked_at` each time). */
  async function revoke(by: Actor, id: string): Promise<AdminTokenView> {
    const token = await get(id);
    if (token.revokedAt !== null) throw new AppError('conflict', `admin token ${id} is already revoked`);
    await change(ctx, by, async (u) => {
      await u.tx.updateTable('admin_tokens').set({ revoked_at: u.now }).where('id', '=', id).execute();
      await u.audit('admin_token.revoke', 'admin_token', id, { user_id: token.userId, hint: token.hint });
    });
    return get(id);
  }

  /** Replaces the installation's admin token; the old one stops at once (only its hash was stored). */
  async function rotateInstallation(by: Actor): Promise<{ token: string; hint: string }> {
    const token = newAdminToken();
    const hint = adminTokenHint(token);
    await change(ctx, by, async (u) => {
      await writeMeta(u.tx, 'admin_token_hash', hashGatewayKey(installation.pepper, token));
      // Dashboard sessions opened with the old token end with it.
      const ended = await endAllOf(u.tx, null, 'admin token rotated', u.now);
      await u.audit('admin_token.rotate', 'org', installation.orgId, { hint, ended_sessions: ended });
    });
    return { token, hint };
  }

  return { issue, list, get, revoke, rotateInstallation };
}

function view(row: JoinedRow): AdminTokenView {
  const status: AdminTokenStatus =
    row.revoked_at !== null
      ? 'revoked'
      : row.removed_at !== null || row.role !== 'admin'
        ? 'inactive'
        : 'active';
  return {
    id: row.id,
    userId: row.user_id,
    user: row.user_name,
    name: row.name,
    hint: row.hint,
    status,
    createdAt: Number(row.created_at),
    createdBy: row.created_by,
    lastUsedAt: row.last_used_at === null ? null : Number(row.last_used_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
  };
}

export type AdminTokenService = ReturnType<typeof createAdminTokenService>;
