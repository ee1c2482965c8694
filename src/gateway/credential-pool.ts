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

/** Distinct (pinned, user, team, environment) candidate lists remembered; past this the memo starts over. */
const MEMO_MAX = 10_000;

interface Memo {
  readonly list: readonly UpstreamCredential[];
  /** When a rotated-out secret in the list stops being usable (the list must be rebuilt then). */
  readonly until: number;
}

export interface CandidateQuery {
  readonly pinnedId: string | null;
  readonly userId: string;
  readonly teamId: string | null;
  readonly environment: Environment | null;
}

export function createCredentialPool(ctx: ServiceContext) {
  const { db, master } = ctx.installation;
  let loaded: Promise<Map<string, Loaded>> | null = null;
  /** The loaded credentials once `loaded` has resolved (the synchronous path reads it). */
  let current: Map<string, Loaded> | null = null;
  let memo = new Map<string, Memo>();

  /** Loads (once per change) every active Anthropic credential, decrypted, into memory. */
  function all(): Promise<Map<string, Loaded>> {
    if (!loaded) {
      const loading = load().then(
        (map) => {
          if (loaded === loading) current = map;
          return map;
        },
        (error: unknown) => {
          if (loaded === loading) loaded = null;
          throw error;
        },
      );
      loaded = loading;
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

  const memoKey = (q: CandidateQuery) =>
    `${q.pinnedId ?? ''}|${q.userId}|${q.teamId ?? ''}|${q.environment ?? ''}`;

  /**
   * The ordered candidates for a request when the credentials are loaded and the list is remembered:
   * the hot path, one map read and no await. Null otherwise (then call `candidates`). The list is
   * shared between requests: read it, never change it.
   */
  function cachedCandidates(q: CandidateQuery): readonly UpstreamCredential[] | null {
    if (!current) return null;
    const hit = memo.get(memoKey(q));
    return hit && ctx.clock() < hit.until ? hit.list : null;
  }

  /** The ordered candidates for a request; empty when nothing usable exists. */
  async function candidates(q: CandidateQuery): Promise<readonly UpstreamCredential[]> {
    const creds = await all();
    const now = ctx.clock();
    const found = pick(creds, q, now);
    // Remembered only if no change arrived meanwhile (invalidate replaces `current`).
    if (creds === current) {
      if (memo.size >= MEMO_MAX) memo = new Map();
      memo.set(memoKey(q), found);
    }
    return found.list;
  }

  /** Memo (see candidates): the pinned credential, else user, team and org levels in order. */
  function pick(creds: Map<string, Loaded>, q: CandidateQuery, now: number): Memo {
    let until = Number.POSITIVE_INFINITY;
    // A rotated-out secret past its grace period is never used, even before the sweeper removes it.
    const fits = (c: Loaded) =>
      (c.retireAt === null || c.retireAt > now) &&
      (q.environment === null || c.environment === null || c.environment === q.environment);
    const list: UpstreamCredential[] = [];
    const add = (c: Loaded, pool: UpstreamCredential['pool']) => {
      if (!fits(c)) return;
      if (c.retireAt !== null) until = Math.min(until, c.retireAt);
      list.push({ id: c.id, name: c.name, secret: c.secret, environment: c.environment, pool });
    };
    if (q.pinnedId) {
      const pinned = creds.get(q.pinnedId);
      if (pinned) add(pinned, 'pinned');
      return { list, until };
    }
    for (const c of creds.values()) if (c.ownerType === 'user' && c.ownerId === q.userId) add(c, 'user');
    if (q.teamId)
      for (const c of creds.values()) if (c.ownerType === 'team' && c.ownerId === q.teamId) add(c, 'team');
    for (const c of creds.values()) if (c.ownerType === 'org') add(c, 'org');
    return { list, until };
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
    current = null;
    memo = new Map();
  }

  return { candidates, cachedCandidates, markInvalid, invalidate };
}

export type CredentialPool = ReturnType<typeof createCredentialPool>;
