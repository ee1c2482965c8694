// Changes made with the CLI while the server runs take effect within a second, without a restart:
// revocation, new keys, budget and policy changes, credential rotation and `credential use`.
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliHome, runCli } from '../helpers/cli.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';

const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 20,
  messages: [{ role: 'user' as const, content: 'hi' }],
};

/** Retries `probe` every 50 ms until it returns true; returns the elapsed milliseconds. */
async function within(ms: number, probe: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - start;
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('live changes from the CLI', () => {
  let h: Harness;
  let cli: Pick<CliHome, 'run'>;

  beforeAll(async () => {
    h = await startHarness();
    await h.orgCredential();
    const env = { TOLLGATE_HOME: h.config.home, TOLLGATE_UPSTREAM_URL: h.fake.url };
    cli = { run: (argv, o = {}) => runCli(argv, { ...env, ...o.env }, o.stdin) };
    expect((await cli.run(['user', 'add', 'alice'])).code).toBe(0);
  });
  afterAll(() => h.close());

  const works = (key: string) =>
    h
      .client(key)
      .messages.create(PARAMS)
      .then(
        () => true,
        () => false,
      );

  it('a key issued by the CLI works, and stops within 1 s of `key revoke`', async () => {
    const issued = JSON.parse((await cli.run(['key', 'issue', '--user', 'alice', '--json'])).stdout) as {
      id: string;
      key: string;
    };
    await within(1000, () => works(issued.key));
    expect((await cli.run(['key', 'revoke', issued.id])).code).toBe(0);
    await within(1000, async () => !(await works(issued.key)));
  });

  it('a budget lowered by the CLI applies within 1 s', async () => {
    const issued = JSON.parse((await cli.run(['key', 'issue', '--user', 'alice', '--json'])).stdout) as {
      key: string;
    };
    expect(await works(issued.key)).toBe(true);
    await cli.run(['user', 'add', 'bob', '--monthly-budget', '0.000001']);
    const bob = JSON.parse((await cli.run(['key', 'issue', '--user', 'bob', '--json'])).stdout) as {
      key: string;
    };
    await within(1000, async () => {
      const error = await h
        .client(bob.key)
        .messages.create(PARAMS)
        .catch((e: unknown) => e);
      return error instanceof Anthropic.RateLimitError && /budget of user bob/.test(String(error));
    });
  });

  it('removing a user cuts off their keys within 1 s', async () => {
    await cli.run(['user', 'add', 'carol']);
    const carol = JSON.parse((await cli.run(['key', 'issue', '--user', 'carol', '--json'])).stdout) as {
      key: string;
    };
    await within(1000, () => works(carol.key));
    await cli.run(['user', 'remove', 'carol']);
    await within(1000, async () => !(await works(carol.key)));
  });

  it('credential rotation and `credential use` switch the upstream key without a restart', async () => {
    const key = JSON.parse((await cli.run(['key', 'issue', '--user', 'alice', '--json'])).stdout) as {
      key: string;
    };
    const rotated = canaryAnthropicKey();
    expect((await cli.run(['credential', 'rotate', 'org-key'], { stdin: rotated })).code).toBe(0);
    await within(1000, async () => {
      await h.client(key.key).messages.create(PARAMS);
      return h.fake.served.at(-1)?.apiKey === rotated;
    });
    const second = canaryAnthropicKey();
    expect(
      (await cli.run(['credential', 'add', 'org-second', '--provider', 'anthropic'], { stdin: second })).code,
    ).toBe(0);
    expect((await cli.run(['credential', 'use', 'org-second'])).code).toBe(0);
    await within(1000, async () => {
      await h.client(key.key).messages.create(PARAMS);
      return h.fake.served.at(-1)?.apiKey === second;
    });
  });

  it('`tollgate usage` summarises the ledger per model, user and day', async () => {
    const byModel = JSON.parse((await cli.run(['usage', '--json'])).stdout) as Array<Record<string, unknown>>;
    const haiku = byModel.find((r) => r.model === 'claude-haiku-4-5');
    expect(haiku).toMatchObject({
      requests: expect.any(Number),
      input_tokens: expect.any(Number),
      output_tokens: expect.any(Number),
    });
    for (const field of [
      'cache_write_5m_tokens',
      'cache_write_1h_tokens',
      'cache_read_tokens',
      'cost_micro_usd',
      'cost_usd',
    ]) {
      expect(haiku).toHaveProperty(field);
    }
    expect(Number.isInteger(haiku?.cost_micro_usd)).toBe(true);
    const rows = await h.installation.db.kysely
      .selectFrom('usage_records')
      .selectAll()
      .where('status', '=', 200)
      .where('endpoint', '=', 'messages')
      .execute();
    expect(haiku?.requests).toBe(rows.length);
    expect(haiku?.cost_micro_usd).toBe(rows.reduce((s, r) => s + r.cost_micro, 0));
    const byUser = JSON.parse((await cli.run(['usage', '--by', 'user', '--json'])).stdout) as Array<{
      user: string;
    }>;
    expect(byUser.map((r) => r.user)).toContain('alice');
    const byCredential = JSON.parse(
      (await cli.run(['usage', '--by', 'credential', '--json'])).stdout,
    ) as Array<{ credential: string }>;
    expect(byCredential.map((r) => r.credential)).toEqual(expect.arrayContaining(['org-key', 'org-second']));
    const byDay = JSON.parse(
      (await cli.run(['usage', '--by', 'day', '--since', '1d', '--json'])).stdout,
    ) as Array<{ day: string }>;
    expect(byDay.map((r) => r.day)).toContain(new Date().toISOString().slice(0, 10));
    const table = await cli.run(['usage']);
    expect(table.stdout).toContain('claude-haiku-4-5');
    expect(table.stdout).toMatch(/Total: \$\d/);
    const empty = JSON.parse(
      (await cli.run(['usage', '--since', '2000-01-01', '--until', '2000-02-01', '--json'])).stdout,
    );
    expect(empty).toEqual([]);
  });
});
