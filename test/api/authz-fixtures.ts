// Inputs for the authorization matrix: for each operation, a call that succeeds for a caller allowed to
// make it (destructive operations get a fresh object per call), and for self-service operations on an
// object, the same call aimed at another user's object.
import type { Harness } from '../helpers/gateway.js';

export interface Call {
  params?: Record<string, string>;
  query?: Record<string, string>;
  body?: unknown;
}

export interface Member {
  name: string;
  id: string;
  selfServiceKey: string;
  selfServiceKeyId: string;
  inferenceKey: string;
  inferenceKeyId: string;
}

export interface World {
  h: Harness;
  a: Member;
  b: Member;
  personalAdminToken: string;
  revokedAdminToken: string;
  /** A unique name for objects made by a fixture. */
  unique(prefix: string): string;
}

let counter = 0;

async function member(h: Harness, name: string, team: string): Promise<Member> {
  const admin = h.admin;
  if (!(await h.services.teams.list()).some((t) => t.name === team))
    await h.services.teams.add(admin, { name: team });
  const user = await h.services.users.add(admin, { name, team, monthlyBudgetMicro: 5_000_000 });
  const self = await h.services.keys.issue(admin, {
    user: name,
    policy: { scopes: ['inference', 'self-service'] },
  });
  const inference = await h.services.keys.issue(admin, { user: name, policy: {} });
  return {
    name,
    id: user.id,
    selfServiceKey: self.key,
    selfServiceKeyId: self.id,
    inferenceKey: inference.key,
    inferenceKeyId: inference.id,
  };
}

export async function setUpWorld(h: Harness): Promise<World> {
  await h.orgCredential('org-key');
  const a = await member(h, 'alice', 'red');
  const b = await member(h, 'bob', 'blue');
  await h.services.users.add(h.admin, { name: 'root', role: 'admin' });
  await h.services.users.add(h.admin, { name: 'root2', role: 'admin' });
  const personal = await h.services.adminTokens.issue(h.admin, { user: 'root', name: 'matrix' });
  const revoked = await h.services.adminTokens.issue(h.admin, { user: 'root2', name: 'old' });
  await h.services.adminTokens.revoke(h.admin, revoked.view.id);
  return {
    h,
    a,
    b,
    personalAdminToken: personal.token,
    revokedAdminToken: revoked.token,
    unique: (prefix) => `${prefix}-${++counter}`,
  };
}

type AdminFixture = (w: World) => Promise<Call>;

export const ADMIN_FIXTURES: Record<string, AdminFixture> = {
  whoami: async () => ({}),
  'teams.list': async () => ({ query: { limit: '5' } }),
  'teams.create': async (w) => ({ body: { name: w.unique('team') } }),
  'teams.get': async () => ({ params: { team: 'red' } }),
  'teams.update': async () => ({ params: { team: 'red' }, body: { byok: 'preferred' } }),
};

export interface MeFixture {
  own: (w: World) => Promise<Call>;
  /** The same call aimed at another user's object (only for operations on an object). */
  other?: (w: World) => Promise<Call>;
}

export const ME_FIXTURES: Record<string, MeFixture> = {};
