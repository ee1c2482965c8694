// Setting bring-your-own-key policies in tests. Teams have a service for it (teams.update); users do
// not in this tree yet, so their column is set through the change unit — the same transaction, audit
// and change-feed row a service would write, so running gateways see it through the feed as they would.
import type { ByokPolicy } from '../../src/db/schema.js';
import { change } from '../../src/install/context.js';
import type { Harness } from './gateway.js';
import { canaryAnthropicKey } from './secrets.js';

/** Sets users.byok (null: inherit the team's) and applies it to the running gateway. */
export async function setUserByok(h: Harness, name: string, byok: ByokPolicy | null): Promise<void> {
  const user = await h.services.users.get(name);
  await change({ installation: h.installation, clock: Date.now }, h.admin, async (u) => {
    await u.tx.updateTable('users').set({ byok }).where('id', '=', user.id).execute();
    await u.audit('user.update', 'user', user.id, { byok });
    await u.changed('user', user.id);
  });
  await h.refresh();
}

/** Adds a validated Anthropic credential owned by a user or team; returns its secret. */
export async function ownCredential(
  h: Harness,
  owner: { type: 'user' | 'team'; name: string },
  name = `${owner.name}-own`,
): Promise<string> {
  const secret = canaryAnthropicKey();
  await h.services.credentials.add(h.admin, { name, provider: 'anthropic', owner, secret, validate: true });
  await h.refresh();
  return secret;
}

/** POSTs JSON to the gateway with a key (and optional extra headers); the raw answer. */
export function gatewayPost(
  h: Harness,
  path: string,
  key: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${h.url}${path}`, {
    method: 'POST',
    headers: { 'x-api-key': key, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

/** GETs a gateway path with a key. */
export function gatewayGet(h: Harness, path: string, key: string, headers: Record<string, string> = {}) {
  return fetch(`${h.url}${path}`, { headers: { 'x-api-key': key, ...headers } });
}
