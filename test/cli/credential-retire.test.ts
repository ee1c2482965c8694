// `credential rotate --retire` through the real CLI against the fake Admin API: once the grace ends the
// old key (found by its partial_key_hint) is set inactive — Messages refuse it, the new key works —,
// exactly once, audited; without --retire nothing is disabled; a key Anthropic does not know is
// recorded as such; a failing Admin API is recorded and retried.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { type CliHome, tempHome } from '../helpers/cli.js';
import { canaryAnthropicKey, findLeaks } from '../helpers/secrets.js';

interface RetirementJson {
  credential: string;
  oldHint: string;
  state: string;
  attempts: number;
  anthropicKeyId: string | null;
  lastError: string | null;
}
interface AuditJson {
  action: string;
  target_id: string | null;
  details: Record<string, unknown>;
}

const ADMIN_KEY = canaryAnthropicKey('admin01');
const OLD = canaryAnthropicKey('api03');
const NEW = canaryAnthropicKey('api03');
const SPARE_OLD = canaryAnthropicKey('api03');
const SPARE_NEW = canaryAnthropicKey('api03');
const STRAY_OLD = canaryAnthropicKey('api03');
const STRAY_NEW = canaryAnthropicKey('api03');
const FLAKY_OLD = canaryAnthropicKey('api03');
const FLAKY_NEW = canaryAnthropicKey('api03');
const ALL = [ADMIN_KEY, OLD, NEW, SPARE_OLD, SPARE_NEW, STRAY_OLD, STRAY_NEW, FLAKY_OLD, FLAKY_NEW];
const hint = (secret: string) => `${secret.slice(0, 16)}...${secret.slice(-4)}`;

let fake: FakeUpstream;
let cli: CliHome;

beforeAll(async () => {
  fake = await startFakeUpstream();
  cli = await tempHome({ TOLLGATE_UPSTREAM_URL: fake.url });
  expect((await cli.run(['init'])).code).toBe(0);
  expect(
    (await cli.run(['credential', 'add', 'org-admin', '--provider', 'anthropic-admin'], { stdin: ADMIN_KEY }))
      .code,
  ).toBe(0);
  for (const [name, secret] of [
    ['main', OLD],
    ['spare', SPARE_OLD],
    ['stray', STRAY_OLD],
    ['flaky', FLAKY_OLD],
  ] as const) {
    expect(
      (await cli.run(['credential', 'add', name, '--provider', 'anthropic'], { stdin: secret })).code,
    ).toBe(0);
  }
  // Anthropic knows every key but the stray one's old key.
  for (const [id, secret] of [
    ['apikey_old', OLD],
    ['apikey_new', NEW],
    ['apikey_spare_old', SPARE_OLD],
    ['apikey_flaky_old', FLAKY_OLD],
  ] as const) {
    fake.admin.addApiKey({ id, secret, name: id });
  }
});
afterAll(async () => {
  await fake.close();
  await cli.cleanup();
});

const status = (id: string) => fake.admin.apiKeys().find((k) => k.id === id)?.status;
const keyWrites = () =>
  fake.served.filter((r) => r.method === 'POST' && r.path.startsWith('/v1/organizations/api_keys/')).length;

