// The self-service API test bed: a real server in front of the fake Anthropic upstream and the fake
// GitHub/Linear APIs, users alice (team red, budgets on key, user and team; org cap $100) and bob
// (team blue), their self-service keys, and an api() that keeps every answer for the leak checks.
import { type FakeProviders, startFakeProviders } from '../fake-providers/index.js';
import { type ApiJson, type Harness, startHarness } from '../helpers/gateway.js';

export const SELF = { scopes: ['inference', 'self-service'] as ('inference' | 'self-service')[] };
export const SMALL = {
  model: 'claude-haiku-4-5',
  max_tokens: 5,
  messages: [{ role: 'user' as const, content: 'hi' }],
};

export interface MeFixture {
  h: Harness;
  providers: FakeProviders;
  /** Every answer body seen, searched for secrets. */
  answers: string[];
  alice: string;
  aliceSecond: string;
  aliceInferenceOnly: string;
  bob: string;
  api(
    method: string,
    path: string,
    token: string,
    body?: unknown,
  ): Promise<{ status: number; json: ApiJson; headers: Headers }>;
  auditRows(action: string): Promise<Array<{ actor: string; details: ApiJson; target_id: string | null }>>;
  close(): Promise<void>;
}

export async function startMeFixture(): Promise<MeFixture> {
  const providers = await startFakeProviders();
  const h = await startHarness({ env: { ...providers.env, TOLLGATE_CLAUDE_MAX_MONTHLY_SPEND_USD: '100' } });
  await h.orgCredential();
  await h.services.teams.add(h.admin, { name: 'red', monthlyBudgetMicro: 50_000_000 });
  await h.services.users.add(h.admin, { name: 'alice', team: 'red', monthlyBudgetMicro: 20_000_000 });
  const answers: string[] = [];
  return {
    h,
    providers,
    answers,
    alice: await h.key({ user: 'alice', policy: { ...SELF, monthlyBudgetMicro: 10_000_000 } }),
    aliceSecond: await h.key({ user: 'alice', policy: SELF }),
    aliceInferenceOnly: await h.key({ user: 'alice' }),
    bob: await h.key({ user: 'bob', team: 'blue', policy: SELF }),
    async api(method, path, token, body) {
      const answer = await h.api(method, path, { token, ...(body === undefined ? {} : { body }) });
      answers.push(JSON.stringify(answer.json));
      return answer;
    },
    async auditRows(action) {
      // Through the service, as the API lists them: person actors (stored by id) by name, sealed
      // personal fields opened.
      const rows = await h.services.audit.list({ action, limit: 1000 });
      return rows.map((r) => ({ actor: r.actor, target_id: r.targetId, details: r.details }));
    },
    async close() {
      await h.close();
      await providers.close();
    },
  };
}
