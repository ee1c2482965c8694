// Which upstream credential serves a request: the key's pinned credential, else the user's own
// (the one `credential use` prefers first), else the team's, else the org's. Several active
// credentials at one level form a failover pool; levels are distinct pools (a 429 moves on to the next).
// Under `byok: required` only the user's own credentials serve (a pin only if it is one of them).
// A credential an upstream 401 puts in doubt is checked off the request path with the free validation
// call, and only a confirmed failure marks it (and only the secret that failed) invalid.
import type { ByokPolicy, Environment } from '../db/schema.js';
import { type Actor, type ChangeUnit, change, type ServiceContext } from '../install/context.js';
import { probeStatus, type UpstreamTarget } from '../vault/validate-credential.js';
import { buildScrubTable, type ScrubTable } from './scrub.js';

export interface UpstreamCredential {
  readonly id: string;
  readonly name: string;
  readonly secret: string;
  readonly environment: Environment | null;
  /**
   * Level the credential was found at (`key`: the key's pinned credential); credentials of one level
   * share a pool. Also the answer's `x-tollgate-credential-source`: a shared literal, no string per request.
   */
  readonly pool: CredentialSource;
}

export type CredentialSource = 'key' | 'user' | 'team' | 'org';

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
  /** The subject's effective bring-your-own-key policy. */
  readonly byok: ByokPolicy;
}

export interface ConfirmOptions {
  /** Where and how long the validation call may take (a timeout, so a check always ends). */
  readonly target: UpstreamTarget;
  /** At most one check per credential and secret this often; 401s meanwhile are not checked again. */
  readonly intervalMs: number;
  /** Recorded as the actor of a confirmed invalidation. */
  readonly actor: Actor;
  /** Called in the marking's transaction for each credential marked invalid (the alert is raised there). */
  readonly onMarked?: (u: ChangeUnit, credential: { id: string; name: string }) => Promise<void>;
}

/** Credentials (and secret versions) whose last check is remembered; past this the record starts over. */
const CHECKS_MAX = 10_000;

