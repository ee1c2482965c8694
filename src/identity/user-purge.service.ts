// `tollgate user purge NAME`: erases a person's personal data (a data-subject deletion request) while the
// ledger, budgets and audit chain keep adding up.
//
// The person's row stays as a tombstone under a pseudonym (`purged-<random>`): usage records, rollups,
// spend and budgets reference the person by id only (`usr_…`), so their sums per key, team and org are
// untouched, and `usage --by user` shows the pseudonym. Name, email, password hash, OIDC subject and
// settings are cleared; sessions, invites and enrollment codes are deleted; gateway keys and admin tokens
// revoked (their names cleared); the person's own credentials crypto-shredded (sealed blobs emptied, names
// replaced); Claude Code analytics rows keyed by their email re-keyed to the pseudonym; their name and
// email removed from alert texts. Their data key is destroyed, so the personal fields of their audit
// entries (sealed under it, audit/personal.ts) read `[purged]` while the chain still verifies.
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { shredPersonKey } from '../audit/person-keys.repo.js';
import type { UserRow } from '../db/schema.js';
import type { Tx } from '../db/tx.js';
import { type Actor, change, type ServiceContext } from '../install/context.js';
import { AppError } from '../lib/errors.js';
import { revokeAdminTokensOf } from './admin-token.service.js';

export interface PurgeResult {
  readonly id: string;
  /** The name the person's records now carry. */
  readonly pseudonym: string;
  readonly revokedKeys: number;
  readonly shreddedCredentials: number;
  readonly endedSessions: number;
}

export const PSEUDONYM_PREFIX = 'purged-';

export function createUserPurge(ctx: ServiceContext) {
  const db = ctx.installation.db.kysely;

  /** A person by id, or by name: the live one first, else the only removed one of that name. */
  async function find(nameOrId: string): Promise<UserRow> {
    const rows = await db
      .selectFrom('users')
      .selectAll()
      .where((eb) => eb.or([eb('name', '=', nameOrId), eb('id', '=', nameOrId)]))
      .execute();
    const byId = rows.find((r) => r.id === nameOrId);
    if (byId) return byId;
    const live = rows.find((r) => r.removed_at === null);
    if (live) return live;
    const [only, ...more] = rows;
    if (!only) throw new AppError('not_found', `no user named ${nameOrId}`);
    if (more.length > 0)
      throw new AppError(
        'conflict',
        `${rows.length} removed users were named ${nameOrId}; purge each by its id (${rows.map((r) => r.id).join(', ')})`,
      );
    return only;
  }

  async function purge(by: Actor, nameOrId: string): Promise<PurgeResult> {
    const user = await find(nameOrId);
    const pseudonym = `${PSEUDONYM_PREFIX}${randomBytes(6).toString('hex')}`;
    return change(ctx, by, async (u) => {
      const shredded = await shredPersonKey(u.tx, user.id, u.now);
      // Only a purge leaves a shredded key behind.
      if (!shredded) throw new AppError('conflict', `${user.name} has already been purged`);
      await refuseLastAdmin(u.tx, user);

      const keys = await u.tx
        .updateTable('gateway_keys')
        .set({ status: 'revoked', revoked_at: sql`coalesce(revoked_at, ${u.now})`, name: null })
        .where('user_id', '=', user.id)
        .returning(['id', 'status'])
        .execute();
      await revokeAdminTokensOf(u.tx, user.id, u.now);
      await u.tx.updateTable('admin_tokens').set({ name: null }).where('user_id', '=', user.id).execute();
      const sessions = await u.tx.deleteFrom('sessions').where('user_id', '=', user.id).executeTakeFirst();
      await u.tx.deleteFrom('invites').where('user_id', '=', user.id).execute();
      await u.tx.deleteFrom('enrollment_codes').where('user_id', '=', user.id).execute();
      const creds = await shredCredentials(u.tx, user.id, pseudonym, u.now);

      // Objects the person made name them as their maker (`admin:<name>`): renamed to the pseudonym.
      for (const kind of ['user', 'admin', 'enroll']) {
        for (const table of ['gateway_keys', 'admin_tokens', 'enrollment_codes'] as const) {
          await u.tx
            .updateTable(table)
            .set({ created_by: `${kind}:${pseudonym}` })
            .where('created_by', '=', `${kind}:${user.name}`)
            .execute();
        }
      }
      if (user.email) {
        await u.tx
          .updateTable('anthropic_claude_code')
          .set({ actor: pseudonym })
          .where('actor', '=', user.email)
          .where('actor_kind', '=', 'user')
          .execute();
      }
      for (const text of [user.name, user.email]) {
        if (!text) continue;
        await u.tx
          .updateTable('alerts')
          .set({
            message: sql`replace(message, ${text}, ${pseudonym})`,
            payload: sql`replace(payload, ${text}, ${pseudonym})`,
          })
          .where((eb) => eb.or([eb('message', 'like', `%${text}%`), eb('payload', 'like', `%${text}%`)]))
          .execute();
      }
      await u.tx
        .updateTable('users')
        .set({
          name: pseudonym,
          email: null,
          password_hash: null,
          oidc_subject: null,
          preferred_model: null,
          byok: null,
          key_ceiling: null,
          removed_at: user.removed_at ?? u.now,
          disabled_at: user.disabled_at ?? u.now,
        })
        .where('id', '=', user.id)
        .execute();

      // No personal data here: the id was never personal by itself, and the pseudonym is random.
      await u.audit('user.purge', 'user', user.id, {
        pseudonym,
        revoked_keys: keys.length,
        shredded_credentials: creds.length,
        ended_sessions: Number(sessions.numDeletedRows),
      });
      await u.changed('user', user.id);
      for (const k of keys) await u.changed('key', k.id);
      for (const c of creds) await u.changed('credential', c);
      return {
        id: user.id,
        pseudonym,
        revokedKeys: keys.length,
        shreddedCredentials: creds.length,
        endedSessions: Number(sessions.numDeletedRows),
      };
    });
  }

  return { purge, find };
}

