// Gateway keys: issued to a user or service, shown once, stored only as a peppered HMAC.
import { type BudgetLimit, budgetsOf, setBudget } from '../budgets/budget.repo.js';
import { gatewayKeyHint, generateGatewayKey, hashGatewayKey } from '../crypto/gateway-key.js';
import type { GatewayKeyRow, KeyStatus } from '../db/schema.js';
import type { Tx } from '../db/tx.js';
import type { UserService } from '../identity/user.service.js';
import { type Actor, type ChangeUnit, change, type ServiceContext } from '../install/context.js';
import { AppError } from '../lib/errors.js';
import { newId } from '../lib/ids.js';
import { validateName } from '../lib/validate.js';
import type { CredentialService } from '../vault/credential.service.js';
import { checkPolicy, decodeList, encodeList, type KeyPolicy, type KeyScope } from './key-policy.js';

export interface IssueKeyInput {
  user: string;
  name?: string | null;
  policy: Partial<KeyPolicy>;
  /** Lifetime from now in milliseconds; null = no expiry. */
  expiresInMs?: number | null;
  /** Name of a credential to pin; null = the usual resolution chain. */
  credential?: string | null;
  /** The key profile the policy was built from (recorded in the audit log only; the policy is copied). */
  profile?: string | null;
}

export interface KeyView {
  id: string;
  name: string | null;
  user: string;
  userId: string;
  hint: string;
  status: KeyStatus | 'expired';
  policy: KeyPolicy;
  credential: string | null;
  expiresAt: number | null;
  createdAt: number;
  createdBy: string;
  revokedAt: number | null;
  rotatedTo: string | null;
  lastUsedAt: number | null;
  /** The first key of its rotation chain: key budgets and their spend belong to the lineage. */
  lineageId: string;
}

export interface IssuedKey extends KeyView {
  /** The key itself, returned only here, once. */
  key: string;
}

export const DEFAULT_POLICY: Readonly<KeyPolicy> = {
  models: null,
  tools: null,
  maxTokens: null,
  maxCostPerRequestMicro: null,
  monthlyBudgetMicro: null,
  dailyBudgetMicro: null,
  rpm: null,
  inputTpm: null,
  outputTpm: null,
  concurrency: null,
  environment: null,
  scopes: ['inference'],
};

