// Enrollment codes: created by `coder bootstrap --enroll`, redeemed once by `claude-code setup` through
// POST /api/v1/enroll, which is when the gateway key is issued. Only an HMAC of each code is stored.
import { randomBytes } from 'node:crypto';
import { type Actor, change, type ServiceContext } from '../install/context.js';
import { base62Encode } from '../lib/ids.js';
import type { CoderService } from './coder.service.js';
import {
  ENROLLMENT_TTL_MS,
  generateEnrollmentCode,
  hashEnrollmentCode,
  normalizeEnrollmentCode,
} from './enrollment-code.js';

export type Redemption =
  | { ok: true; key: string; keyId: string; userId: string; profile: string; model: string }
  | { ok: false };

export function createEnrollmentService(ctx: ServiceContext, deps: { coders: CoderService }) {
  const db = ctx.installation.db.kysely;
  const pepper = ctx.installation.pepper;

  /** A new single-use code for `userId`, valid for 15 minutes; the code is returned only here. */
  async function create(
    by: Actor,
    input: { userId: string; model: string },
  ): Promise<{ id: string; code: string; expiresAt: number }> {
    const code = generateEnrollmentCode();
    const id = `enr_${base62Encode(randomBytes(16), 22)}`;
    return change(ctx, by, async (u) => {
      const expiresAt = u.now + ENROLLMENT_TTL_MS;
      await u.tx
        .insertInto('enrollment_codes')
        .values({
          id,
          user_id: input.userId,
          code_hash: hashEnrollmentCode(pepper, code),
          model: input.model,
          created_at: u.now,
          expires_at: expiresAt,
          used_at: null,
          created_by: by.actor,
        })
        .execute();
      await u.audit('enrollment.create', 'user', input.userId, { enrollment_id: id, expires_at: expiresAt });
      return { id, code, expiresAt };
    });
  }

  /**
   * Exchanges a code for a new gateway key. Every refusal (malformed, unknown, expired, used, user gone)
   * is the same `{ok: false}`, so a caller learns nothing about which codes exist.
   */
  async function redeem(text: string): Promise<Redemption> {
    const canonical = normalizeEnrollmentCode(text);
    if (canonical === null) return { ok: false };
    const hash = hashEnrollmentCode(pepper, canonical);
    const found = await db
      .selectFrom('enrollment_codes')
      .innerJoin('users', 'users.id', 'enrollment_codes.user_id')
      .select(['enrollment_codes.id', 'users.name'])
      .where('enrollment_codes.code_hash', '=', hash)
      .where('users.removed_at', 'is', null)
      .executeTakeFirst();
    if (!found) return { ok: false };
    const by: Actor = { actor: `enroll:${found.name}` };
    // The conditional UPDATE is the single-use guarantee: of two concurrent redemptions only one matches.
    const claimed = await change(ctx, by, async (u) => {
      const row = await u.tx
        .updateTable('enrollment_codes')
        .set({ used_at: u.now })
        .where('id', '=', found.id)
        .where('used_at', 'is', null)
        .where('expires_at', '>', u.now)
        .returning(['user_id', 'model'])
        .executeTakeFirst();
      if (row) await u.audit('enrollment.redeem', 'user', row.user_id, { enrollment_id: found.id });
      return row ?? null;
    });
    if (!claimed) return { ok: false };
    const issued = await deps.coders.issueKey(by, claimed.user_id);
    return {
      ok: true,
      key: issued.key,
      keyId: issued.id,
      userId: claimed.user_id,
      profile: found.name,
      model: claimed.model,
    };
  }

  return { create, redeem };
}

export type EnrollmentService = ReturnType<typeof createEnrollmentService>;