/** Refuses to purge the last admin who can still act (live and not disabled). */
async function refuseLastAdmin(tx: Tx, user: UserRow): Promise<void> {
  if (user.role !== 'admin' || user.removed_at !== null || user.disabled_at !== null) return;
  const others = await tx
    .selectFrom('users')
    .select('id')
    .where('role', '=', 'admin')
    .where('removed_at', 'is', null)
    .where('disabled_at', 'is', null)
    .where('id', '!=', user.id)
    .limit(1)
    .execute();
  if (others.length === 0)
    throw new AppError('conflict', `${user.name} is the last admin; make another person an admin first`);
}

/** The person's own credentials: secrets destroyed, names and hints replaced; returns their ids. */
async function shredCredentials(tx: Tx, userId: string, pseudonym: string, now: number): Promise<string[]> {
  const rows = await tx
    .selectFrom('credentials')
    .select(['id', 'removed_at'])
    .where('owner_type', '=', 'user')
    .where('owner_id', '=', userId)
    .orderBy('id')
    .execute();
  for (const [i, row] of rows.entries()) {
    const name = `${pseudonym}-credential-${i + 1}`;
    await tx
      .updateTable('credentials')
      .set({
        name,
        hint: '',
        status: 'inactive',
        ciphertext: Buffer.alloc(0),
        wrapped_key: Buffer.alloc(0),
        removed_at: row.removed_at ?? now,
        updated_at: now,
      })
      .where('id', '=', row.id)
      .execute();
    await tx
      .updateTable('key_retirements')
      .set({ credential_name: name })
      .where('credential_id', '=', row.id)
      .execute();
  }
  return rows.map((r) => r.id);
}

export type UserPurge = ReturnType<typeof createUserPurge>;
