// A user's own credential of a provider, set through the self-service API: one per user and provider,
// under a fixed name, replaced (old secret shredded) in the same transaction that stores the new one.

import { seal } from '../crypto/envelope.js';
import type { Provider } from '../db/schema.js';
import type { Tx } from '../db/tx.js';
import { type Actor, change, type ServiceContext } from '../install/context.js';
import { AppError } from '../lib/errors.js';
import { newId } from '../lib/ids.js';
import { newCredentialRow } from './credential-row.js';
import { credentialHint } from './hint.js';

export const OWN_PROVIDERS = ['anthropic', 'github', 'linear'] as const satisfies readonly Provider[];
export type OwnProvider = (typeof OWN_PROVIDERS)[number];

/** The fixed name of a user's self-service credential (user ids fit the name rule; names might not). */
export function ownCredentialName(provider: OwnProvider, userId: string): string {
  return `self.${provider}.${userId}`;
}

/**
 * Seals and stores `secret` (already validated) as the user's own credential of `provider`, replacing
 * the previous self-service one. It becomes the user's preferred credential of that provider.
 */
export async function setOwnCredential(
  ctx: ServiceContext,
  by: Actor,
  input: { userId: string; provider: OwnProvider; secret: string },
): Promise<{ id: string; hint: string }> {
  const name = ownCredentialName(input.provider, input.userId);
  const id = newId('cred');
  const sealed = seal(ctx.installation.master, `credentials:${id}`, Buffer.from(input.secret, 'utf8'));
  const hint = credentialHint(input.provider, input.secret);
  await change(ctx, by, async (u) => {
    const previous = await shredOwn(u.tx, u.now, name);
    if (previous !== null) await u.changed('credential', previous);
    // The new secret is the one the gateway picks first among the user's credentials of this provider.
    await u.tx
      .updateTable('credentials')
      .set({ preferred: 0, updated_at: u.now })
      .where('provider', '=', input.provider)
      .where('owner_type', '=', 'user')
      .where('owner_id', '=', input.userId)
      .where('removed_at', 'is', null)
      .execute();
    await u.tx
      .insertInto('credentials')
      .values(
        newCredentialRow({
          id,
          name,
          provider: input.provider,
          ownerType: 'user',
          ownerId: input.userId,
          environment: null,
          preferred: true,
          hint,
          sealed,
          now: u.now,
        }),
      )
      .execute();
    await u.audit('me.credential.set', 'credential', id, {
      outcome: 'stored',
      provider: input.provider,
      // The tail of the hint only: the audit log refuses anything shaped like a key (an Anthropic hint
      // starts with the key's own prefix), and the last four characters identify it well enough.
      hint: `...${hint.slice(-4)}`,
      replaced: previous,
    });
    await u.changed('credential', id);
  });
  return { id, hint };
}

/** Shreds the user's self-service credential of `provider`; not_found when there is none. */
export async function removeOwnCredential(
  ctx: ServiceContext,
  by: Actor,
  input: { userId: string; provider: OwnProvider },
): Promise<void> {
  const name = ownCredentialName(input.provider, input.userId);
  await change(ctx, by, async (u) => {
    const removed = await shredOwn(u.tx, u.now, name);
    if (removed === null) throw new AppError('not_found', `you have no ${input.provider} credential stored`);
    await u.audit('me.credential.remove', 'credential', removed, { provider: input.provider });
    await u.changed('credential', removed);
  });
}

/** Marks the live credential named `name` removed and overwrites its sealed secret; its id or null. */
async function shredOwn(tx: Tx, now: number, name: string): Promise<string | null> {
  const rows = await tx
    .updateTable('credentials')
    .set({
      removed_at: now,
      status: 'inactive',
      preferred: 0,
      ciphertext: Buffer.alloc(0),
      wrapped_key: Buffer.alloc(0),
      updated_at: now,
    })
    .where('name', '=', name)
    .where('removed_at', 'is', null)
    .returning('id')
    .execute();
  return rows[0]?.id ?? null;
}
