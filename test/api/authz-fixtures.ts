// Inputs for the authorization matrix: for each operation, a call that succeeds for a caller allowed to
// make it (destructive operations get a fresh object per call), and for self-service operations on an
// object, the same call aimed at another user's object.
import { setOwnCredential } from '../../src/vault/own-credential.js';
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

/** A person a self-service call acts as (member A by default; the admin's own session in the matrix). */
export interface Person {
  name: string;
  id: string;
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
  await h.api('POST', '/admin/v1/profiles', { body: { name: 'analysis', tools: ['Read', 'Grep', 'Glob'] } });
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

/** Fresh objects for operations that use one up (remove, revoke, rotate, …). */
const fresh = {
  async user(w: World, role: 'member' | 'admin' = 'member'): Promise<string> {
    const name = w.unique('user');
    await w.h.services.users.add(w.h.admin, { name, role, monthlyBudgetMicro: null });
    return name;
  },
  async credential(w: World): Promise<string> {
    const name = w.unique('cred');
    await w.h.services.credentials.add(w.h.admin, {
      name,
      provider: 'generic',
      secret: `generic-test-secret-${name}-0123456789`,
      validate: false,
    });
    return name;
  },
  async key(w: World, who: Person = w.a): Promise<string> {
    return (await w.h.services.keys.issue(w.h.admin, { user: who.name, policy: {} })).id;
  },
};

/** The org's Anthropic admin key, added once (the anthropic.* operations call the fake's Admin API). */
async function adminKey(w: World): Promise<void> {
  if ((await w.h.services.credentials.list({ provider: 'anthropic-admin' })).length > 0) return;
  await w.h.services.credentials.add(w.h.admin, {
    name: 'org-admin',
    provider: 'anthropic-admin',
    secret: `sk-ant-admin01-test-matrix-${'y'.repeat(40)}AD`,
    validate: false,
  });
}

const anthropicSecret = (w: World) => `sk-ant-api03-test-matrix-${w.unique('s')}-${'x'.repeat(40)}AA`;

export const ADMIN_FIXTURES: Record<string, AdminFixture> = {
  whoami: async () => ({}),
  'teams.list': async () => ({ query: { limit: '5' } }),
  'teams.create': async (w) => ({ body: { name: w.unique('team') } }),
  'teams.get': async () => ({ params: { team: 'red' } }),
  'teams.update': async () => ({ params: { team: 'red' }, body: { byok: 'preferred' } }),
  'users.list': async () => ({ query: { team: 'red' } }),
  'users.create': async (w) => ({ body: { name: w.unique('user'), email: 'new@example.com' } }),
  'users.get': async (w) => ({ params: { user: w.a.name } }),
  'users.update': async (w) => ({ params: { user: w.b.name }, body: { email: 'bob@example.com' } }),
  'users.remove': async (w) => ({ params: { user: await fresh.user(w) } }),
  'users.purge': async (w) => ({ params: { user: await fresh.user(w) } }),
  'users.loginLink': async (w) => ({ params: { user: await fresh.user(w) } }),
  'users.disable': async (w) => ({ params: { user: await fresh.user(w) }, body: { reason: 'matrix' } }),
  'users.enable': async (w) => {
    const name = await fresh.user(w);
    await w.h.services.users.disable(w.h.admin, name, 'matrix');
    return { params: { user: name } };
  },
  'users.sessions.list': async (w) => ({ params: { user: w.a.name }, query: { limit: '5' } }),
  'users.sessions.end': async (w) => ({ params: { user: await fresh.user(w) } }),
  'budgets.list': async () => ({ query: { scope: 'team', target: 'red' } }),
  'budgets.set': async () => ({ body: { scope: 'team', target: 'blue', period: 'day', limit_usd: '5' } }),
  'budgets.clear': async (w) => {
    await w.h.api('PUT', '/admin/v1/budgets', {
      body: { scope: 'team', target: 'red', period: 'total', limit_usd: '9' },
    });
    return { query: { scope: 'team', target: 'red', period: 'total' } };
  },
  'credentials.list': async () => ({ query: { provider: 'anthropic' } }),
  'credentials.create': async (w) => ({
    body: { name: w.unique('cred'), provider: 'anthropic', secret: anthropicSecret(w) },
  }),
  'credentials.get': async () => ({ params: { credential: 'org-key' } }),
  'credentials.rotate': async (w) => ({
    params: { credential: await fresh.credential(w) },
    body: { secret: `generic-test-rotated-${w.unique('r')}-0123456789` },
  }),
  'credentials.use': async (w) => ({ params: { credential: await fresh.credential(w) } }),
  'credentials.enable': async (w) => ({ params: { credential: await fresh.credential(w) } }),
  'credentials.disable': async (w) => ({ params: { credential: await fresh.credential(w) } }),
  'credentials.remove': async (w) => ({ params: { credential: await fresh.credential(w) } }),
  'credentials.status': async () => ({}),
  'keys.list': async (w) => ({ query: { user: w.a.name } }),
  'keys.issue': async (w) => ({ body: { user: w.b.name, tools: ['Read'] } }),
  'keys.get': async (w) => ({ params: { key: w.a.inferenceKeyId } }),
  'keys.rotate': async (w) => ({ params: { key: await fresh.key(w) }, body: { grace: '1h' } }),
  'keys.revoke': async (w) => ({ params: { key: await fresh.key(w) } }),
  'keys.budget': async (w) => ({
    params: { key: w.a.inferenceKeyId },
    body: { period: 'month', limit_usd: '3' },
  }),
  'profiles.list': async () => ({}),
  'profiles.create': async (w) => ({ body: { name: w.unique('profile'), tools: ['Read', 'Grep', 'Glob'] } }),
  'profiles.get': async () => ({ params: { profile: 'analysis' } }),
  'profiles.remove': async (w) => {
    const name = w.unique('profile');
    await w.h.api('POST', '/admin/v1/profiles', { body: { name } });
    return { params: { profile: name } };
  },
  'adminTokens.list': async () => ({}),
  'adminTokens.issue': async (w) => ({ body: { user: await fresh.user(w, 'admin') } }),
  'adminTokens.revoke': async (w) => {
    const issued = await w.h.services.adminTokens.issue(w.h.admin, { user: await fresh.user(w, 'admin') });
    return { params: { id: issued.view.id } };
  },
  'usage.query': async () => ({ query: { by: 'user' } }),
  'usage.overview': async () => ({}),
  'usage.summary': async () => ({}),
  'audit.list': async () => ({ query: { limit: '3' } }),
  'audit.verify': async () => ({ body: {} }),
  'anthropic.reconciliation': async () => ({}),
  'anthropic.sync': async (w) => {
    await adminKey(w);
    return { body: {} };
  },
  'anthropic.claude_code': async () => ({ query: { since: '2026-11-01' } }),
  'anthropic.limits': async (w) => {
    await adminKey(w);
    return {};
  },
  'anthropic.limits.sync': async (w) => {
    await adminKey(w);
    return { body: {} };
  },
};

export interface MeFixture {
  /** The call on the caller's own objects; `who` is the person calling (member A unless said). */
  own: (w: World, who?: Person) => Promise<Call>;
  /** The same call aimed at another user's object (only for operations on an object). */
  other?: (w: World) => Promise<Call>;
  /** What `other` must get: 404 for another's object; 400 for a filter that would widen a list. */
  otherStatus?: number;
}

export const ME_FIXTURES: Record<string, MeFixture> = {
  'me.get': { own: async () => ({}) },
  'me.settings.get': { own: async () => ({}) },
  'me.settings.update': { own: async () => ({ body: { preferredModel: 'claude-sonnet-4-6' } }) },
  'me.credentials.set': {
    own: async (w) => ({ params: { provider: 'anthropic' }, body: { secret: anthropicSecret(w) } }),
  },
  'me.credentials.remove': {
    own: async (w, who = w.a) => {
      // Stored directly (not through the throttled PUT) so every positive control has one to remove.
      await setOwnCredential({ installation: w.h.installation, clock: Date.now }, w.h.admin, {
        userId: who.id,
        provider: 'github',
        secret: `ghp_test${w.unique('gh')}${'0'.repeat(30)}`,
      });
      return { params: { provider: 'github' } };
    },
  },
  'me.keys.list': {
    own: async () => ({}),
    // A filter naming another user is no field of this query: refused, never widened.
    other: async (w) => ({ query: { user: w.b.name } }),
    otherStatus: 400,
  },
  'me.keys.revoke': {
    own: async (w, who = w.a) => ({ params: { id: await fresh.key(w, who) } }),
    // Bob's key, named by its real id: 404, exactly as an unknown id.
    other: async (w) => ({ params: { id: w.b.inferenceKeyId } }),
  },
  // A valid body within the default ceiling: a dashboard session gets 201, every key 403.
  'me.keys.issue': {
    own: async (w) => ({ body: { name: w.unique('self'), models: ['claude-haiku-4-5'], expires: '7d' } }),
  },
  'me.usage': {
    own: async () => ({ query: { by: 'model' } }),
    other: async (w) => ({ query: { by: 'model', user: w.b.name } }),
    otherStatus: 400,
  },
};

/** A call for a caller that must be refused before its input is read (any well-formed shape will do). */
export function placeholderCall(): Call {
  return { params: new Proxy({}, { get: () => 'x' }) as Record<string, string>, body: {} };
}
