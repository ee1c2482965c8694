// Single sign-on: starting a sign-in, finishing it (claims → the rules in oidc-rules.ts → a person, bound,
// created or re-placed by their groups → a session), and rechecking an open session with the provider's
// refresh token so that a person removed at the provider loses Tollgate at once (users.disable).
import type { UserRow } from '../db/schema.js';
import type { TeamService } from '../identity/team.service.js';
import type { UserService, UserUpdate } from '../identity/user.service.js';
import { change, type ServiceContext } from '../install/context.js';
import { AppError, isAppError } from '../lib/errors.js';
import type { OidcClient, OidcSettings } from './oidc-client.js';
import type { PendingSignIn } from './oidc-pending.js';
import {
  baseNameOf,
  claimsOf,
  decideAccess,
  type KnownPerson,
  nthName,
  type OidcClaims,
  type Placement,
} from './oidc-rules.js';
import type { ActiveSession, OpenedSession, SessionStore } from './session.store.js';
import { openWithSession, sealWithSession } from './session-secret.js';
import type { ClientInfo } from './sign-in.service.js';

export interface OidcServiceDeps {
  readonly config: OidcSettings;
  readonly client: OidcClient;
  readonly users: UserService;
  readonly teams: TeamService;
  readonly sessions: SessionStore;
}

/** What a recheck did: the session (null = access ended), and a warning for the log when the provider was out. */
export interface RecheckResult {
  readonly session: ActiveSession | null;
  readonly warning: string | null;
}

const OIDC = { actor: 'oidc' };
/** After an outage, a session asks the provider again no sooner than this. */
const RETRY_AFTER_OUTAGE_MS = 60_000;
const MAX_NAME_TRIES = 100;