export function createKeyService(
  ctx: ServiceContext,
  deps: { users: UserService; credentials: CredentialService; modelsAllowed: readonly string[] },
) {
  const db = ctx.installation.db.kysely;
  const pepper = ctx.installation.pepper;

  async function issue(by: Actor, input: IssueKeyInput): Promise<IssuedKey> {
    const user = await deps.users.get(input.user);
    const name = input.name ? validateName('key', input.name) : null;
    const policy: KeyPolicy = { ...DEFAULT_POLICY, ...input.policy };
    checkPolicy(policy, { userRole: user.role, modelsAllowed: deps.modelsAllowed });
    const credential = input.credential ? await deps.credentials.get(input.credential) : null;
    if (credential && credential.provider !== 'anthropic') {
      throw new AppError(
        'invalid_input',
        `credential ${credential.name} is a ${credential.provider} credential; pin an anthropic credential`,
      );
    }
    return change(ctx, by, async (u) => {
      const issued = await insertKey(u, {
        userId: user.id,
        name,
        policy,
        credentialId: credential?.id ?? null,
        expiresAt: input.expiresInMs ? u.now + input.expiresInMs : null,
        createdBy: by.actor,
        lineageId: null,
      });
      await u.audit('key.issue', 'key', issued.id, {
        user_id: user.id,
        name,
        scopes: policy.scopes.join(','),
        expires_at: issued.expiresAt,
        credential_id: credential?.id ?? null,
        profile: input.profile ?? null,
      });
      return { ...(await view(issued.row, u.tx)), key: issued.key };
    });
  }

  async function insertKey(
    u: ChangeUnit,
    spec: {
      userId: string;
      name: string | null;
      policy: KeyPolicy;
      credentialId: string | null;
      expiresAt: number | null;
      createdBy: string;
      /** The lineage of the key rotated from (which already holds the budget limits); null = a new one. */
      lineageId: string | null;
    },
  ): Promise<{ id: string; key: string; expiresAt: number | null; row: GatewayKeyRow }> {
    const id = newId('key');
    const key = generateGatewayKey();
    const p = spec.policy;
    const row: GatewayKeyRow = {
      id,
      user_id: spec.userId,
      name: spec.name,
      hash: hashGatewayKey(pepper, key),
      hint: gatewayKeyHint(key),
      status: 'active',
      models: encodeList(p.models),
      tools: encodeList(p.tools),
      max_tokens: p.maxTokens,
      max_cost_per_request_micro: p.maxCostPerRequestMicro,
      rpm: p.rpm,
      input_tpm: p.inputTpm,
      output_tpm: p.outputTpm,
      concurrency: p.concurrency,
      environment: p.environment,
      credential_id: spec.credentialId,
      scopes: JSON.stringify(p.scopes),
      expires_at: spec.expiresAt,
      created_at: u.now,
      created_by: spec.createdBy,
      revoked_at: null,
      rotated_to: null,
      last_used_at: null,
      lineage_id: spec.lineageId ?? id,
    };
    await u.tx.insertInto('gateway_keys').values(row).execute();
    // A rotated key shares its lineage's limits (and spend); only a new lineage gets budget rows.
    if (spec.lineageId === null) {
      if (p.monthlyBudgetMicro !== null)
        await setBudget(u.tx, 'key', id, 'month', p.monthlyBudgetMicro, u.now);
      if (p.dailyBudgetMicro !== null) await setBudget(u.tx, 'key', id, 'day', p.dailyBudgetMicro, u.now);
    }
    await u.changed('key', id);
    return { id, key, expiresAt: spec.expiresAt, row };
  }

  async function get(id: string, tx: Tx = db): Promise<GatewayKeyRow> {
    const row = await tx.selectFrom('gateway_keys').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new AppError('not_found', `no gateway key with id ${id}`);
    return row;
  }

  async function list(filter: { user?: string } = {}): Promise<KeyView[]> {
    let query = db.selectFrom('gateway_keys').selectAll().orderBy('created_at').orderBy('id');
    if (filter.user) query = query.where('user_id', '=', (await deps.users.get(filter.user)).id);
    const rows = await query.execute();
    // Three queries for the whole list (names and key budgets), not three per key.
    const [users, credentials, budgets] = await Promise.all([
      db.selectFrom('users').select(['id', 'name']).execute(),
      db.selectFrom('credentials').select(['id', 'name']).execute(),
      db
        .selectFrom('budgets')
        .select(['scope_id', 'period', 'limit_micro'])
        .where('scope_type', '=', 'key')
        .execute(),
    ]);
    const userNames = new Map(users.map((u) => [u.id, u.name]));
    const credentialNames = new Map(credentials.map((c) => [c.id, c.name]));
    const budgetsByLineage = new Map<string, BudgetLimit[]>();
    for (const b of budgets) {
      const list = budgetsByLineage.get(b.scope_id) ?? [];
      list.push({ period: b.period, limitMicro: b.limit_micro });
      budgetsByLineage.set(b.scope_id, list);
    }
    return rows.map((row) =>
      viewOf(
        row,
        userNames.get(row.user_id),
        row.credential_id ? credentialNames.get(row.credential_id) : undefined,
        policyFrom(row, budgetsByLineage.get(row.lineage_id) ?? []),
      ),
    );
  }

  async function show(id: string): Promise<KeyView> {
    return view(await get(id));
  }

  async function revoke(by: Actor, id: string): Promise<KeyView> {
    const row = await get(id);
    if (row.status === 'revoked') throw new AppError('conflict', `gateway key ${id} is already revoked`);
    await change(ctx, by, async (u) => {
      await u.tx
        .updateTable('gateway_keys')
        .set({ status: 'revoked', revoked_at: u.now })
        .where('id', '=', id)
        .execute();
      await u.audit('key.revoke', 'key', id, { user_id: row.user_id });
      await u.changed('key', id);
    });
    return show(id);
  }

  /** Issues a replacement with the same policy; the old key stops at once, or after the grace period. */
  async function rotate(by: Actor, id: string, graceMs: number | null): Promise<IssuedKey> {
    const old = await get(id);
    if (old.status === 'revoked')
      throw new AppError('conflict', `gateway key ${id} is revoked; issue a new key instead`);
    const policy = await policyOf(old);
    return change(ctx, by, async (u) => {
      const issued = await insertKey(u, {
        userId: old.user_id,
        name: old.name,
        policy,
        credentialId: old.credential_id,
        expiresAt: old.expires_at,
        createdBy: by.actor,
        lineageId: old.lineage_id,
      });
      if (graceMs) {
        const until = Math.min(u.now + graceMs, old.expires_at ?? Number.MAX_SAFE_INTEGER);
        await u.tx
          .updateTable('gateway_keys')
          .set({ expires_at: until, rotated_to: issued.id })
          .where('id', '=', id)
          .execute();
      } else {
        await u.tx
          .updateTable('gateway_keys')
          .set({ status: 'revoked', revoked_at: u.now, rotated_to: issued.id })
          .where('id', '=', id)
          .execute();
      }
      await u.changed('key', id);
      await u.audit('key.rotate', 'key', id, { new_key_id: issued.id, grace_ms: graceMs });
      return { ...(await view(issued.row, u.tx)), key: issued.key };
    });
  }

  /**
   * Sets (or with null removes) a key-scope budget limit. Any key of a lineage names it; the limit
   * applies to the whole lineage (every rotation of the key shares one budget and its spend).
   */
  async function setKeyBudget(
    by: Actor,
    id: string,
    period: 'day' | 'month',
    limitMicro: number | null,
  ): Promise<KeyView> {
    const row = await get(id);
    if (limitMicro !== null && (!Number.isSafeInteger(limitMicro) || limitMicro < 0))
      throw new AppError('invalid_input', 'a budget limit must be a whole, non-negative number of micro-USD');
    await change(ctx, by, async (u) => {
      await setBudget(u.tx, 'key', row.lineage_id, period, limitMicro, u.now);
      await u.audit('key.budget', 'key', id, { lineage_id: row.lineage_id, period, limit_micro: limitMicro });
      await u.changed('budget', row.lineage_id);
    });
    return show(id);
  }

  async function policyOf(row: GatewayKeyRow, tx: Tx = db): Promise<KeyPolicy> {
    return policyFrom(row, await budgetsOf(tx, 'key', row.lineage_id));
  }

  function policyFrom(row: GatewayKeyRow, budgets: readonly BudgetLimit[]): KeyPolicy {
    return {
      models: decodeList(row.models),
      tools: decodeList(row.tools),
      maxTokens: row.max_tokens,
      maxCostPerRequestMicro: row.max_cost_per_request_micro,
      monthlyBudgetMicro: budgets.find((b) => b.period === 'month')?.limitMicro ?? null,
      dailyBudgetMicro: budgets.find((b) => b.period === 'day')?.limitMicro ?? null,
      rpm: row.rpm,
      inputTpm: row.input_tpm,
      outputTpm: row.output_tpm,
      concurrency: row.concurrency,
      environment: row.environment,
      scopes: (decodeList(row.scopes) ?? ['inference']) as KeyScope[],
    };
  }

  async function view(row: GatewayKeyRow, tx: Tx = db): Promise<KeyView> {
    const [user, credential, policy] = await Promise.all([
      tx.selectFrom('users').select('name').where('id', '=', row.user_id).executeTakeFirst(),
      row.credential_id
        ? tx.selectFrom('credentials').select('name').where('id', '=', row.credential_id).executeTakeFirst()
        : undefined,
      policyOf(row, tx),
    ]);
    return viewOf(row, user?.name, credential?.name, policy);
  }

  function viewOf(
    row: GatewayKeyRow,
    userName: string | undefined,
    credentialName: string | undefined,
    policy: KeyPolicy,
  ): KeyView {
    const expired = row.status === 'active' && row.expires_at !== null && row.expires_at <= ctx.clock();
    return {
      id: row.id,
      name: row.name,
      user: userName ?? row.user_id,
      userId: row.user_id,
      hint: row.hint,
      status: expired ? 'expired' : row.status,
      policy,
      credential: credentialName ?? null,
      expiresAt: row.expires_at,
      createdAt: row.created_at,
      createdBy: row.created_by,
      revokedAt: row.revoked_at,
      rotatedTo: row.rotated_to,
      lastUsedAt: row.last_used_at,
      lineageId: row.lineage_id,
    };
  }

  return { issue, list, show, revoke, rotate, setKeyBudget };
}

export type KeyService = ReturnType<typeof createKeyService>;
