// Invite (login) links: `{public_url}/invite/tgi_…`, single-use, valid 24 h, stored as a keyed hash.
// Opening one sets the person's password and signs them in; a new link voids the earlier ones, so an
// admin resets a forgotten password by issuing another. Every unusable link — unknown, used, expired,
// voided, its person removed — gets the same answer.
import {
  hashGatewayKey,
  hasPrefixedSecretShape,
  INVITE_TOKEN_PREFIX,
  newPrefixedSecret,
} from '../crypto/gateway-key.js';
import type { UserService } from '../identity/user.service.js';
import { type Actor, change, type ServiceContext } from '../install/context.js';
import { AppError } from '../lib/errors.js';
import { newId } from '../lib/ids.js';
import { checkNewPassword, hashPassword } from './password.js';
import { endAllOf, type OpenedSession, type SessionStore } from './session.store.js';
import type { ClientInfo } from './sign-in.service.js';
import { addressKey, type SignInThrottle } from './sign-in-throttle.js';

export const INVITE_TTL_MS = 24 * 60 * 60 * 1000;
const UNUSABLE = 'this invite link is not valid: it may have been used, replaced by a newer one, or expired';

export interface IssuedInvite {
  readonly id: string;
  readonly url: string;
  readonly user: string;
  readonly expiresAt: number;
}

export function createInviteService(
  ctx: ServiceContext,
  deps: { users: UserService; sessions: SessionStore; throttle: SignInThrottle; publicUrl: string },
) {
  const db = ctx.installation.db.kysely;
  const pepper = ctx.installation.pepper;

  /** A new link for a person (voiding their earlier unused ones); shown once. */
  async function issue(by: Actor, nameOrId: string): Promise<IssuedInvite> {
    const user = await deps.users.get(nameOrId);
    if (user.role === 'service')
      throw new AppError(
        'invalid_input',
        `${user.name} is a service user: services use gateway keys, not sign-in`,
      );
    const token = newPrefixedSecret(INVITE_TOKEN_PREFIX);
    return change(ctx, by, async (u) => {
      await u.tx
        .updateTable('invites')
        .set({ used_at: u.now })
        .where('user_id', '=', user.id)
        .where('used_at', 'is', null)
        .execute();
      const id = newId('inv');
      const expiresAt = u.now + INVITE_TTL_MS;
      await u.tx
        .insertInto('invites')
        .values({
          id,
          hash: hashGatewayKey(pepper, token),
          user_id: user.id,
          created_at: u.now,
          created_by: by.actor,
          expires_at: expiresAt,
          used_at: null,
        })
        .execute();
      await u.audit('user.login_link', 'user', user.id, { invite_id: id, expires_at: expiresAt });
      return { id, url: `${deps.publicUrl}/invite/${token}`, user: user.name, expiresAt };
    });
  }

  /** Who a link is for (for the page that asks for a password); the same refusal for every bad link. */
  async function inspect(token: string, client: ClientInfo): Promise<{ user: string; expiresAt: number }> {
    const found = await usableOrRefuse(token, client);
    return { user: found.name, expiresAt: found.expires_at };
  }

  /** Sets the password, uses up the link, ends the person's other sessions and opens a new one. */
  async function accept(token: string, password: string, client: ClientInfo): Promise<OpenedSession> {
    const found = await usableOrRefuse(token, client);
    checkNewPassword(password, { name: found.name, email: found.email });
    const hash = await hashPassword(password);
    return change(ctx, { actor: `user:${found.name}` }, async (u) => {
      // Only one of two racing uses wins: the update names the link still unused.
      const used = await u.tx
        .updateTable('invites')
        .set({ used_at: u.now })
        .where('id', '=', found.invite_id)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      if (Number(used.numUpdatedRows) !== 1) throw new AppError('not_found', UNUSABLE);
      await u.tx.updateTable('users').set({ password_hash: hash }).where('id', '=', found.user_id).execute();
      const ended = await endAllOf(u.tx, found.user_id, 'password set by invite link', u.now);
      const opened = await deps.sessions.open(u, {
        userId: found.user_id,
        method: 'invite',
        ip: client.ip,
        userAgent: client.userAgent,
      });
      await u.audit('user.password_set', 'user', found.user_id, {
        invite_id: found.invite_id,
        ended_sessions: ended,
      });
      return opened;
    });
  }

  function refuseIfThrottled(keys: readonly string[]): void {
    const wait = deps.throttle.retryAfter(keys, ctx.clock());
    if (wait > 0)
      throw new AppError('rate_limited', `too many failed attempts; try again in ${wait} s`, {
        retry_after_s: wait,
      });
  }

  /**
   * The usable link, or one refusal for every bad one. Looking a link up is guessing as much as using
   * it is: the same per-address throttle counts and refuses both.
   */
  async function usableOrRefuse(token: string, client: ClientInfo) {
    const keys = [addressKey(client.ip)];
    refuseIfThrottled(keys);
    const found = await usable(token);
    if (!found) {
      deps.throttle.fail(keys, ctx.clock());
      throw new AppError('not_found', UNUSABLE);
    }
    return found;
  }

  async function usable(token: string) {
    if (!hasPrefixedSecretShape(token, INVITE_TOKEN_PREFIX)) return null;
    const row = await db
      .selectFrom('invites')
      .innerJoin('users', 'users.id', 'invites.user_id')
      .select([
        'invites.id as invite_id',
        'invites.expires_at',
        'invites.used_at',
        'users.id as user_id',
        'users.name',
        'users.email',
        'users.role',
        'users.removed_at',
        'users.disabled_at',
      ])
      .where('invites.hash', '=', hashGatewayKey(pepper, token))
      .executeTakeFirst();
    if (!row || row.used_at !== null || row.expires_at <= ctx.clock()) return null;
    if (row.removed_at !== null || row.disabled_at !== null || row.role === 'service') return null;
    return row;
  }

  return { issue, inspect, accept };
}

export type InviteService = ReturnType<typeof createInviteService>;
