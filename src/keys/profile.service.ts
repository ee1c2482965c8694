// Key profiles: named policy templates (e.g. analysis / generation / admin). A profile is copied into
// a key when the key is issued, so changing or removing a profile never changes keys issued with it.
import { z } from 'zod/v4';
import type { KeyProfileRow } from '../db/schema.js';
import { type Actor, change, type ServiceContext } from '../install/context.js';
import { AppError } from '../lib/errors.js';
import { newId } from '../lib/ids.js';
import { validateName } from '../lib/validate.js';
import { ENVIRONMENTS } from '../vault/credential.service.js';
import { DEFAULT_POLICY } from './key.service.js';
import { checkPolicy, KEY_SCOPES, type KeyPolicy } from './key-policy.js';

/** A whole key policy plus the lifetime of keys issued with it (null = no expiry). */
export interface ProfilePolicy extends KeyPolicy {
  expiresInMs: number | null;
}

export interface ProfileView {
  id: string;
  name: string;
  description: string | null;
  policy: ProfilePolicy;
  createdAt: number;
  updatedAt: number;
}

export const MAX_DESCRIPTION = 500;

const nullableInt = z.number().int().nullable();
const nullableList = z.array(z.string()).nullable();

/** The stored policy JSON, read back strictly: a row that does not parse is refused, never half-used. */
const storedPolicy = z.strictObject({
  models: nullableList,
  tools: nullableList,
  maxTokens: nullableInt,
  maxCostPerRequestMicro: nullableInt,
  monthlyBudgetMicro: nullableInt,
  dailyBudgetMicro: nullableInt,
  rpm: nullableInt,
  inputTpm: nullableInt,
  outputTpm: nullableInt,
  concurrency: nullableInt,
  environment: z.enum(ENVIRONMENTS).nullable(),
  scopes: z.array(z.enum(KEY_SCOPES)),
  expiresInMs: nullableInt,
});

export function createProfileService(ctx: ServiceContext, deps: { modelsAllowed: readonly string[] }) {
  const db = ctx.installation.db.kysely;

  /** Stores a profile; unset fields take the defaults of a plain key (so a profile is a whole template). */
  async function add(
    by: Actor,
    input: { name: string; description?: string | null; policy: Partial<ProfilePolicy> },
  ): Promise<ProfileView> {
    const name = validateName('profile', input.name);
    const description = input.description ?? null;
    if (description !== null && description.length > MAX_DESCRIPTION)
      throw new AppError('invalid_input', `the description is longer than ${MAX_DESCRIPTION} characters`);
    const policy: ProfilePolicy = { ...DEFAULT_POLICY, expiresInMs: null, ...input.policy };
    // What a profile can be checked for on its own: models and budgets. Whether its scopes suit the
    // holder (act-for-users only for services) is checked when a key is issued from it, like any key.
    checkPolicy(policy, { userRole: 'service', modelsAllowed: deps.modelsAllowed });
    return change(ctx, by, async (u) => {
      const existing = await u.tx
        .selectFrom('key_profiles')
        .select('id')
        .where('name', '=', name)
        .executeTakeFirst();
      if (existing) throw new AppError('conflict', `a key profile named ${name} already exists`);
      const row: KeyProfileRow = {
        id: newId('prf'),
        name,
        description,
        policy: JSON.stringify(policy),
        created_at: u.now,
        updated_at: u.now,
      };
      await u.tx.insertInto('key_profiles').values(row).execute();
      await u.audit('profile.add', 'profile', row.id, { name, policy: row.policy });
      return view(row);
    });
  }

  async function list(): Promise<ProfileView[]> {
    const rows = await db.selectFrom('key_profiles').selectAll().orderBy('name').execute();
    return rows.map(view);
  }

  async function get(nameOrId: string): Promise<KeyProfileRow> {
    const row = await db
      .selectFrom('key_profiles')
      .selectAll()
      .where((eb) => eb.or([eb('name', '=', nameOrId), eb('id', '=', nameOrId)]))
      .executeTakeFirst();
    if (!row) throw new AppError('not_found', `no key profile named ${nameOrId}`);
    return row;
  }

  async function show(nameOrId: string): Promise<ProfileView> {
    return view(await get(nameOrId));
  }

  /**
   * Deletes a profile; keys issued with it keep the policy they were given. A profile that bounds what
   * someone may issue themselves (their key ceiling) is refused, naming them: removing it silently
   * would widen their ceiling to the default.
   */
  async function remove(by: Actor, nameOrId: string): Promise<{ id: string; name: string }> {
    const row = await get(nameOrId);
    await change(ctx, by, async (u) => {
      const bounded = await u.tx
        .selectFrom('users')
        .select('name')
        .where('key_ceiling', '=', row.id)
        .where('removed_at', 'is', null)
        .orderBy('name')
        .execute();
      if (bounded.length > 0) {
        const names = bounded.slice(0, 5).map((b) => b.name);
        throw new AppError(
          'conflict',
          `key profile ${row.name} is the key ceiling of ${names.join(', ')}${bounded.length > 5 ? ', …' : ''}; change their key ceiling first`,
        );
      }
      await u.tx.deleteFrom('key_profiles').where('id', '=', row.id).execute();
      await u.audit('profile.remove', 'profile', row.id, { name: row.name });
    });
    return { id: row.id, name: row.name };
  }

  return { add, list, get, show, remove };
}

function view(row: KeyProfileRow): ProfileView {
  const parsed = storedPolicy.safeParse(JSON.parse(row.policy));
  if (!parsed.success) throw new AppError('internal', `key profile ${row.name} has an unreadable policy`);
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    policy: parsed.data,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/**
 * The policy and lifetime of a key issued with `profile` (or none) and the values given explicitly:
 * the profile is the base, anything given overrides it (checkPolicy then judges the result).
 */
export function policyWithProfile(
  profile: ProfilePolicy | null,
  given: Partial<ProfilePolicy>,
): { policy: KeyPolicy; expiresInMs: number | null } {
  const { expiresInMs: baseExpiry, ...base } = profile ?? { ...DEFAULT_POLICY, expiresInMs: null };
  const { expiresInMs, ...explicit } = definedOnly(given);
  return {
    policy: { ...base, ...explicit },
    expiresInMs: expiresInMs === undefined ? baseExpiry : expiresInMs,
  };
}

/** The fields that hold a value: a field present but undefined must not erase the profile's value. */
function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export type ProfileService = ReturnType<typeof createProfileService>;
