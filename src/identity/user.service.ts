// Users: people (admin, member) and service accounts, each with an optional team and monthly budget.
import { endAllOf } from '../auth/session.store.js';
import { budgetsOf, setBudget } from '../budgets/budget.repo.js';
import type { ByokPolicy, UserRole, UserRow } from '../db/schema.js';
import type { Tx } from '../db/tx.js';
import { type Actor, type ChangeUnit, change, type ServiceContext } from '../install/context.js';
import { decodeList } from '../keys/key-policy.js';
import { AppError } from '../lib/errors.js';
import { newId } from '../lib/ids.js';
import { oneOf, validateEmail, validateName } from '../lib/validate.js';
import { revokeAdminTokensOf } from './admin-token.service.js';
import type { TeamService } from './team.service.js';

export const USER_ROLES = ['admin', 'member', 'service'] as const satisfies readonly UserRole[];

export interface NewUserInput {
  name: string;
  email?: string | null;
  role?: UserRole;
  team?: string | null;
  /** Monthly budget; undefined takes the configured default for new users, null means none. */
  monthlyBudgetMicro?: number | null;
  /** The user's own bring-your-own-key policy; null or undefined inherits the team's. */
  byok?: ByokPolicy | null;
}

/** Changes to a user; a field left out stays as it is. */
export interface UserUpdate {
  /** null clears the email. */
  email?: string | null;
  role?: UserRole;
  /** A team name or id; null takes the user out of their team. */
  team?: string | null;
  /** null removes the monthly budget. */
  monthlyBudgetMicro?: number | null;
  /** null inherits the team's policy. */
  byok?: ByokPolicy | null;
  /** The id of the key profile bounding the keys the person issues themselves; null removes it. */
  keyCeilingId?: string | null;
}

export interface UserView {
  id: string;
  name: string;
  email: string | null;
  role: UserRole;
  team: string | null;
  teamId: string | null;
  createdAt: number;
  monthlyBudgetMicro: number | null;
  activeKeys: number;
  /** The user's own setting; null = the team's policy applies. */
  byok: ByokPolicy | null;
  preferredModel: string | null;
  disabledAt: number | null;
  /** A password has been set (through an invite link); the hash itself never leaves the service. */
  passwordSet: boolean;
  /** Signed in through the identity provider (an OIDC subject is linked). */
  sso: boolean;
  /** The name of the key profile bounding the keys the person issues themselves; null = the default. */
  keyCeiling: string | null;
}

export interface UserDefaults {
  /** claude.per_coder_monthly_limit_usd in micro-USD, or null. */
  readonly monthlyBudgetMicro: number | null;
}

