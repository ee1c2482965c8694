// Input validation of operations: the same zod schemas for HTTP and the local CLI, and one way of
// saying what is wrong (an unknown field is named, so a smuggled `role` or `owner` is refused, not ignored).
import type { z } from 'zod/v4';
import { AppError } from '../lib/errors.js';
import type { Operation, RawInput } from './operation.js';

/** Validates one part of the input, or refuses with a message naming the field. */
export function parsePart(part: 'path' | 'query' | 'body', schema: z.ZodType, value: unknown): unknown {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  throw new AppError('invalid_input', describeIssue(part, result.error.issues), {
    fields: result.error.issues.flatMap((i) =>
      i.code === 'unrecognized_keys'
        ? i.keys.map((k) => fieldName(part, [...i.path, k]))
        : [fieldName(part, i.path)],
    ),
  });
}

export function parseInput(op: Operation, raw: RawInput): { params: unknown; query: unknown; body: unknown } {
  const params = parsePart('path', op.params, raw.params ?? {});
  const query = parsePart('query', op.query, raw.query ?? {});
  if (op.body === null) {
    if (raw.body !== undefined && raw.body !== null && !isEmptyObject(raw.body))
      throw new AppError('invalid_input', `${op.method} ${op.path} takes no request body`);
    return { params, query, body: {} };
  }
  if (raw.body === undefined || raw.body === null || typeof raw.body !== 'object' || Array.isArray(raw.body))
    throw new AppError('invalid_input', 'the request body must be a JSON object');
  return { params, query, body: parsePart('body', op.body, raw.body) };
}

function isEmptyObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && Object.keys(value).length === 0;
}

function describeIssue(part: string, issues: readonly z.core.$ZodIssue[]): string {
  const first = issues[0];
  if (!first) return `invalid ${part}`;
  if (first.code === 'unrecognized_keys') {
    const names = first.keys.map((k) => fieldName(part, [...first.path, k]));
    return `unknown field${names.length > 1 ? 's' : ''} ${names.join(', ')} in the ${part}`;
  }
  const where = fieldName(part, first.path);
  return /^(must|has) /.test(first.message) ? `${where} ${first.message}` : `${where}: ${first.message}`;
}

function fieldName(part: string, path: readonly PropertyKey[]): string {
  const dotted = path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.');
  const shown = dotted.length > 80 ? `${dotted.slice(0, 80)}…` : dotted;
  if (shown === '') return part;
  // Plain names stay plain; anything else (a client's odd key) is quoted, so it cannot forge the message.
  return /^[A-Za-z0-9_.[\]]+$/.test(shown) ? shown : JSON.stringify(shown);
}
