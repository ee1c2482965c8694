// `tollgate status`: one credential per outcome against the fake upstream, rotation due, no secret printed.
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { type CliHome, tempHome } from '../helpers/cli.js';
import { canaryAnthropicKey, findLeaks } from '../helpers/secrets.js';

interface StatusJson {
  credentials: Array<{
    name: string;
    check: string;
    code: string | null;
    stored_status: string;
    age_days: number;
    rotate_due: boolean;
    rotate_command: string | null;
  }>;
  keys_due: Array<{ id: string; age_days: number; rotate_command: string }>;
}

const DAY = 86_400_000;

describe('tollgate status', () => {
  let fake: FakeUpstream;
  let cli: CliHome;
  const keys = {
    valid: canaryAnthropicKey(),
    revoked: canaryAnthropicKey(),
    limited: canaryAnthropicKey(),
    overloaded: canaryAnthropicKey(),
    github: `ghp_canary${canaryAnthropicKey().slice(-30)}`,
  };

  beforeAll(async () => {
    fake = await startFakeUpstream();
    cli = await tempHome({ TOLLGATE_UPSTREAM_URL: fake.url });
    await cli.run(['init']);
    for (const [name, provider, secret] of [
      ['valid', 'anthropic', keys.valid],
      ['revoked', 'anthropic', keys.revoked],
      ['limited', 'anthropic', keys.limited],
      ['overloaded', 'anthropic', keys.overloaded],
      ['gh', 'github', keys.github],
    ] as const) {
      // A GitHub token would be checked against api.github.com: no test reaches the internet.
      const offline = provider === 'github' ? ['--no-validate'] : [];
      const added = await cli.run(['credential', 'add', name, '--provider', provider, ...offline], {
        stdin: secret,
      });
      expect(added.code, added.stderr).toBe(0);
    }
  });
  beforeEach(() => {
    fake.reset();
    fake.revokeKey(keys.revoked);
    fake.enqueueFault({ kind: 'status', status: 429, retryAfterS: 5 }, { apiKey: keys.limited });
    fake.enqueueFault({ kind: 'status', status: 529 }, { apiKey: keys.overloaded });
  });
  afterAll(async () => {
    await fake.close();
    await cli.cleanup();
  });

  const rowOf = (stdout: string, name: string) =>
    stdout.split('\n').find((line) => line.startsWith(`│ ${name} `)) ?? '';

  it('prints one status word per credential and exits 1 when some are not ACTIVE', async () => {
    const result = await cli.run(['status']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/credential.*provider.*owner.*env.*status.*detail.*age/);
    expect(rowOf(result.stdout, 'valid')).toContain(' ACTIVE ');
    expect(rowOf(result.stdout, 'revoked')).toContain(' INVALID KEY ');
    expect(rowOf(result.stdout, 'limited')).toContain(' RATE LIMITED ');
    expect(rowOf(result.stdout, 'overloaded')).toContain(' ERROR (529) ');
    expect(rowOf(result.stdout, 'gh')).toContain(' SKIPPED ');
    expect(result.stdout).toContain('read-only');
    expect(result.stderr).toMatch(/3 of 4 checked credential\(s\) not ACTIVE/);
    expect(findLeaks(result.stdout + result.stderr, Object.values(keys))).toEqual([]);
  });

  it('prints {credentials, keys_due} with --json and leaves stored statuses alone', async () => {
    const result = await cli.run(['status', '--json']);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as StatusJson;
    const checks = Object.fromEntries(report.credentials.map((c) => [c.name, [c.check, c.code]]));
    expect(checks).toEqual({
      gh: ['SKIPPED', null],
      limited: ['RATE LIMITED', '429'],
      overloaded: ['ERROR', '529'],
      revoked: ['INVALID KEY', null],
      valid: ['ACTIVE', null],
    });
    expect(report.keys_due).toEqual([]);
    const stored = await cli.json<Array<{ name: string; status: string }>>(['credential', 'list']);
    expect(stored.every((c) => c.status === 'active')).toBe(true);
    expect(findLeaks(result.stdout, Object.values(keys))).toEqual([]);
  });

  it('reports an unreachable upstream as ERROR (ECONNREFUSED)', async () => {
    const result = await cli.run(['status'], { env: { TOLLGATE_UPSTREAM_URL: 'http://127.0.0.1:9' } });
    expect(result.code).toBe(1);
    expect(rowOf(result.stdout, 'valid')).toContain(' ERROR (ECONNREFUSED) ');
    expect(rowOf(result.stdout, 'gh')).toContain(' SKIPPED ');
  });

  it('exits 0 when every checked credential is ACTIVE', async () => {
    const home = await tempHome({ TOLLGATE_UPSTREAM_URL: fake.url });
    try {
      await home.run(['init']);
      await home.run(['credential', 'add', 'ok', '--provider', 'anthropic'], { stdin: canaryAnthropicKey() });
      const result = await home.run(['status']);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain('Nothing is due for rotation');
    } finally {
      await home.cleanup();
    }
  });

  it('flags credentials and gateway keys older than security.key_max_age_days', async () => {
    await cli.run(['user', 'add', 'alice']);
    const issued = await cli.json<{ id: string }>(['key', 'issue', '--user', 'alice']);
    const db = new SQLite(join(cli.home, 'tollgate.db'));
    try {
      const old = Date.now() - 100 * DAY;
      db.prepare('update credentials set created_at = ? where name = ?').run(old, 'gh');
      db.prepare('update gateway_keys set created_at = ? where id = ?').run(old, issued.id);
    } finally {
      db.close();
    }
    const env = { TOLLGATE_SECURITY_KEY_MAX_AGE_DAYS: '1' };
    const report = JSON.parse((await cli.run(['status', '--json'], { env })).stdout) as StatusJson;
    expect(report.credentials.find((c) => c.name === 'gh')).toMatchObject({
      age_days: 100,
      rotate_due: true,
      rotate_command: 'tollgate credential rotate gh',
    });
    expect(report.credentials.find((c) => c.name === 'valid')).toMatchObject({
      rotate_due: false,
      rotate_command: null,
    });
    expect(report.keys_due).toEqual([
      expect.objectContaining({
        id: issued.id,
        age_days: 100,
        rotate_command: `tollgate key rotate ${issued.id} --grace 24h`,
      }),
    ]);

    const text = await cli.run(['status'], { env });
    expect(text.stdout).toContain('Due for rotation (older than 1 day):');
    expect(text.stdout).toContain('credential gh (100 days old): tollgate credential rotate gh');
    expect(text.stdout).toContain(`tollgate key rotate ${issued.id} --grace 24h`);
    expect(findLeaks(cli.transcript(), Object.values(keys))).toEqual([]);
  });
});