export function createUserService(ctx: ServiceContext, teams: TeamService, defaults: UserDefaults) {
  const db = ctx.installation.db.kysely;

  async function add(by: Actor, input: NewUserInput): Promise<UserView> {
    const name = validateName('user', input.name);
    const email = input.email ? validateEmail(input.email) : null;
    const role = input.role ?? 'member';
    const byok = input.byok ?? null;
    const team = input.team ? await teams.get(input.team) : null;
    const budget =
      input.monthlyBudgetMicro === undefined ? defaults.monthlyBudgetMicro : input.monthlyBudgetMicro;
    return change(ctx, by, async (u) => {
      const existing = await u.tx
        .selectFrom('users')
        .select('id')
        .where('name', '=', name)
        .where('removed_at', 'is', null)
        .executeTakeFirst();
      if (existing) throw new AppError('conflict', `a user named ${name} already exists`);
      const id = newId('usr');
      await u.tx
        .insertInto('users')
        .values({
          id,
          name,
          email,
          role,
          team_id: team?.id ?? null,
          created_at: u.now,
          removed_at: null,
          byok,
          preferred_model: null,
        })
        .execute();
      if (budget !== null) await setBudget(u.tx, 'user', id, 'month', budget, u.now);
      await u.audit('user.add', 'user', id, {
        name,
        role,
        team_id: team?.id ?? null,
        monthly_budget_micro: budget,
        ...(byok === null ? {} : { byok }),
      });
      await u.changed('user', id);
      return {
        id,
        name,
        email,
        role,
        team: team?.name ?? null,
        teamId: team?.id ?? null,
        createdAt: u.now,
        monthlyBudgetMicro: budget,
        activeKeys: 0,
        byok,
        preferredModel: null,
        disabledAt: null,
        passwordSet: false,
        sso: false,
        keyCeiling: null,
      };
    });
  }

  async function list(filter: { team?: string } = {}): Promise<UserView[]> {
    let query = db.selectFrom('users').selectAll().where('removed_at', 'is', null).orderBy('name');
    if (filter.team) query = query.where('team_id', '=', (await teams.get(filter.team)).id);
    return Promise.all((await query.execute()).map(view));
  }

  /** Finds a live user by name or id, or refuses with not_found. */
  async function get(nameOrId: string): Promise<UserRow> {
    const row = await db
      .selectFrom('users')
      .selectAll()
      .where('removed_at', 'is', null)
      .where((eb) => eb.or([eb('name', '=', nameOrId), eb('id', '=', nameOrId)]))
      .executeTakeFirst();
    if (!row) throw new AppError('not_found', `no user named ${nameOrId}`);
    return row;
  }

  async function show(nameOrId: string): Promise<UserView> {
    return view(await get(nameOrId));
  }

  /** Removes a user: their gateway keys are revoked and their own credentials destroyed, at once. */
  async function remove(
    by: Actor,
    nameOrId: string,
  ): Promise<{ id: string; revokedKeys: number; removedCredentials: number }> {
    const user = await get(nameOrId);
    return change(ctx, by, async (u) => {
      await u.tx.updateTable('users').set({ removed_at: u.now }).where('id', '=', user.id).execute();
      const cut = await cutAccess(u, user.id, 'user removed');
      // Crypto-shredding: the sealed secret is overwritten, not only flagged.
      const creds = await u.tx
        .updateTable('credentials')
        .set({
          removed_at: u.now,
          status: 'inactive',
          ciphertext: Buffer.alloc(0),
          wrapped_key: Buffer.alloc(0),
          updated_at: u.now,
        })
        .where('owner_type', '=', 'user')
        .where('owner_id', '=', user.id)
        .where('removed_at', 'is', null)
        .returning('id')
        .execute();
      await u.audit('user.remove', 'user', user.id, {
        revoked_keys: cut.keys.length,
        removed_credentials: creds.length,
        revoked_admin_tokens: cut.adminTokens,
        ended_sessions: cut.sessions,
      });
      await u.changed('user', user.id);
      for (const k of cut.keys) await u.changed('key', k);
      for (const c of creds) await u.changed('credential', c.id);
      return { id: user.id, revokedKeys: cut.keys.length, removedCredentials: creds.length };
    });
  }

  /**
   * Disables a person (de-provisioning, e.g. refused by the identity provider): every gateway key and
   * personal admin token revoked, every session ended, pending invite links voided — in one audited
   * transaction. Their own credentials stay, for when they come back.
   */
  async function disable(
    by: Actor,
    nameOrId: string,
    reason: string,
  ): Promise<{ id: string; revokedKeys: number }> {
    const user = await get(nameOrId);
    return change(ctx, by, async (u) => {
      await u.tx.updateTable('users').set({ disabled_at: u.now }).where('id', '=', user.id).execute();
      const cut = await cutAccess(u, user.id, reason);
      await u.audit('user.disable', 'user', user.id, {
        reason: reason.slice(0, 200),
        revoked_keys: cut.keys.length,
        revoked_admin_tokens: cut.adminTokens,
        ended_sessions: cut.sessions,
      });
      await u.changed('user', user.id);
      for (const k of cut.keys) await u.changed('key', k);
      return { id: user.id, revokedKeys: cut.keys.length };
    });
  }

  /** Lets a disabled person sign in again (their revoked keys stay revoked). */
  async function enable(by: Actor, nameOrId: string): Promise<void> {
    const user = await get(nameOrId);
    if (user.disabled_at === null) return;
    await change(ctx, by, async (u) => {
      await u.tx.updateTable('users').set({ disabled_at: null }).where('id', '=', user.id).execute();
      await u.audit('user.enable', 'user', user.id, {});
      await u.changed('user', user.id);
    });
  }

  /** Revokes a person's keys and admin tokens and ends their sessions and invites, in the caller's change. */
  async function cutAccess(
    u: ChangeUnit,
    userId: string,
    reason: string,
  ): Promise<{ keys: string[]; adminTokens: number; sessions: number }> {
    const keys = await u.tx
      .updateTable('gateway_keys')
      .set({ status: 'revoked', revoked_at: u.now })
      .where('user_id', '=', userId)
      .where('status', '=', 'active')
      .returning('id')
      .execute();
    // Personal admin tokens end with the person (the principal check refuses them anyway; revoking
    // them means a user re-created under the same id could never revive them).
    const adminTokens = await revokeAdminTokensOf(u.tx, userId, u.now);
    const sessions = await endAllOf(u.tx, userId, reason, u.now);
    await u.tx
      .updateTable('invites')
      .set({ used_at: u.now })
      .where('user_id', '=', userId)
      .where('used_at', 'is', null)
      .execute();
    return { keys: keys.map((k) => k.id), adminTokens, sessions };
  }

  /**
   * Changes a user's email, role, team, monthly budget or bring-your-own-key policy in one audited
   * change; fields left out stay as they are. The change feed reports the user (a running gateway
   * drops its cached keys, so a new team's budget applies to the next request) and, when the budget
   * changed, the budget.
   */
  async function update(by: Actor, nameOrId: string, changes: UserUpdate): Promise<UserView> {
    const user = await get(nameOrId);
    const email =
      changes.email === undefined ? undefined : changes.email === null ? null : validateEmail(changes.email);
    const role = changes.role === undefined ? undefined : oneOf('role', changes.role, USER_ROLES);
    const team =
      changes.team === undefined ? undefined : changes.team === null ? null : await teams.get(changes.team);
    await change(ctx, by, async (u) => {
      const set: Partial<Pick<UserRow, 'email' | 'role' | 'team_id' | 'byok' | 'key_ceiling'>> = {};
      const details: Record<string, string | number | null> = {};
      if (email !== undefined && email !== user.email) {
        set.email = email;
        // The address itself is personal data; the audit says that it changed, not to what.
        details.email = email === null ? 'cleared' : 'changed';
      }
      if (role !== undefined && role !== user.role) {
        if (user.role === 'service') await refuseActingKeys(u.tx, user);
        set.role = details.role = role;
        // An admin demoted loses their personal admin tokens for good (a later promotion does not revive them).
        if (user.role === 'admin')
          details.revoked_admin_tokens = await revokeAdminTokensOf(u.tx, user.id, u.now);
      }
      if (team !== undefined && (team?.id ?? null) !== user.team_id)
        set.team_id = details.team_id = team?.id ?? null;
      if (changes.byok !== undefined && changes.byok !== user.byok) set.byok = details.byok = changes.byok;
      if (changes.keyCeilingId !== undefined && changes.keyCeilingId !== user.key_ceiling)
        set.key_ceiling = details.key_ceiling = changes.keyCeilingId;
      if (Object.keys(set).length > 0)
        await u.tx.updateTable('users').set(set).where('id', '=', user.id).execute();
      if (changes.monthlyBudgetMicro !== undefined) {
        const before = (await budgetsOf(u.tx, 'user', user.id)).find((b) => b.period === 'month');
        if ((before?.limitMicro ?? null) !== changes.monthlyBudgetMicro) {
          await setBudget(u.tx, 'user', user.id, 'month', changes.monthlyBudgetMicro, u.now);
          details.monthly_budget_micro = changes.monthlyBudgetMicro;
          await u.changed('budget', user.id);
        }
      }
      await u.audit('user.update', 'user', user.id, details);
      await u.changed('user', user.id);
    });
    return show(user.id);
  }

  /**
   * Only service accounts may act for users (key-policy.ts); the gateway checks the key's scope, so a
   * service account keeping such keys must stay one.
   */
  async function refuseActingKeys(tx: Tx, user: UserRow): Promise<void> {
    const keys = await tx
      .selectFrom('gateway_keys')
      .select(['id', 'scopes'])
      .where('user_id', '=', user.id)
      .where('status', '=', 'active')
      .execute();
    const acting = keys.filter((k) => decodeList(k.scopes)?.includes('act-for-users'));
    if (acting.length > 0)
      throw new AppError(
        'conflict',
        `${user.name} holds ${acting.length} active key(s) with the act-for-users scope (${acting[0]?.id}${acting.length > 1 ? ', …' : ''}); revoke them before changing the role`,
      );
  }

  async function view(row: UserRow): Promise<UserView> {
    const [budgets, team, keys, ceiling] = await Promise.all([
      budgetsOf(db, 'user', row.id),
      row.team_id
        ? db.selectFrom('teams').select('name').where('id', '=', row.team_id).executeTakeFirst()
        : undefined,
      db
        .selectFrom('gateway_keys')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('user_id', '=', row.id)
        .where('status', '=', 'active')
        .executeTakeFirst(),
      row.key_ceiling
        ? db.selectFrom('key_profiles').select('name').where('id', '=', row.key_ceiling).executeTakeFirst()
        : undefined,
    ]);
    return {
      id: row.id,
      name: row.name,
      email: row.email,
      role: row.role,
      team: team?.name ?? null,
      teamId: row.team_id,
      createdAt: row.created_at,
      monthlyBudgetMicro: budgets.find((b) => b.period === 'month')?.limitMicro ?? null,
      activeKeys: Number(keys?.n ?? 0),
      byok: row.byok ?? null,
      preferredModel: row.preferred_model ?? null,
      disabledAt: row.disabled_at ?? null,
      passwordSet: row.password_hash !== null,
      sso: row.oidc_subject !== null,
      keyCeiling: ceiling?.name ?? null,
    };
  }

  return { add, list, get, show, update, remove, disable, enable };
}

export type UserService = ReturnType<typeof createUserService>;
