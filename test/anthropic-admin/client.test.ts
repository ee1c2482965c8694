// The Admin API client over real HTTP against the fake: malformed answers, broken connections and
// timeouts retried, the total-wait bound, beta refusals, and a regular API key refused as an admin key.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createAnthropicAdminService } from '../../src/anthropic-admin/admin.service.js';
import { createAdminClient } from '../../src/anthropic-admin/client.js';
import { createTransport, type TransportOptions } from '../../src/anthropic-admin/transport.js';
import type { ServiceContext } from '../../src/install/context.js';
import { AppError } from '../../src/lib/errors.js';
import type { CredentialView } from '../../src/vault/credential.service.js';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';

const ADMIN_KEY = 'sk-ant-admin01-test-client-0123456789abcdefghijklmnopqrstuvwxyz';
const WORKSPACES = '/v1/organizations/workspaces';

let fake: FakeUpstream;
beforeAll(async () => {
  fake = await startFakeUpstream();
});
afterAll(() => fake.close());
beforeEach(() => fake.reset());

function client(options: Partial<TransportOptions> = {}) {
  return createAdminClient(
    createTransport({
      baseUrl: fake.url,
      adminKey: ADMIN_KEY,
      timeoutMs: 2_000,
      retry: { baseDelayMs: 10 },
      ...options,
    }),
  );
}

async function failure(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

describe('admin client', () => {
  it('calls with the admin key and version headers and reads the organisation', async () => {
    expect(await client().me()).toEqual({ id: 'org_fake_0001', type: 'organization', name: 'Fake Org' });
    expect(fake.served[0]?.apiKey).toBe(ADMIN_KEY);
    expect(fake.served[0]?.headers.anthropicVersion).toBe('2023-06-01');
  });

  it('reports an answer of the wrong shape as a clear error (a well-formed one is the control)', async () => {
    fake.enqueueFault({ kind: 'status', status: 200, body: { data: 'nope' } }, { path: WORKSPACES });
    const error = await failure(client().listWorkspaces());
    expect(error.code).toBe('upstream_error');
    expect(error.message).toContain('was not in the expected shape');
    expect(await client().listWorkspaces()).toEqual([]);
  });

  it('retries a broken connection and a timeout', async () => {
    fake.enqueueFault({ kind: 'reset' }, { path: WORKSPACES });
    expect(await client().listWorkspaces()).toEqual([]);
    fake.enqueueFault({ kind: 'hang' }, { path: WORKSPACES });
    expect(await client({ timeoutMs: 200 }).listWorkspaces()).toEqual([]);
    expect(fake.served.map((r) => r.outcome)).toEqual(['reset', 'complete', 'hang', 'complete']);
  });

  it('gives up on an unreachable server after the bounded attempts', async () => {
    const error = await failure(
      createAdminClient(
        createTransport({
          baseUrl: 'http://127.0.0.1:9',
          adminKey: ADMIN_KEY,
          timeoutMs: 500,
          retry: { baseDelayMs: 5 },
        }),
      ).me(),
    );
    expect(error.code).toBe('upstream_unreachable');
    expect(error.message).toContain('after 4 attempts');
  });

  it('does not wait past the total bound: a retry-after too long gives up at once', async () => {
    fake.enqueueFault({ kind: 'status', status: 429, retryAfterS: 60 }, { path: WORKSPACES });
    const started = Date.now();
    const error = await failure(client().listWorkspaces());
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error.code).toBe('upstream_rate_limited');
    expect(error.message).toContain('gave up after 1 attempt');
    expect(await client().listWorkspaces()).toEqual([]);
  });

  it('says a beta is not enabled when a beta call is refused for that reason', async () => {
    const call = createTransport({ baseUrl: fake.url, adminKey: ADMIN_KEY, timeoutMs: 2_000 });
    const spec = {
      method: 'GET' as const,
      path: '/v1/organizations/workspaces',
      beta: 'spend-limits-2026-01-01',
      schema: z.object({ data: z.array(z.unknown()) }),
    };
    fake.enqueueFault(
      {
        kind: 'status',
        status: 400,
        message: 'The beta "spend-limits-2026-01-01" is not enabled for this organization',
      },
      { path: WORKSPACES },
    );
    const error = await failure(call(spec));
    expect(error.details.reason).toBe('beta_not_enabled');
    expect(error.message).toContain('beta that is not enabled for this organisation');
    expect(await call(spec)).toEqual({ data: [] });
    expect(fake.served.at(-1)?.headers.anthropicBeta).toEqual(['spend-limits-2026-01-01']);
  });

  it('validates a workspace name and ids before calling', async () => {
    expect((await failure(client().createWorkspace(''))).code).toBe('invalid_input');
    expect((await failure(client().archiveWorkspace('../me'))).code).toBe('invalid_input');
    expect(fake.served).toHaveLength(0);
    expect((await client().createWorkspace('a')).name).toBe('a');
  });
});

describe('admin service', () => {
  // The vault's listing and reveal, answered from memory: the choice of key is what is under test.
  function service(secret: string) {
    const view = {
      id: 'cred_1',
      name: 'admin',
      provider: 'anthropic-admin',
      ownerType: 'org',
      status: 'active',
      preferred: true,
      hint: '...',
    } as CredentialView;
    return createAnthropicAdminService({} as ServiceContext, {
      credentials: { list: async () => [view], reveal: async () => secret },
      upstream: { baseUrl: fake.url, timeoutMs: 2_000 },
    });
  }

  it('refuses a regular API key stored as the admin key without calling Anthropic; an admin key works', async () => {
    const error = await failure(
      service('sk-ant-api03-test-0123456789abcdefghijklmnopqrstuvwxyz').listWorkspaces(),
    );
    expect(error.details.reason).toBe('wrong_key_type');
    expect(fake.served).toHaveLength(0);
    expect(await service(ADMIN_KEY).listWorkspaces()).toEqual([]);
  });
});
