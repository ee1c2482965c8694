// Admin operations on personal admin API tokens (`tga_…`). Rotating the installation's own token is
// deliberately not here: it is `tollgate admin-token rotate`, on the server's machine only, so a
// leaked token cannot lock the real administrators out.
import { z } from 'zod/v4';
import type { AdminTokenView } from '../../identity/admin-token.service.js';
import { defineOp } from '../operation.js';
import { pageList, pageOf, pageQuery } from '../pagination.js';
import { iso, isoOrNull, nameSchema, refSchema, timeOutput } from '../schemas.js';

export const adminTokenSchema = z.object({
  id: z.string(),
  user: z.string().meta({ description: "the holder's user name" }),
  user_id: z.string(),
  name: z.string().nullable(),
  hint: z.string().meta({ description: 'tga_… and the last 4 characters; never the token' }),
  status: z.enum(['active', 'revoked', 'inactive']).meta({
    description: 'inactive: not revoked, but its holder was removed or is no longer an admin',
  }),
  created_at: timeOutput,
  created_by: z.string(),
  last_used_at: timeOutput.nullable().meta({ description: 'to the minute' }),
  revoked_at: timeOutput.nullable(),
});

export const issuedAdminTokenSchema = adminTokenSchema.extend({
  token: z.string().meta({ description: 'the token, shown only in this answer' }),
});

export function adminTokenJson(t: AdminTokenView): z.input<typeof adminTokenSchema> {
  return {
    id: t.id,
    user: t.user,
    user_id: t.userId,
    name: t.name,
    hint: t.hint,
    status: t.status,
    created_at: iso(t.createdAt),
    created_by: t.createdBy,
    last_used_at: isoOrNull(t.lastUsedAt),
    revoked_at: isoOrNull(t.revokedAt),
  };
}

export const adminTokenOps = [
  defineOp({
    id: 'adminTokens.list',
    method: 'GET',
    path: '/admin/v1/admin-tokens',
    tag: 'admin-tokens',
    summary: 'List personal admin tokens, revoked ones too (oldest first)',
    query: z.strictObject({
      ...pageQuery,
      user: refSchema.optional().meta({ description: 'only the tokens of this user (name or id)' }),
    }),
    response: pageOf(adminTokenSchema),
    run: async (ctx, { query }) => {
      const tokens = await ctx.services.adminTokens.list(
        query.user === undefined ? {} : { user: query.user },
      );
      const page = pageList(tokens, (t) => [t.createdAt, t.id], query, 2);
      return { items: page.rows.map(adminTokenJson), next_cursor: page.next_cursor };
    },
  }),
  defineOp({
    id: 'adminTokens.issue',
    method: 'POST',
    path: '/admin/v1/admin-tokens',
    tag: 'admin-tokens',
    summary: 'Issue a personal admin token to an admin user; the token is in this answer only',
    status: 201,
    body: z.strictObject({
      user: refSchema.meta({ description: 'an admin user (name or id)' }),
      name: nameSchema.optional().meta({ description: 'a label, e.g. the script that uses it' }),
    }),
    response: issuedAdminTokenSchema,
    run: async (ctx, { body }) => {
      const issued = await ctx.services.adminTokens.issue(ctx.actor, {
        user: body.user,
        name: body.name ?? null,
      });
      return { ...adminTokenJson(issued.view), token: issued.token };
    },
  }),
  defineOp({
    id: 'adminTokens.revoke',
    method: 'DELETE',
    path: '/admin/v1/admin-tokens/{id}',
    tag: 'admin-tokens',
    summary: 'Revoke a personal admin token; it stops at once',
    params: z.strictObject({ id: refSchema.meta({ description: 'the token id (atk_…)' }) }),
    response: adminTokenSchema,
    run: async (ctx, { params }) =>
      adminTokenJson(await ctx.services.adminTokens.revoke(ctx.actor, params.id)),
  }),
];
