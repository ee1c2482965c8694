// The member's own credentials: PUT validates (free call to the provider), seals and stores one per
// provider, replacing the previous; DELETE shreds it. Every PUT attempt is throttled and audited as
// `me.credential.set` (stored with the hint, rejected, or the first throttled one of a window; never the
// secret).
import { z } from 'zod/v4';
import { change } from '../../install/context.js';
import { AppError, isAppError } from '../../lib/errors.js';
import { OWN_PROVIDERS, removeOwnCredential, setOwnCredential } from '../../vault/own-credential.js';
import { defineOp, type OpContext } from '../operation.js';
import { type Member, memberOf, serviceContext } from './member.js';
import { settingsOf, settingsSchema } from './settings.js';
import { credentialAttempt } from './throttle.js';

const providerParams = z.strictObject({ provider: z.enum(OWN_PROVIDERS) });

/** Audits an attempt that stored nothing (the stored case is audited with the insert itself). */
async function auditAttempt(
  ctx: OpContext,
  member: Member,
  provider: string,
  outcome: 'rejected' | 'throttled' | 'unverified',
  code: string,
): Promise<void> {
  await change(serviceContext(ctx), ctx.actor, async (u) => {
    await u.audit('me.credential.set', 'user', member.userId, { outcome, provider, code, ip: ctx.clientIp });
  });
}

export const credentialOps = [
  defineOp({
    id: 'me.credentials.set',
    method: 'PUT',
    path: '/api/v1/me/credentials/{provider}',
    tag: 'me',
    summary:
      'Store your own Anthropic key, GitHub token or Linear key (validated first; attempts are limited)',
    params: providerParams,
    body: z.strictObject({ secret: z.string().min(1).max(4096) }),
    response: settingsSchema,
    run: async (ctx, { params, body }) => {
      const member = memberOf(ctx);
      const throttled = credentialAttempt(ctx.shared, member.userId, ctx.clientIp, ctx.now());
      if (throttled !== null) {
        // Audited once per window (its first refusal): a flood of refused attempts must not become a
        // flood of audit writes.
        if (throttled.first) await auditAttempt(ctx, member, params.provider, 'throttled', 'rate_limited');
        throw new AppError(
          'rate_limited',
          `too many credential attempts; try again in ${throttled.waitS} s`,
          {
            retry_after_s: throttled.waitS,
          },
        );
      }
      try {
        await ctx.services.credentials.validate(params.provider, body.secret, true);
      } catch (error) {
        const code = isAppError(error) ? error.code : 'internal';
        // A refused or malformed secret is "rejected"; a provider we could not ask leaves it "unverified".
        const rejected = code === 'credential_rejected' || code === 'invalid_input';
        await auditAttempt(ctx, member, params.provider, rejected ? 'rejected' : 'unverified', code);
        throw error;
      }
      await setOwnCredential(serviceContext(ctx), ctx.actor, {
        userId: member.userId,
        provider: params.provider,
        secret: body.secret,
      });
      return settingsOf(ctx, member.userId);
    },
  }),
  defineOp({
    id: 'me.credentials.remove',
    method: 'DELETE',
    path: '/api/v1/me/credentials/{provider}',
    tag: 'me',
    summary: 'Remove your own credential of a provider (its secret is destroyed)',
    params: providerParams,
    response: settingsSchema,
    run: async (ctx, { params }) => {
      const member = memberOf(ctx);
      await removeOwnCredential(serviceContext(ctx), ctx.actor, {
        userId: member.userId,
        provider: params.provider,
      });
      return settingsOf(ctx, member.userId);
    },
  }),
];