export function createOidcService(ctx: ServiceContext, deps: OidcServiceDeps) {
  const { config, client, users, teams, sessions } = deps;
  const db = ctx.installation.db.kysely;
  const recheckMs = config.recheck_minutes * 60_000;
  const inFlight = new Map<string, Promise<RecheckResult>>();
  const retryAt = new Map<string, number>();

  const subjectOf = (sub: string) => `${config.issuer}|${sub}`;

  /** Where a sign-in starts: the provider's authorization URL for this pending sign-in. */
  function authorizationUrl(pending: PendingSignIn): Promise<URL> {
    return client.authorizationUrl(pending);
  }

  /** Finishes a sign-in from the callback's query string; refusals are `forbidden` with a reason to show. */
  async function finish(query: string, pending: PendingSignIn, from: ClientInfo): Promise<OpenedSession> {
    const answer = await client.exchange(query, pending);
    const claims = claimsOf(answer.claims, config.groups_claim);
    if (!claims) throw new AppError('forbidden', 'the identity provider did not say who you are');
    const person = await admit(claims, 'sign-in');
    const opened = await change(ctx, { actor: `user:${person.name}` }, async (u) => {
      return sessions.open(u, { userId: person.id, method: 'oidc', ip: from.ip, userAgent: from.userAgent });
    });
    // The refresh token is kept only sealed under the session id, which the database does not hold.
    const sealed = answer.refreshToken ? sealWithSession(opened.token, opened.id, answer.refreshToken) : null;
    await sessions.recordOidcCheck(opened.id, sealed, ctx.clock());
    return opened;
  }

  /**
   * Applies the rules to the claims and makes the result true in Tollgate (bind, create, re-place);
   * on a recheck only the bound person counts.
   */
  async function admit(claims: OidcClaims, mode: 'sign-in' | 'recheck'): Promise<UserRow> {
    const subject = subjectOf(claims.sub);
    const boundRows = await db
      .selectFrom('users')
      .selectAll()
      .where('oidc_subject', '=', subject)
      .orderBy('created_at', 'desc')
      .execute();
    const bound = boundRows.find((r) => r.removed_at === null) ?? boundRows[0] ?? null;
    if (mode === 'recheck' && !bound) throw new AppError('forbidden', 'no Tollgate account is bound to you');
    const byEmail =
      mode === 'sign-in' && claims.email !== null && !bound
        ? await db
            .selectFrom('users')
            .selectAll()
            .where('removed_at', 'is', null)
            .where((eb) => eb(eb.fn('lower', ['email']), '=', (claims.email ?? '').toLowerCase()))
            .limit(3)
            .execute()
        : [];
    const decision = decideAccess(claims, config, {
      bySubject: bound ? known(bound) : null,
      byEmail: byEmail.map(known),
    });
    if (decision.kind === 'refuse') throw new AppError('forbidden', decision.reason);
    if (decision.person.kind === 'create') return create(claims, decision.placement);
    const chosen = decision.person;
    const row = [...(bound ? [bound] : []), ...byEmail].find((r) => r.id === chosen.id);
    if (!row) throw new AppError('internal', 'the person to sign in vanished');
    if (chosen.bind) await bind(row.id, subject);
    await place(row, decision.placement);
    return row;
  }

  async function create(claims: OidcClaims, placement: Placement): Promise<UserRow> {
    const name = await freeName(baseNameOf(claims));
    const team = placement.team ? (await ensureTeam(placement.team)).name : null;
    const email = claims.email !== null && isPlausibleEmail(claims.email) ? claims.email : null;
    const added = await users.add(OIDC, { name, email, role: placement.role ?? 'member', team });
    await bind(added.id, subjectOf(claims.sub));
    return users.get(added.id);
  }

  async function bind(userId: string, subject: string): Promise<void> {
    await change(ctx, OIDC, async (u) => {
      await u.tx
        .updateTable('users')
        .set({ oidc_subject: subject })
        .where('id', '=', userId)
        .where('oidc_subject', 'is', null)
        .execute();
      // The subject identifies the person at the provider; the audit names only which provider.
      await u.audit('user.oidc_bind', 'user', userId, { issuer: config.issuer });
      await u.changed('user', userId);
    });
  }

  /** Role and team follow the groups (when a group_map is configured); nothing is written if unchanged. */
  async function place(row: UserRow, placement: Placement): Promise<void> {
    const changes: UserUpdate = {};
    if (placement.role !== undefined && placement.role !== row.role) changes.role = placement.role;
    if (placement.team !== undefined) {
      const teamId = placement.team === null ? null : (await ensureTeam(placement.team)).id;
      if (teamId !== row.team_id) changes.team = teamId;
    }
    if (Object.keys(changes).length > 0) await users.update(OIDC, row.id, changes);
  }

  /** A team named in group_map that does not exist yet is created. */
  async function ensureTeam(name: string): Promise<{ id: string; name: string }> {
    try {
      return await teams.get(name);
    } catch (error) {
      if (!isAppError(error) || error.code !== 'not_found') throw error;
    }
    try {
      return await teams.add(OIDC, { name });
    } catch (error) {
      // Another sign-in created it meanwhile.
      if (isAppError(error) && error.code === 'conflict') return teams.get(name);
      throw error;
    }
  }

  async function freeName(base: string): Promise<string> {
    for (let n = 1; n <= MAX_NAME_TRIES; n++) {
      const name = nthName(base, n);
      const taken = await db
        .selectFrom('users')
        .select('id')
        .where('name', '=', name)
        .where('removed_at', 'is', null)
        .executeTakeFirst();
      if (!taken) return name;
    }
    throw new AppError('conflict', 'no free user name for you; ask an administrator to add you');
  }

  /**
   * The `recheck` hook of cookie sessions: when an OIDC session's last check is older than
   * recheck_minutes, asks the provider again. One refresh per session at a time in this process: a
   * rotating refresh token spent twice would read as revoked.
   */
  function recheck(session: ActiveSession): Promise<RecheckResult> {
    const now = ctx.clock();
    if (!isDue(session, now) || (retryAt.get(session.id) ?? 0) > now)
      return Promise.resolve({ session, warning: null });
    const running = inFlight.get(session.id);
    if (running) return running;
    const job = recheckNow(session.token, now).finally(() => inFlight.delete(session.id));
    inFlight.set(session.id, job);
    return job;
  }

  function isDue(session: ActiveSession, now: number): boolean {
    if (session.method !== 'oidc' || !session.person || session.oidcRefresh === null) return false;
    return session.oidcCheckedAt === null || now - session.oidcCheckedAt >= recheckMs;
  }

  async function recheckNow(token: string, now: number): Promise<RecheckResult> {
    // Read again: a request that resolved the session before another finished its refresh holds a
    // refresh token that is already spent.
    const session = await sessions.resolve(token, now);
    if (!session || !isDue(session, now) || !session.person) return { session, warning: null };
    const person = session.person;
    const refreshToken = openWithSession(token, session.id, session.oidcRefresh ?? '');
    const row = await db.selectFrom('users').selectAll().where('id', '=', person.id).executeTakeFirst();
    const prefix = `${config.issuer}|`;
    if (refreshToken === null || !row?.oidc_subject?.startsWith(prefix)) {
      // Nothing to ask the provider with: this session ends (the person keeps their account).
      await sessions.end(session.id, 'single sign-on cannot be rechecked', now);
      return { session: null, warning: null };
    }
    const outcome = await client.refresh(refreshToken, row.oidc_subject.slice(prefix.length));
    if (outcome.kind === 'unavailable') {
      // An outage of the provider must not de-provision anyone: keep the session, try again later.
      if (retryAt.size > 10_000) retryAt.clear();
      retryAt.set(session.id, now + RETRY_AFTER_OUTAGE_MS);
      return { session, warning: `single sign-on recheck postponed: ${outcome.why}` };
    }
    retryAt.delete(session.id);
    if (outcome.kind === 'refused') {
      await users.disable(OIDC, person.id, 'refused by the identity provider');
      return { session: null, warning: null };
    }
    const claims = claimsOf(outcome.answer.claims, config.groups_claim);
    try {
      if (!claims) throw new AppError('forbidden', 'the identity provider did not say who you are');
      await admit(claims, 'recheck');
    } catch (error) {
      if (!isAppError(error) || error.code !== 'forbidden') throw error;
      await users.disable(OIDC, person.id, `single sign-on rules: ${error.message}`);
      return { session: null, warning: null };
    }
    const fresh = outcome.answer.refreshToken;
    await sessions.recordOidcCheck(session.id, fresh ? sealWithSession(token, session.id, fresh) : null, now);
    // Role and team may have changed with the groups.
    return { session: await sessions.resolve(token, now), warning: null };
  }

  return { authorizationUrl, finish, recheck };
}

function known(row: UserRow): KnownPerson {
  return {
    id: row.id,
    role: row.role,
    disabled: row.disabled_at !== null,
    removed: row.removed_at !== null,
    oidcSubject: row.oidc_subject,
  };
}

function isPlausibleEmail(email: string): boolean {
  return /^[^\s@]{1,64}@[^\s@]{1,190}\.[^\s@]{2,63}$/.test(email);
}

export type OidcService = ReturnType<typeof createOidcService>;
