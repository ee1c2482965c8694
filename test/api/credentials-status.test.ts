// GET /admin/v1/status: the per-credential answer of `tollgate status` over the admin API (the
// dashboard's credentials page shows it): ACTIVE beside INVALID KEY for a key the upstream now refuses,
// SKIPPED for providers without a free check, never a secret; members may not read it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiJson, type Harness, startHarness } from '../helpers/gateway.js';
import { canaryAnthropicKey, findLeaks } from '../helpers/secrets.js';

describe('credential status over the admin API', () => {
  let h: Harness;
  const good = canaryAnthropicKey();
  const later = canaryAnthropicKey();

  beforeAll(async () => {
    h = await startHarness();
    for (const [name, secret] of [
      ['healthy', good],
      ['revoked-later', later],
    ] as const) {
      const created = await h.api('POST', '/admin/v1/credentials', {
        body: { name, provider: 'anthropic', secret },
      });
      expect(created.status).toBe(201);
    }
    const gh = await h.api('POST', '/admin/v1/credentials', {
      body: {
        name: 'gh',
        provider: 'github',
        secret: 'ghp_testtoken000000000000000000000000',
        validate: false,
      },
    });
    expect(gh.status).toBe(201);
  });
  afterAll(() => h?.close());

  it('answers per credential what `tollgate status` answers, with no secret', async () => {
    h.fake.revokeKey(later);
    const answer = await h.api('GET', '/admin/v1/status');
    expect(answer.status).toBe(200);
    const byName = new Map((answer.json.credentials as ApiJson[]).map((c) => [c.name as string, c]));
    expect(byName.get('healthy')).toMatchObject({
      check: 'ACTIVE',
      code: null,
      stored_status: 'active',
      hint: `${good.slice(0, 16)}...${good.slice(-4)}`,
      rotate_due: false,
    });
    expect(byName.get('revoked-later')).toMatchObject({ check: 'INVALID KEY', stored_status: 'active' });
    expect(byName.get('gh')).toMatchObject({ check: 'SKIPPED' });
    expect(answer.json.keys_due).toEqual([]);
    expect(findLeaks(JSON.stringify(answer.json), [good, later])).toEqual([]);
  });

  it('reports a rate-limited check as RATE LIMITED (beside the ACTIVE one above)', async () => {
    h.fake.enqueueFault({ kind: 'status', status: 429, retryAfterS: 7 });
    const answer = await h.api('GET', '/admin/v1/status');
    const checks = (answer.json.credentials as ApiJson[]).map((c) => c.check);
    expect(checks).toContain('RATE LIMITED');
  });

  it('is read-only: the stored status stays active', async () => {
    const listed = await h.api('GET', '/admin/v1/credentials/revoked-later');
    expect(listed.json.status).toBe('active');
  });
});