async function messages(key: string): Promise<number> {
  const response = await fetch(`${fake.url}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'claude-sonnet-4-6',
      max_tokens: 10,
      messages: [{ role: 'user', content: 'hi' }],
    }),
  });
  await response.arrayBuffer();
  return response.status;
}

describe('credential rotate --retire', () => {
  it('disables the old key at Anthropic once the grace ends, exactly once, audited', async () => {
    const rotated = await cli.run(['credential', 'rotate', 'main', '--grace', '1s', '--retire'], {
      stdin: NEW,
    });
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toContain('The old key will be disabled at Anthropic when the grace ends');

    // Within the grace: nothing is due, the old key still works.
    const early = await cli.run(['anthropic', 'keys', 'retire-due']);
    expect(early.stdout).toContain('No old key is due for retirement.');
    expect(status('apikey_old')).toBe('active');
    expect(await messages(OLD)).toBe(200);
    const pending = await cli.json<RetirementJson[]>(['anthropic', 'keys', 'retirements']);
    expect(pending).toEqual([
      expect.objectContaining({ credential: 'main', oldHint: hint(OLD), state: 'pending' }),
    ]);

    await new Promise((r) => setTimeout(r, 1_100));
    const writes = keyWrites();
    const done = await cli.run(['anthropic', 'keys', 'retire-due']);
    expect(done.code).toBe(0);
    expect(done.stdout).toContain(`Disabled the old key of main (${hint(OLD)}) at Anthropic: apikey_old.`);
    expect(keyWrites()).toBe(writes + 1);
    expect(status('apikey_old')).toBe('inactive');
    expect(status('apikey_new')).toBe('active');
    expect(await messages(OLD)).toBe(401);
    expect(await messages(NEW)).toBe(200);

    // Exactly once: a second run finds nothing and sends nothing.
    const again = await cli.run(['anthropic', 'keys', 'retire-due']);
    expect(again.stdout).toContain('No old key is due for retirement.');
    expect(keyWrites()).toBe(writes + 1);

    const audit = await cli.json<AuditJson[]>(['audit', 'list', '--action', 'credential.retire']);
    const retire = audit.find((a) => a.details.anthropic_key_id === 'apikey_old');
    expect(retire?.details).toMatchObject({ name: 'main', outcome: 'disabled' });
    const rotate = await cli.json<AuditJson[]>(['audit', 'list', '--action', 'credential.rotate']);
    expect(rotate.at(-1)?.details).toMatchObject({ name: 'main', retire: true });
    const list = await cli.json<RetirementJson[]>(['anthropic', 'keys', 'retirements']);
    expect(list[0]).toMatchObject({ state: 'done', anthropicKeyId: 'apikey_old', attempts: 1 });
  });

  it('without --retire nothing is disabled (the control)', async () => {
    expect(
      (await cli.run(['credential', 'rotate', 'spare', '--grace', '1s'], { stdin: SPARE_NEW })).code,
    ).toBe(0);
    await new Promise((r) => setTimeout(r, 1_100));
    const run = await cli.run(['anthropic', 'keys', 'retire-due']);
    expect(run.stdout).toContain('No old key is due for retirement.');
    expect(status('apikey_spare_old')).toBe('active');
    expect(await messages(SPARE_OLD)).toBe(200);
  });

  it('an old key Anthropic does not list is recorded plainly, not retried, and nothing is disabled', async () => {
    const before = fake.admin.apiKeys().map((k) => [k.id, k.status]);
    expect((await cli.run(['credential', 'rotate', 'stray', '--retire'], { stdin: STRAY_NEW })).code).toBe(0);
    const run = await cli.run(['anthropic', 'keys', 'retire-due']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      `Not retired: no Anthropic API key of this organisation has the hint ${hint(STRAY_OLD)}`,
    );
    expect(fake.admin.apiKeys().map((k) => [k.id, k.status])).toEqual(before);
    const row = (await cli.json<RetirementJson[]>(['anthropic', 'keys', 'retirements'])).find(
      (r) => r.credential === 'stray',
    );
    expect(row).toMatchObject({ state: 'no_match', anthropicKeyId: null });
    expect((await cli.run(['anthropic', 'keys', 'retire-due'])).stdout).toContain('No old key is due');
  });

  it('a failing Admin API is recorded and shown, the retirement stays pending', async () => {
    expect((await cli.run(['credential', 'rotate', 'flaky', '--retire'], { stdin: FLAKY_NEW })).code).toBe(0);
    for (let i = 0; i < 4; i++)
      fake.enqueueFault({ kind: 'status', status: 529 }, { pathPrefix: '/v1/organizations/' });
    const run = await cli.run(['anthropic', 'keys', 'retire-due']);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('Could not retire the old key of flaky');
    expect(run.stderr).toContain('could not be retired yet; they are retried later');
    expect(status('apikey_flaky_old')).toBe('active');
    const row = (await cli.json<RetirementJson[]>(['anthropic', 'keys', 'retirements'])).find(
      (r) => r.credential === 'flaky',
    );
    expect(row).toMatchObject({ state: 'pending', attempts: 1 });
    expect(row?.lastError).toContain("Anthropic's Admin API answered 529");
    const table = await cli.run(['anthropic', 'keys', 'retirements']);
    expect(table.stdout).toMatch(/flaky.*pending/);

    // `tollgate status` lists what is still open (pending, no match); a done retirement is not listed.
    const report = await cli.run(['status', '--json']);
    const open = (JSON.parse(report.stdout) as { key_retirements: Array<Record<string, unknown>> })
      .key_retirements;
    expect(open.map((r) => [r.credential, r.state]).sort()).toEqual([
      ['flaky', 'pending'],
      ['stray', 'no_match'],
    ]);
    expect(open.find((r) => r.credential === 'flaky')).toMatchObject({
      attempts: 1,
      old_hint: hint(FLAKY_OLD),
    });
    const text = await cli.run(['status']);
    expect(text.stdout).toContain('Old Anthropic keys to disable after a rotation');
    expect(text.stdout).toMatch(/credential flaky: old key .*1 failed attempt/);
    expect(text.stdout).toMatch(/credential stray: old key .*NO MATCH/);
    expect(text.stdout).not.toMatch(/credential main: old key/);
  });

  it('refuses --retire for a credential that is not an Anthropic key (an anthropic one is the control above)', async () => {
    const refused = await cli.run(['credential', 'rotate', 'org-admin', '--retire'], {
      stdin: canaryAnthropicKey('admin01'),
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('only anthropic credentials');
  });

  it('never prints a secret', () => {
    expect(findLeaks(cli.transcript(), ALL)).toEqual([]);
  });
});
