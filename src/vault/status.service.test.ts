// The status report against the fake upstream: one credential per outcome, ages, bounded concurrency.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../../test/fake-upstream/index.js';
import { type CliHome, tempHome } from '../../test/helpers/cli.js';
import { canaryAnthropicKey, findLeaks } from '../../test/helpers/secrets.js';
import { loadConfig } from '../config/load.js';
import { type Installation, openInstallation } from '../install/installation.js';
import type { KeyView } from '../keys/key.service.js';
import { systemClock } from '../lib/clock.js';
import { createServices, type Services } from '../services.js';
import type { CredentialView } from './credential.service.js';
import { type CredentialStatus, credentialStatuses, keyAges } from './status.service.js';

const DAY = 86_400_000;

describe('credentialStatuses against the fake upstream', () => {
  let fake: FakeUpstream;
  let cli: CliHome;
  let installation: Installation;
  let services: Services;
  const keys = {
    valid: canaryAnthropicKey(),
    revoked: canaryAnthropicKey(),
    limited: canaryAnthropicKey(),
    overloaded: canaryAnthropicKey(),
    admin: canaryAnthropicKey('admin01'),
    github: `ghp_${'x'.repeat(8)}canary${Date.now()}`,
  };

  beforeAll(async () => {
    fake = await startFakeUpstream();
    cli = await tempHome({ TOLLGATE_UPSTREAM_URL: fake.url });
    await cli.run(['init']);
    const add = async (name: string, provider: string, secret: string) => {
      // A GitHub token would be checked against api.github.com: no test reaches the internet.
      const offline = provider === 'github' ? ['--no-validate'] : [];
      const result = await cli.run(['credential', 'add', name, '--provider', provider, ...offline], {
        stdin: secret,
      });
      expect(result.code, result.stderr).toBe(0);
    };
    await add('valid', 'anthropic', keys.valid);
    await add('revoked', 'anthropic', keys.revoked);
    await add('limited', 'anthropic', keys.limited);
    await add('overloaded', 'anthropic', keys.overloaded);
    await add('admin', 'anthropic-admin', keys.admin);
    await add('gh', 'github', keys.github);
    const config = await loadConfig({ env: cli.env, cwd: join(cli.home, '..') });
    installation = await openInstallation(config);
    services = createServices(installation, config, systemClock);
  });
  afterAll(async () => {
    await installation.close();
    await fake.close();
    await cli.cleanup();
  });

  const statuses = (baseUrl: string) =>
    credentialStatuses(
      { credentials: services.credentials, upstream: { baseUrl, timeoutMs: 2_000 }, maxAgeDays: 90 },
      Date.now(),
    );
  const byName = (rows: CredentialStatus[]) => new Map(rows.map((r) => [r.name, r]));

  it('maps each upstream answer to its status word and never carries a secret', async () => {
    fake.reset();
    fake.revokeKey(keys.revoked);
    fake.enqueueFault({ kind: 'status', status: 429, retryAfterS: 5 }, { apiKey: keys.limited });
    fake.enqueueFault({ kind: 'status', status: 529 }, { apiKey: keys.overloaded });
    const rows = byName(await statuses(fake.url));

    expect(rows.get('valid')).toMatchObject({ check: 'ACTIVE', code: null, stored_status: 'active' });
    expect(rows.get('admin')).toMatchObject({ check: 'ACTIVE', provider: 'anthropic-admin' });
    expect(rows.get('revoked')).toMatchObject({ check: 'INVALID KEY', code: null });
    expect(rows.get('limited')).toMatchObject({ check: 'RATE LIMITED', code: '429' });
    expect(rows.get('limited')?.detail).toContain('retry in 5 s');
    expect(rows.get('overloaded')).toMatchObject({ check: 'ERROR', code: '529' });
    expect(rows.get('gh')).toMatchObject({ check: 'SKIPPED', code: null, provider: 'github' });
    // Only the Anthropic credentials were checked, each with its own free call.
    expect(fake.served.map((s) => s.path).sort()).toEqual([
      '/v1/models',
      '/v1/models',
      '/v1/models',
      '/v1/models',
      '/v1/organizations/me',
    ]);
    expect(rows.get('valid')?.hint).toBe(`${keys.valid.slice(0, 16)}...${keys.valid.slice(-4)}`);
    expect(findLeaks(JSON.stringify([...rows.values()]), Object.values(keys))).toEqual([]);
  });

  it('reports an unreachable upstream with the network code', async () => {
    const rows = byName(await statuses('http://127.0.0.1:9'));
    expect(rows.get('valid')).toMatchObject({ check: 'ERROR', code: 'ECONNREFUSED' });
    expect(rows.get('valid')?.detail).toBe('could not reach Anthropic (ECONNREFUSED)');
    expect(rows.get('gh')?.check).toBe('SKIPPED');
  });

  it('reports a timeout as ERROR (timeout)', async () => {
    fake.reset();
    fake.enqueueFault({ kind: 'hang' }, { apiKey: keys.valid });
    const rows = await credentialStatuses(
      { credentials: services.credentials, upstream: { baseUrl: fake.url, timeoutMs: 200 }, maxAgeDays: 90 },
      Date.now(),
    );
    expect(byName(rows).get('valid')).toMatchObject({ check: 'ERROR', code: 'timeout' });
  });

  it('does not change the stored status of any credential', async () => {
    fake.reset();
    fake.revokeKey(keys.revoked);
    await statuses(fake.url);
    const stored = await services.credentials.list();
    expect(stored.every((c) => c.status === 'active')).toBe(true);
  });
});

