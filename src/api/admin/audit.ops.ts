// Admin operations on the hash-chained audit log: list (keyset-paged by seq in SQL: the log is kept
// forever and can be large, so it is never loaded whole) and verify. `audit witness` and `audit export`
// write files on the server's machine and stay local CLI commands.
import { z } from 'zod/v4';
import type { AuditEntry } from '../../audit/audit.repo.js';
import { parseSince } from '../../lib/dates.js';
import { AppError } from '../../lib/errors.js';
import { defineOp } from '../operation.js';
import { DEFAULT_PAGE, decodeCursor, encodeCursor, pageOf, pageQuery } from '../pagination.js';
import { iso, timeOutput } from '../schemas.js';

const dateText = z.string().min(1).max(40);
const exact = z.string().min(1).max(200);

export const auditEntrySchema = z.object({
  seq: z.number().int(),
  id: z.string(),
  at: timeOutput,
  actor: z.string(),
  action: z.string(),
  target_type: z.string().nullable(),
  target_id: z.string().nullable(),
  details: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
  hash: z.string(),
});

export type AuditEntryJson = z.output<typeof auditEntrySchema>;

/** An entry as `audit list --json` prints it. */
export function auditEntryJson(e: AuditEntry): AuditEntryJson {
  return {
    seq: e.seq,
    id: e.id,
    at: iso(e.at),
    actor: e.actor,
    action: e.action,
    target_type: e.targetType,
    target_id: e.targetId,
    details: { ...e.details },
    hash: e.hash,
  };
}

const breakSchema = z.object({
  index: z.number().int().meta({ description: '1-based position of the first broken entry' }),
  seq: z.number().int().nullable().meta({ description: 'the seq found there; null when no row' }),
  reason: z
    .string()
    .meta({ description: 'hash-mismatch, sequence-gap, missing-tail, anchor-missing, witness-…' }),
});

export const auditVerifySchema = z.union([
  z.object({
    ok: z.literal(true),
    entries: z.number().int(),
    head: z.object({ seq: z.number().int(), hash: z.string() }),
    witness: z.object({ path: z.string(), seq: z.number().int() }).nullable(),
  }),
  z.object({
    ok: z.literal(false),
    entries: z.number().int(),
    firstBroken: breakSchema,
    detail: z.string().optional(),
  }),
]);

export const auditOps = [
  defineOp({
    id: 'audit.list',
    method: 'GET',
    path: '/admin/v1/audit',
    tag: 'audit',
    summary: 'List audit entries, oldest first (paged by seq)',
    query: z.strictObject({
      ...pageQuery,
      since: dateText.optional().meta({ description: 'at or after: YYYY-MM-DD, an ISO time or e.g. 7d' }),
      until: dateText.optional().meta({ description: 'before (exclusive), same forms as since' }),
      actor: exact.optional().meta({ description: 'exactly this actor, e.g. admin:alice or admin-token' }),
      action: exact.optional().meta({ description: 'exactly this action, e.g. key.issue' }),
      target_type: exact.optional(),
      target_id: exact.optional(),
    }),
    response: pageOf(auditEntrySchema),
    run: async (ctx, { query }) => {
      const now = ctx.now();
      const after = decodeCursor(query.cursor, 1)?.[0];
      if (after !== undefined && (typeof after !== 'number' || !Number.isSafeInteger(after)))
        throw new AppError('invalid_input', 'the cursor is not one this server handed out');
      const limit = query.limit ?? DEFAULT_PAGE;
      // One row more than the page tells whether another page follows, so the last page says so.
      const rows = await ctx.services.audit.list({
        limit: limit + 1,
        ...(after === undefined ? {} : { afterSeq: after }),
        ...(query.since === undefined ? {} : { since: parseSince(query.since, now, 'since') }),
        ...(query.until === undefined ? {} : { until: parseSince(query.until, now, 'until') }),
        ...(query.actor === undefined ? {} : { actor: query.actor }),
        ...(query.action === undefined ? {} : { action: query.action }),
        ...(query.target_type === undefined ? {} : { targetType: query.target_type }),
        ...(query.target_id === undefined ? {} : { targetId: query.target_id }),
      });
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        items: page.map(auditEntryJson),
        next_cursor: rows.length > limit && last ? encodeCursor([last.seq]) : null,
      };
    },
  }),
  defineOp({
    id: 'audit.verify',
    method: 'POST',
    path: '/admin/v1/audit/verify',
    tag: 'audit',
    summary:
      'Verify the hash chain, its anchor and the witness file; a broken log is an answer (200, ok: false, the first broken entry)',
    response: auditVerifySchema,
    run: async (ctx) => ctx.services.audit.verify(),
  }),
];
