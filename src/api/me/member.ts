// What every self-service operation starts with: the calling member (any other principal is refused),
// and the service context its own stores need.
import type { ServiceContext } from '../../install/context.js';
import { AppError } from '../../lib/errors.js';
import type { OpContext } from '../operation.js';
import type { Principal } from '../principal.js';

export type Member = Extract<Principal, { kind: 'member' }>;

/** The member calling; refused for anyone else (routes.ts only mounts `/api/v1/me` for members). */
export function memberOf(ctx: OpContext): Member {
  if (ctx.principal.kind !== 'member')
    throw new AppError('unauthenticated', 'a valid gateway key with the self-service scope is required');
  return ctx.principal;
}

export function serviceContext(ctx: OpContext): ServiceContext {
  return { installation: ctx.installation, clock: ctx.now };
}
