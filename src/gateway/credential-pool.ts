// Which upstream credential serves a request: the key's pinned credential, else the user's own
// (the one `credential use` prefers first), else the team's, else the org's. Several active
// credentials at one level form a failover pool; levels are distinct pools (a 429 moves on to the next).
import { open } from '../crypto/envelope.js';
import type { Environment } from '../db/schema.js';
import { type Actor, change, type ServiceContext } from '../install/context.js';

export interface UpstreamCredential {
  readonly id: string;
  readonly name: string;
  readonly secret: string;
  readonly environment: Environment | null;
  /** Level the credential was found at; credentials of one level share a pool. */
  readonly pool: 'pinned' | 'user' | 'team' | 'org';
}

interface Loaded {
  id: string;
  name: string;
  secret: string;
  environment: Environment | null;
  ownerType: 'org' | 'team' | 'user';
  ownerId: string | null;
  preferred: boolean;
  /** A rotated-out previous secret: usable (as a failover) until this time. */
  retireAt: number | null;
}

export function createCredentialPool(ctx: ServiceContext) {
  const { db, master } = ctx.installation;
  let loaded: Promise<Map<string, Loaded>> | null = null;

  /** Loads (once per change) every active Anthropic credential, decrypted, into memory. */
  function all(): Promise<Map<string, Loaded>> {
    if (!loaded) {
      loaded = load().catch((error: unknown) => {
        loaded = null;
        throw error;
      });
    }
    return loaded;
  }

  async function load(): Promise<Map<string, Loaded>> {
    const rows = await db.kysely
      .selectFrom('credentials')
      .selectAll()
      .where('provider', '=', 'anthropic')
      .where('status', '=', 'active')
      .where('removed_at', 'is', null)
      .orderBy('preferred', 'desc')
      .orderBy('created_at')
      .execute();
    const map = new Map<string, Loaded>();
    for (const row of rows) {
      const secret = open(master, `credentials:${row.id}`, {
        ciphertext: row.ciphertext,
        wrappedKey: row.wrapped_key,
        keyVersion: row.key_version,
      }).toString('utf8');
      map.set(row.id, {
        id: row.id,
        name: row.name,
        secret,
        environment: row.environment,
        ownerType: row.owner_type,
        ownerId: row.owner_id,
        preferred: row.preferred === 1,
        retireAt: row.retire_at,
      });
    }
    return map;
  }

  /** The ordered candidates for a request; empty when nothing usable exists. */
  async function candidates(input: {
    pinnedId: string | null;
    userId: string;
    teamId: string | null;
    environment: Environment | null;
  }): Promise<UpstreamCredential[]> {
    const creds = await all();
    const now = ctx.clock();
    // A rotated-out secret past its grace period is never used, even before the sweeper removes it.
    const fits = (c: Loaded) =>
      (c.retireAt === null || c.retireAt > now) &&
      (input.environment === null || c.environment === null || c.environment === input.environment);
    const out: UpstreamCredential[] = [];
    const add = (c: Loaded, pool: UpstreamCredential['pool']) => {
      if (fits(c)) out.push({ id: c.id, name: c.name, secret: c.secret, environment: c.environment, pool });
    };
    if (input.pinnedId) {
      const pinned = creds.get(input.pinnedId);
      if (pinned) add(pinned, 'pinned');
      return out;
    }
    for (const c of creds.values()) if (c.ownerType === 'user' && c.ownerId === input.userId) add(c, 'user');
    if (input.teamId)
      for (const c of creds.values())
        if (c.ownerType === 'team' && c.ownerId === input.teamId) add(c, 'team');
    for (const c of creds.values()) if (c.ownerType === 'org') add(c, 'org');
    return out;
  }

  /** An upstream 401 on a stored credential: mark it invalid (audited) so it leaves every pool. */
  async function markInvalid(id: string, by: Actor): Promise<void> {
    await change(ctx, by, async (u) => {
      const result = await u.tx
        .updateTable('credentials')
        .set({ status: 'invalid', updated_at: u.now })
        .where('id', '=', id)
        .where('status', '=', 'active')
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return;
      await u.audit('credential.invalid', 'credential', id, { reason: 'upstream answered 401' });
      await u.changed('credential', id);
    });
    invalidate();
  }

  function invalidate(): void {
    loaded = null;
  }

  return { candidates, markInvalid, invalidate };
}

export type CredentialPool = ReturnType<typeof createCredentialPool>;
