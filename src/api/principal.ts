// Who is calling the admin or self-service API. Each check is an ordered pipeline: cheap shape and
// checksum tests first (garbage never reaches the database), then one lookup by keyed hash, then the
// holder's current standing (a removed user, a demoted admin or a revoked token stops at once).
import {
  hashGatewayKey,
  hasValidAdminTokenShape,
  hasValidGatewayKeyShape,
  safeEqualHex,
} from '../crypto/gateway-key.js';
import type { UserRole } from '../db/schema.js';
import type { Installation } from '../install/installation.js';
import { readMeta } from '../install/meta.repo.js';
import { decodeList, type KeyScope } from '../keys/key-policy.js';
import { AppError } from '../lib/errors.js';

export type Principal =
  /** The installation's own admin token (printed by `init`, replaced by `admin-token rotate`). */
  | { readonly kind: 'installation'; readonly actor: 'admin-token'; readonly sessionId?: string }
  /** A personal admin API token of an admin user: actions are audited as that person. */
  | {
      readonly kind: 'admin';
      readonly actor: string;
      /** The personal admin token used; null for a dashboard session. */
      readonly tokenId: string | null;
      /** Set when the caller is a signed-in dashboard session. */
      readonly sessionId?: string;
      readonly userId: string;
      readonly userName: string;
    }
  /** A user calling the self-service API with one of their gateway keys (scope `self-service`). */
  | {
      readonly kind: 'member';
      readonly actor: string;
      /** The self-service gateway key used; null for a dashboard session. */
      readonly keyId: string | null;
      /** Set when the caller is a signed-in dashboard session (the only way to issue keys). */
      readonly sessionId?: string;
      readonly userId: string;
      readonly userName: string;
      readonly role: UserRole;
      readonly teamId: string | null;
      readonly scopes: readonly KeyScope[];
    }
  /** The CLI working on the local database (whoever can read the master key). */
  | { readonly kind: 'local'; readonly actor: string };

export type AdminPrincipal = Extract<Principal, { kind: 'installation' | 'admin' | 'local' }>;

const ADMIN_REFUSAL = 'a valid admin token is required (Authorization: Bearer tga_…)';
const MEMBER_REFUSAL = 'a valid gateway key with the self-service scope is required';

/** The bearer token of an `Authorization` header (scheme case-insensitive), or ''. */
export function bearerOf(header: string | string[] | undefined): string {
  if (typeof header !== 'string') return '';
  const match = /^bearer[ \t]+(\S{1,200})[ \t]*$/i.exec(header);
  return match?.[1] ?? '';
}

/** Authenticates an admin API caller; one answer for every failure, so nothing tells which check failed. */
export async function authenticateAdmin(
  installation: Installation,
  token: string,
  now: number,
): Promise<AdminPrincipal> {
  const refuse = () => new AppError('unauthenticated', ADMIN_REFUSAL);
  if (!hasValidAdminTokenShape(token)) throw refuse();
  const hash = hashGatewayKey(installation.pepper, token);
  const stored = await readMeta(installation.db, 'admin_token_hash');
  if (stored !== null && safeEqualHex(hash, stored)) return { kind: 'installation', actor: 'admin-token' };
  const row = await installation.db.kysely
    .selectFrom('admin_tokens')
    .innerJoin('users', 'users.id', 'admin_tokens.user_id')
    .select([
      'admin_tokens.id',
      'admin_tokens.hash',
      'admin_tokens.revoked_at',
      'admin_tokens.last_used_at',
      'users.id as user_id',
      'users.name',
      'users.role',
      'users.removed_at',
    ])
    .where('admin_tokens.hash', '=', hash)
    .executeTakeFirst();
  // The lookup is by hash; the constant-time comparison guards against a collation quirk matching loosely.
  if (!row || !safeEqualHex(row.hash, hash)) throw refuse();
  // Standing is checked at every call: a revoked token, a removed user or one no longer admin stops here.
  if (row.revoked_at !== null || row.removed_at !== null || row.role !== 'admin') throw refuse();
  if (row.last_used_at === null || now - row.last_used_at > 60_000) {
    // Last use is kept to the minute, so a busy script does not write on every call.
    await installation.db.kysely
      .updateTable('admin_tokens')
      .set({ last_used_at: now })
      .where('id', '=', row.id)
      .execute();
  }
  return {
    kind: 'admin',
    actor: `admin:${row.name}`,
    tokenId: row.id,
    userId: row.user_id,
    userName: row.name,
  };
}

/** Authenticates a self-service caller by gateway key; an inference-only key is refused (403). */
export async function authenticateMember(
  installation: Installation,
  key: string,
  now: number,
): Promise<Extract<Principal, { kind: 'member' }>> {
  const refuse = () => new AppError('unauthenticated', MEMBER_REFUSAL);
  if (!hasValidGatewayKeyShape(key)) throw refuse();
  const hash = hashGatewayKey(installation.pepper, key);
  const row = await installation.db.kysely
    .selectFrom('gateway_keys')
    .innerJoin('users', 'users.id', 'gateway_keys.user_id')
    .select([
      'gateway_keys.id',
      'gateway_keys.hash',
      'gateway_keys.status',
      'gateway_keys.expires_at',
      'gateway_keys.scopes',
      'users.id as user_id',
      'users.name',
      'users.role',
      'users.team_id',
      'users.removed_at',
    ])
    .where('gateway_keys.hash', '=', hash)
    .executeTakeFirst();
  if (!row || !safeEqualHex(row.hash, hash)) throw refuse();
  if (row.status !== 'active' || row.removed_at !== null) throw refuse();
  if (row.expires_at !== null && row.expires_at <= now) throw refuse();
  const scopes = (decodeList(row.scopes) ?? ['inference']) as KeyScope[];
  if (!scopes.includes('self-service'))
    throw new AppError(
      'forbidden',
      'this gateway key is for inference only; the self-service API needs a key issued with the self-service scope',
    );
  return {
    kind: 'member',
    actor: `user:${row.name}`,
    keyId: row.id,
    userId: row.user_id,
    userName: row.name,
    role: row.role,
    teamId: row.team_id,
    scopes,
  };
}
