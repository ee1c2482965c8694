// Schemas shared by operations: names, money, times and enumerations as the API reads and writes them.
import { z } from 'zod/v4';
import { AppError } from '../lib/errors.js';
import { formatUsd, parseUsd, usdToMicro } from '../lib/money.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

/** A user, team, credential, key or profile name (the rule of `validateName`). */
export const nameSchema = z
  .string()
  .regex(NAME, 'use 1-64 letters, digits, ".", "_", "-" or "@", starting with a letter or digit');

/** An object named by name or id in a path. */
export const refSchema = z.string().min(1).max(200);

/** A USD amount in a request: a decimal string ("12.50") or a JSON number; becomes integer micro-USD. */
export const usdInput = z
  .union([z.string().max(40), z.number()])
  .transform((value, ctx) => {
    try {
      return typeof value === 'number' ? usdToMicro(value, 'the amount') : parseUsd(value, 'the amount');
    } catch (error) {
      ctx.addIssue({
        code: 'custom',
        message: error instanceof AppError ? error.message : 'not an amount in USD',
      });
      return z.NEVER;
    }
  })
  .meta({ description: 'USD as a decimal string ("12.50") or a number' });

/** A USD amount, or null for none (clears the limit). */
export const usdOrNone = usdInput.nullable();

/** USD in an answer: a decimal string, never a float. */
export const usdOutput = z.string().meta({ description: 'USD as a decimal string' });

export const usdOut = (micro: number): string => formatUsd(micro);
export const usdOrNull = (micro: number | null): string | null => (micro === null ? null : formatUsd(micro));

/** ISO-8601 timestamps in answers. */
export const timeOutput = z.string().meta({ description: 'ISO-8601 time' });
export const iso = (ms: number): string => new Date(ms).toISOString();
export const isoOrNull = (ms: number | null): string | null =>
  ms === null ? null : new Date(ms).toISOString();

export const byokSchema = z.enum(['preferred', 'required']);

/** `{ok: true}`-style answers of operations that return no object. */
export const okSchema = z.object({ ok: z.literal(true) });
