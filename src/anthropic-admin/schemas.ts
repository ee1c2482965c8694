// The Admin API's answers as zod schemas, so a malformed upstream answer is a clear error, not a crash.
import { z } from 'zod';

export const API_KEY_STATUSES = ['active', 'inactive', 'archived'] as const;
export type ApiKeyStatus = (typeof API_KEY_STATUSES)[number];

export const organizationSchema = z.object({
  id: z.string(),
  type: z.literal('organization'),
  name: z.string(),
});

export const workspaceSchema = z.object({
  id: z.string(),
  type: z.literal('workspace'),
  name: z.string(),
  created_at: z.string(),
  archived_at: z.string().nullable(),
  display_color: z.string().nullable().optional(),
});

export const apiKeySchema = z.object({
  id: z.string(),
  type: z.literal('api_key'),
  name: z.string(),
  workspace_id: z.string().nullable(),
  created_at: z.string(),
  created_by: z.object({ id: z.string(), type: z.string() }).nullable().optional(),
  expires_at: z.string().nullable().optional(),
  partial_key_hint: z.string().nullable(),
  status: z.enum(API_KEY_STATUSES),
});

/** A list answer paged by cursor (`limit`/`after_id`). */
export function cursorPageSchema<T extends z.ZodType>(item: T) {
  return z.object({
    data: z.array(item),
    first_id: z.string().nullable(),
    last_id: z.string().nullable(),
    has_more: z.boolean(),
  });
}

/** A report answer paged by token (`page`/`next_page`). */
export function tokenPageSchema<T extends z.ZodType>(item: T) {
  return z.object({ data: z.array(item), has_more: z.boolean(), next_page: z.string().nullable() });
}

export type Organization = z.output<typeof organizationSchema>;
export type Workspace = z.output<typeof workspaceSchema>;
export type ApiKey = z.output<typeof apiKeySchema>;

/** Anthropic's own error body: `{type:"error", error:{type, message}}`. */
export const errorBodySchema = z.object({
  type: z.literal('error'),
  error: z.object({ type: z.string(), message: z.string() }),
});
