// Admin operations on how people sign in: login links (invite / password reset), disabling and
// enabling a person, and their dashboard sessions. A link's URL is in the answer of `loginLink` only.
import { z } from 'zod/v4';
import { defineOp } from '../operation.js';
import { pageList, pageOf, pageQuery } from '../pagination.js';
import { iso, refSchema, timeOutput } from '../schemas.js';
import { userJson, userSchema } from './users.ops.js';

const userRef = z.strictObject({ user: refSchema.meta({ description: 'user name or id' }) });

export const loginLinkSchema = z.object({
  user: z.string(),
  url: z.string().meta({ description: 'the single-use sign-in link; shown only in this answer' }),
  expires_at: timeOutput,
});

export const sessionSchema = z.object({
  id: z.string(),
  method: z.string(),
  created_at: timeOutput,
  last_seen_at: timeOutput,
  expires_at: timeOutput,
  ip: z.string().nullable(),
  user_agent: z.string().nullable(),
});

export const endedSessionsSchema = z.object({ user: z.string(), ended_sessions: z.number().int() });

export const signInOps = [
  defineOp({
    id: 'users.loginLink',
    method: 'POST',
    path: '/admin/v1/users/{user}/login-link',
    tag: 'users',
    summary:
      'Issue a single-use sign-in link (valid 24 h) with which a person sets their password; it voids earlier links',
    status: 201,
    params: userRef,
    response: loginLinkSchema,
    run: async (ctx, { params }) => {
      const link = await ctx.services.invites.issue(ctx.actor, params.user);
      return { user: link.user, url: link.url, expires_at: iso(link.expiresAt) };
    },
  }),
  defineOp({
    id: 'users.disable',
    method: 'POST',
    path: '/admin/v1/users/{user}/disable',
    tag: 'users',
    summary:
      'Disable a person: every gateway key and admin token revoked, every session ended, pending links voided',
    params: userRef,
    body: z.strictObject({ reason: z.string().max(200).optional() }),
    response: userSchema,
    run: async (ctx, { params, body }) => {
      const done = await ctx.services.users.disable(
        ctx.actor,
        params.user,
        body.reason ?? 'disabled by an admin',
      );
      return userJson(await ctx.services.users.show(done.id));
    },
  }),
  defineOp({
    id: 'users.enable',
    method: 'POST',
    path: '/admin/v1/users/{user}/enable',
    tag: 'users',
    summary: 'Let a disabled person sign in again (their revoked keys stay revoked)',
    params: userRef,
    response: userSchema,
    run: async (ctx, { params }) => {
      await ctx.services.users.enable(ctx.actor, params.user);
      return userJson(await ctx.services.users.show(params.user));
    },
  }),
  defineOp({
    id: 'users.sessions.list',
    method: 'GET',
    path: '/admin/v1/users/{user}/sessions',
    tag: 'users',
    summary: "A person's live dashboard sessions, oldest first",
    params: userRef,
    query: z.strictObject({ ...pageQuery }),
    response: pageOf(sessionSchema),
    run: async (ctx, { params, query }) => {
      const sessions = await ctx.services.sessionAdmin.listOf(params.user);
      const page = pageList(sessions, (s) => [s.createdAt, s.id], query, 2);
      return {
        items: page.rows.map((s) => ({
          id: s.id,
          method: s.method,
          created_at: iso(s.createdAt),
          last_seen_at: iso(s.lastSeenAt),
          expires_at: iso(s.expiresAt),
          ip: s.ip,
          user_agent: s.userAgent,
        })),
        next_cursor: page.next_cursor,
      };
    },
  }),
  defineOp({
    id: 'users.sessions.end',
    method: 'DELETE',
    path: '/admin/v1/users/{user}/sessions',
    tag: 'users',
    summary: 'End every dashboard session of a person (they must sign in again)',
    params: userRef,
    response: endedSessionsSchema,
    run: async (ctx, { params }) => {
      const done = await ctx.services.sessionAdmin.endAll(ctx.actor, params.user);
      return { user: done.user, ended_sessions: done.endedSessions };
    },
  }),
];
