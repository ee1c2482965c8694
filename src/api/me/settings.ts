// The member's settings object (product.md §6, camelCase there): which of their own credentials are
// stored (hints only, never a secret) and their preferred model.
import { z } from 'zod/v4';
import type { Provider } from '../../db/schema.js';
import type { OpContext } from '../operation.js';

export const settingsSchema = z.object({
  hasAnthropicKey: z.boolean(),
  hasGitHubToken: z.boolean(),
  hasLinearKey: z.boolean(),
  preferredModel: z.string().nullable(),
  anthropicKeyHint: z.string().nullable(),
});

export type Settings = z.input<typeof settingsSchema>;

/** The settings of `userId`: their own live, active credentials per provider and their preferred model. */
export async function settingsOf(ctx: OpContext, userId: string): Promise<Settings> {
  const db = ctx.installation.db.kysely;
  const [user, creds] = await Promise.all([
    db.selectFrom('users').select('preferred_model').where('id', '=', userId).executeTakeFirst(),
    db
      .selectFrom('credentials')
      .select(['provider', 'hint', 'preferred'])
      .where('owner_type', '=', 'user')
      .where('owner_id', '=', userId)
      .where('removed_at', 'is', null)
      .where('status', '=', 'active')
      // The preferred one first: its hint is the one shown.
      .orderBy('preferred', 'desc')
      .orderBy('created_at', 'desc')
      .execute(),
  ]);
  const first = (provider: Provider) => creds.find((c) => c.provider === provider);
  return {
    hasAnthropicKey: first('anthropic') !== undefined,
    hasGitHubToken: first('github') !== undefined,
    hasLinearKey: first('linear') !== undefined,
    preferredModel: user?.preferred_model ?? null,
    anthropicKeyHint: first('anthropic')?.hint ?? null,
  };
}
