// Admin operations on key profiles: named policy templates that `keys.issue` starts from.
import { z } from 'zod/v4';
import { MAX_DESCRIPTION, type ProfileView } from '../../keys/profile.service.js';
import { defineOp } from '../operation.js';
import { pageList, pageOf, pageQuery } from '../pagination.js';
import { iso, nameSchema, refSchema, timeOutput } from '../schemas.js';
import { policyFromInput, policyInput, policyJson, policyOutput } from './policy.schemas.js';

export const profileSchema = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  ...policyOutput,
  created_at: timeOutput,
  updated_at: timeOutput,
});

export function profileJson(p: ProfileView): z.input<typeof profileSchema> {
  return {
    id: p.id,
    name: p.name,
    description: p.description,
    ...policyJson(p.policy),
    created_at: iso(p.createdAt),
    updated_at: iso(p.updatedAt),
  };
}

const profileRef = z.strictObject({ profile: refSchema.meta({ description: 'profile name or id' }) });

export const profileOps = [
  defineOp({
    id: 'profiles.list',
    method: 'GET',
    path: '/admin/v1/profiles',
    tag: 'profiles',
    summary: 'List key profiles (ordered by name)',
    query: z.strictObject({ ...pageQuery }),
    response: pageOf(profileSchema),
    run: async (ctx, { query }) => {
      const page = pageList(await ctx.services.profiles.list(), (p) => [p.name, p.id], query, 2);
      return { items: page.rows.map(profileJson), next_cursor: page.next_cursor };
    },
  }),
  defineOp({
    id: 'profiles.create',
    method: 'POST',
    path: '/admin/v1/profiles',
    tag: 'profiles',
    summary:
      'Add a key profile; fields left out take the defaults of a plain key (no limit, scope inference)',
    status: 201,
    body: z.strictObject({
      name: nameSchema,
      description: z.string().max(MAX_DESCRIPTION).nullable().optional(),
      ...policyInput,
    }),
    response: profileSchema,
    run: async (ctx, { body }) =>
      profileJson(
        await ctx.services.profiles.add(ctx.actor, {
          name: body.name,
          description: body.description ?? null,
          policy: policyFromInput(body),
        }),
      ),
  }),
  defineOp({
    id: 'profiles.get',
    method: 'GET',
    path: '/admin/v1/profiles/{profile}',
    tag: 'profiles',
    summary: 'Show a key profile',
    params: profileRef,
    response: profileSchema,
    run: async (ctx, { params }) => profileJson(await ctx.services.profiles.show(params.profile)),
  }),
  defineOp({
    id: 'profiles.remove',
    method: 'DELETE',
    path: '/admin/v1/profiles/{profile}',
    tag: 'profiles',
    summary:
      "Delete a key profile (keys issued with it keep their policy: it was copied); refused while it is someone's key ceiling",
    params: profileRef,
    response: z.object({ id: z.string(), name: z.string(), removed: z.literal(true) }),
    run: async (ctx, { params }) => ({
      ...(await ctx.services.profiles.remove(ctx.actor, params.profile)),
      removed: true as const,
    }),
  }),
];
