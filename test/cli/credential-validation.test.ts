// Credentials are checked with a free upstream call before they are stored; each refusal is friendly
// and stores nothing.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { type CliHome, tempHome } from '../helpers/cli.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';

describe('credential validation against the upstream', () => {
  let fake: FakeUpstream;
  let cli: CliHome;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    cli = await tempHome({ TOLLGATE_UPSTREAM_URL: fake.url });
    await cli.run(['init']);
  });
  beforeEach(() => fake.reset());
  afterAll(async () => {
    await fake.close();
    await cli.cleanup();
  });

  const names = async () =>
    (await cli.json<Array<{ name: string }>>(['credential', 'list'])).map((c) => c.name);

  it('stores a key the upstream accepts, checked with GET /v1/models', async () => {
    const key = canaryAnthropicKey();
    const result = await cli.run(['credential', 'add', 'good', '--provider', 'anthropic'], { stdin: key });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('checked with Anthropic');
    const probe = fake.served.at(-1);
    expect(probe?.path).toBe('/v1/models');
    expect(probe?.apiKey).toBe(key);
    expect(await names()).toContain('good');
  });

  it('checks admin keys with GET /v1/organizations/me', async () => {
    const result = await cli.run(['credential', 'add', 'admin', '--provider', 'anthropic-admin'], {
      stdin: canaryAnthropicKey('admin01'),
    });
    expect(result.code).toBe(0);
    expect(fake.served.at(-1)?.path).toBe('/v1/organizations/me');
  });

  it('refuses a key the upstream rejects, storing nothing', async () => {
    const key = canaryAnthropicKey();
    fake.revokeKey(key);
    const result = await cli.run(['credential', 'add', 'revoked', '--provider', 'anthropic'], { stdin: key });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Anthropic rejected this key.*nothing was stored/);
    expect(await names()).not.toContain('revoked');
  });

  it('says when the upstream rate-limits the check', async () => {
    fake.enqueueFault({ kind: 'status', status: 429, retryAfterS: 7 });
    const result = await cli.run(['credential', 'add', 'limited', '--provider', 'anthropic'], {
      stdin: canaryAnthropicKey(),
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/rate limiting this key; try again in 7 s, or pass --no-validate/);
    expect(await names()).not.toContain('limited');
  });

  it('says when the upstream fails or is unreachable', async () => {
    fake.enqueueFault({ kind: 'status', status: 529 });
    let result = await cli.run(['credential', 'add', 'overloaded', '--provider', 'anthropic'], {
      stdin: canaryAnthropicKey(),
    });
    expect(result.stderr).toMatch(/answered 529/);
    fake.enqueueFault({ kind: 'reset' });
    result = await cli.run(['credential', 'add', 'reset', '--provider', 'anthropic'], {
      stdin: canaryAnthropicKey(),
    });
    expect(result.stderr).toMatch(/could not reach Anthropic/);
    result = await cli.run(['credential', 'add', 'down', '--provider', 'anthropic'], {
      stdin: canaryAnthropicKey(),
      env: { TOLLGATE_UPSTREAM_URL: 'http://127.0.0.1:9' },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/could not reach Anthropic at http:\/\/127\.0\.0\.1:9 .*ECONNREFUSED/);
    expect(await names()).toEqual(expect.not.arrayContaining(['overloaded', 'reset', 'down']));
  });

  it('times out a hanging upstream with the configured validation timeout', async () => {
    fake.enqueueFault({ kind: 'hang' });
    const result = await cli.run(['credential', 'add', 'hang', '--provider', 'anthropic'], {
      stdin: canaryAnthropicKey(),
      env: { TOLLGATE_UPSTREAM_VALIDATE_TIMEOUT_MS: '300' },
    });
    expect(result.stderr).toMatch(/could not reach Anthropic.*timed out/);
  });

  it('skips the call with --no-validate', async () => {
    const before = fake.served.length;
    const key = canaryAnthropicKey();
    fake.revokeKey(key);
    const result = await cli.run(
      ['credential', 'add', 'unchecked', '--provider', 'anthropic', '--no-validate'],
      { stdin: key },
    );
    expect(result.code).toBe(0);
    expect(fake.served.length).toBe(before);
  });

  it('validates the new secret on rotate and keeps the old one when it is refused', async () => {
    const bad = canaryAnthropicKey();
    fake.revokeKey(bad);
    const show = async () =>
      cli.json<{ hint: string; rotated_at: string | null }>(['credential', 'show', 'good']);
    const before = await show();
    const refused = await cli.run(['credential', 'rotate', 'good'], { stdin: bad });
    expect(refused.code).toBe(1);
    expect(await show()).toEqual(before);
    const fresh = canaryAnthropicKey();
    expect((await cli.run(['credential', 'rotate', 'good'], { stdin: fresh })).code).toBe(0);
    const after = await show();
    expect(after.hint).toBe(`${fresh.slice(0, 16)}...${fresh.slice(-4)}`);
    expect(after.rotated_at).not.toBeNull();
  });
});
