// The identity side of Claude Code onboarding: the coder's user, and the gateway key named `claude-code`
// that Claude Code presents. Everything goes through the user and key services.
import { hashGatewayKey, safeEqualHex } from '../crypto/gateway-key.js';
import type { UserRow } from '../db/schema.js';
import type { UserService, UserView } from '../identity/user.service.js';
import type { Actor, ServiceContext } from '../install/context.js';
import type { IssuedKey, KeyService } from '../keys/key.service.js';
import { AppError, isAppError } from '../lib/errors.js';

export const CODER_KEY_NAME = 'claude-code';

export interface CoderDeps {
  readonly users: Pick<UserService, 'get' | 'add' | 'show'>;
  readonly keys: Pick<KeyService, 'issue' | 'revoke'>;
  /** claude.models_allowed; a coder's key carries it (null when empty: every model the gateway allows). */
  readonly modelsAllowed: readonly string[];
}

export function createCoderService(ctx: ServiceContext, deps: CoderDeps) {
  const db = ctx.installation.db.kysely;
  const pepper = ctx.installation.pepper;

  /** The live user named `name`, or null. */
  async function findUser(name: string): Promise<UserRow | null> {
    try {
      return await deps.users.get(name);
    } catch (error) {
      if (isAppError(error) && error.code === 'not_found') return null;
      throw error;
    }
  }

  /** Creates the coder as a member; refuses a service account, which is not a person. */
  async function ensureUser(
    by: Actor,
    input: { name: string; team: string | null; monthlyBudgetMicro: number | null },
  ): Promise<{ user: UserView; created: boolean }> {
    const existing = await findUser(input.name);
    if (existing) {
      assertPerson(existing);
      return { user: await deps.users.show(existing.id), created: false };
    }
    const user = await deps.users.add(by, {
      name: input.name,
      role: 'member',
      team: input.team,
      monthlyBudgetMicro: input.monthlyBudgetMicro,
    });
    return { user, created: true };
  }

  /**
   * The id of the active, unexpired key of `userId` whose secret is `key`, or null. The stored key is
   * hashed with the installation's pepper and compared to gateway_keys.hash in constant time.
   */
  async function activeKeyId(userId: string, key: string): Promise<string | null> {
    const hash = hashGatewayKey(pepper, key);
    const row = await db
      .selectFrom('gateway_keys')
      .select(['id', 'hash', 'expires_at'])
      .where('hash', '=', hash)
      .where('user_id', '=', userId)
      .where('status', '=', 'active')
      .executeTakeFirst();
    if (!row || !safeEqualHex(row.hash, hash)) return null;
    return row.expires_at === null || row.expires_at > ctx.clock() ? row.id : null;
  }

  /** Issues the coder's `claude-code` key: the installation's model list, no other limits than the user's. */
  function issueKey(by: Actor, user: string): Promise<IssuedKey> {
    return deps.keys.issue(by, {
      user,
      name: CODER_KEY_NAME,
      policy: { models: deps.modelsAllowed.length > 0 ? [...deps.modelsAllowed] : null },
      expiresInMs: null,
      credential: null,
    });
  }

  return {
    findUser,
    showUser: (id: string) => deps.users.show(id),
    ensureUser,
    activeKeyId,
    issueKey,
    revokeKey: deps.keys.revoke,
  };
}

export type CoderService = ReturnType<typeof createCoderService>;

export function assertPerson(user: UserRow): void {
  if (user.role === 'service')
    throw new AppError('conflict', `${user.name} is a service account; Claude Code onboarding is for people`);
}