describe('ages and rotation', () => {
  const now = Date.UTC(2025, 5, 1);
  // Only the fields the report reads; the view grows as other features land.
  const view = (name: string, createdAt: number, rotatedAt: number | null) =>
    ({
      id: `cred_${name}`,
      name,
      provider: 'github',
      owner: 'org',
      ownerType: 'org',
      ownerId: null,
      environment: null,
      status: 'active',
      preferred: true,
      hint: '...abcd',
      createdAt,
      updatedAt: createdAt,
      lastUsedAt: null,
      rotatedAt,
    }) as CredentialView;

  it('flags credentials older than the maximum age, counting from the last rotation', async () => {
    const views = [
      view('old', now - 100 * DAY, null),
      view('rotated', now - 400 * DAY, now - 10 * DAY),
      view('young', now - 89 * DAY, null),
    ];
    const rows = await credentialStatuses(
      {
        credentials: { list: async () => views, reveal: async () => 'unused' },
        upstream: { baseUrl: 'http://127.0.0.1:9', timeoutMs: 100 },
        maxAgeDays: 90,
      },
      now,
    );
    expect(rows.map((r) => [r.name, r.age_days, r.rotate_due, r.rotate_command])).toEqual([
      ['old', 100, true, 'tollgate credential rotate old'],
      ['rotated', 10, false, null],
      ['young', 89, false, null],
    ]);
  });

  it('lists active gateway keys past the maximum age with the rotate command', () => {
    const key = (id: string, ageDays: number, extra: Partial<KeyView> = {}) =>
      ({
        id,
        name: null,
        user: 'alice',
        hint: 'tg_abc...wxyz',
        status: 'active',
        createdAt: now - ageDays * DAY,
        rotatedTo: null,
        ...extra,
      }) as KeyView;
    const due = keyAges(
      [
        key('key_old', 120),
        key('key_new', 5),
        key('key_revoked', 200, { status: 'revoked' }),
        key('key_expired', 200, { status: 'expired' }),
        key('key_rotating', 200, { rotatedTo: 'key_next' }),
      ],
      now,
      90,
    );
    expect(due).toEqual([
      {
        id: 'key_old',
        name: null,
        user: 'alice',
        hint: 'tg_abc...wxyz',
        age_days: 120,
        rotate_command: 'tollgate key rotate key_old --grace 24h',
      },
    ]);
  });
});

describe('bounded concurrency', () => {
  it('keeps at most `concurrency` checks in flight', async () => {
    let inFlight = 0;
    let peak = 0;
    const server = createServer((_req, res) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      setTimeout(() => {
        inFlight--;
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":[]}');
      }, 30);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const views = Array.from({ length: 9 }, (_, i) => ({
      id: `cred_${i}`,
      name: `c${i}`,
      provider: 'anthropic' as const,
      owner: 'org',
      environment: null,
      status: 'active' as const,
      hint: 'h',
      createdAt: 0,
      rotatedAt: null,
    })) as CredentialView[];
    try {
      const rows = await credentialStatuses(
        {
          credentials: { list: async () => views, reveal: async () => canaryAnthropicKey() },
          upstream: { baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 2_000 },
          maxAgeDays: 90,
          concurrency: 3,
        },
        0,
      );
      expect(rows.map((r) => r.name)).toEqual(views.map((v) => v.name));
      expect(rows.every((r) => r.check === 'ACTIVE')).toBe(true);
      expect(peak).toBe(3);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