export function createCredentialPool(ctx: ServiceContext, confirm: ConfirmOptions) {
  const { db } = ctx.installation;
  let loaded: Promise<Map<string, Loaded>> | null = null;
  /** The loaded credentials once `loaded` has resolved (the synchronous path reads it). */
  let current: Map<string, Loaded> | null = null;
  let memo = new Map<string, Memo>();
  /** Windows of every loaded secret, built on the first upstream error after a load (see scrub.ts). */
  let scrubbing: Promise<ScrubTable> | null = null;
  /** When each (credential, secret) was last checked, by `${id}\n${secret}`. */
  let checkedAt = new Map<string, number>();
  /** Checks running (each one at a time per credential and secret). */
  const running = new Map<string, Promise<void>>();

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
      const secret = (
        await ctx.installation.openSealed(`credentials:${row.id}`, {
          ciphertext: row.ciphertext,
          wrappedKey: row.wrapped_key,
          keyVersion: row.key_version,
        })
      ).toString('utf8');
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
    `${q.pinnedId ?? ''}|${q.userId}|${q.teamId ?? ''}|${q.environment ?? ''}|${q.byok}`;

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

  /**
   * Memo (see candidates): the pinned credential, else user, team and org levels in order. Under
   * `byok: required` only the user's own: the pin if it is one of them, else all of them (a pin to
   * anything else — a service's org key, acting for this user, say — is passed over, never used).
   */
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
    const own = (c: Loaded) => c.ownerType === 'user' && c.ownerId === q.userId;
    if (q.byok === 'required') {
      const pinned = q.pinnedId ? creds.get(q.pinnedId) : undefined;
      if (pinned && own(pinned)) add(pinned, 'key');
      else for (const c of creds.values()) if (own(c)) add(c, 'user');
      return { list, until };
    }
    if (q.pinnedId) {
      const pinned = creds.get(q.pinnedId);
      if (pinned) add(pinned, 'key');
      return { list, until };
    }
    for (const c of creds.values()) if (own(c)) add(c, 'user');
    if (q.teamId)
      for (const c of creds.values()) if (c.ownerType === 'team' && c.ownerId === q.teamId) add(c, 'team');
    for (const c of creds.values()) if (c.ownerType === 'org') add(c, 'org');
    return { list, until };
  }

  /**
   * An upstream 401 on `credential`: the request has already failed over; this schedules the free
   * validation call of the secret that failed, off the request path. Concurrent 401s of one secret
   * share one check, and a secret is checked at most once per `intervalMs`, so a flood of 401s (a
   * client's own beta header, say) costs at most one validation call per credential and interval.
   */
  function suspect(credential: UpstreamCredential): void {
    const key = `${credential.id}\n${credential.secret}`;
    if (running.has(key)) return;
    const now = ctx.clock();
    const last = checkedAt.get(key);
    if (last !== undefined && now - last < confirm.intervalMs) return;
    if (checkedAt.size >= CHECKS_MAX) checkedAt = new Map();
    checkedAt.set(key, now);
    const check = confirmAndMark(credential.secret)
      .catch(() => undefined) // a failed check proves nothing; the next 401 after the interval retries
      .finally(() => running.delete(key));
    running.set(key, check);
  }

  /** Marks the secret invalid only if its own validation call is refused with 401. */
  async function confirmAndMark(secret: string): Promise<void> {
    const answer = await probeStatus('anthropic', secret, confirm.target);
    if (answer?.kind !== 'status' || answer.status !== 401) return;
    await markInvalid(secret, confirm.actor);
  }

  /**
   * Marks invalid (audited) every active stored credential whose secret is `secret` — the version that
   * failed, not the credential id it was sent under: after a rotation the id holds a fresh secret, and
   * a still-running request's 401 with the previous one must not take the fresh one out.
   */
  async function markInvalid(secret: string, by: Actor): Promise<void> {
    let marked = 0;
    await change(ctx, by, async (u) => {
      const rows = await u.tx
        .selectFrom('credentials')
        .selectAll()
        .where('provider', '=', 'anthropic')
        .where('status', '=', 'active')
        .where('removed_at', 'is', null)
        .execute();
      for (const row of rows) {
        const plain = await ctx.installation.openSealed(`credentials:${row.id}`, {
          ciphertext: row.ciphertext,
          wrappedKey: row.wrapped_key,
          keyVersion: row.key_version,
        });
        const same = plain.toString('utf8') === secret;
        plain.fill(0);
        if (!same) continue;
        await u.tx
          .updateTable('credentials')
          .set({ status: 'invalid', updated_at: u.now })
          .where('id', '=', row.id)
          .where('status', '=', 'active')
          .execute();
        await u.audit('credential.invalid', 'credential', row.id, {
          name: row.name,
          reason: 'upstream answered 401 and a validation call confirmed it',
          version: row.retired_from === null ? 'current' : 'previous',
        });
        await u.changed('credential', row.id);
        await confirm.onMarked?.(u, { id: row.id, name: row.name });
        marked++;
      }
    });
    if (marked > 0) invalidate();
  }

  /** The scrub table of every loaded credential's secret (built once per load, on first use). */
  function scrubTable(): Promise<ScrubTable> {
    if (!scrubbing) {
      const building = all().then((creds) => {
        const secrets: string[] = [];
        for (const c of creds.values()) secrets.push(c.secret);
        return buildScrubTable(secrets);
      });
      building.catch(() => {
        if (scrubbing === building) scrubbing = null;
      });
      scrubbing = building;
    }
    return scrubbing;
  }

  /** Resolves once the checks now running have ended (close and tests). */
  async function settled(): Promise<void> {
    while (running.size > 0) await Promise.allSettled([...running.values()]);
  }

  function invalidate(): void {
    loaded = null;
    current = null;
    memo = new Map();
    scrubbing = null;
  }

  return { candidates, cachedCandidates, suspect, markInvalid, scrubTable, settled, invalidate };
}

export type CredentialPool = ReturnType<typeof createCredentialPool>;
