// `credential add --provider github|linear` checks the token with the same calls as the self-service
// API (GitHub `GET /user`, Linear's viewer query), against local fakes: a refused token stores nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeProviders, startFakeProviders } from '../fake-providers/index.js';
import { type CliHome, tempHome } from '../helpers/cli.js';

let providers: FakeProviders;
let cli: CliHome;

beforeAll(async () => {
  providers = await startFakeProviders();
  cli = await tempHome(providers.env);
  expect((await cli.run(['init'])).code).toBe(0);
});

afterAll(async () => {
  await cli?.cleanup();
  await providers?.close();
});

describe('credential add with GitHub and Linear tokens', () => {
  it('refuses a bad token (exit 1, nothing stored) and stores a good one', async () => {
    for (const [provider, good, calls] of [
      ['github', providers.goodGitHubToken, providers.github],
      ['linear', providers.goodLinearKey, providers.linear],
    ] as const) {
      const before = calls.length;
      const bad = await cli.run(['credential', 'add', `${provider}-bad`, '--provider', provider], {
        stdin: `${provider}_testbad_${'Z'.repeat(30)}`,
      });
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('rejected this token');
      expect(calls.length).toBe(before + 1);
      const ok = await cli.run(['credential', 'add', `${provider}-good`, '--provider', provider], {
        stdin: good,
      });
      expect(ok.code, ok.stderr).toBe(0);
      // --no-validate asks nobody.
      const skipped = await cli.run(
        ['credential', 'add', `${provider}-unchecked`, '--provider', provider, '--no-validate'],
        { stdin: `${provider}_testunchecked_${'Y'.repeat(30)}` },
      );
      expect(skipped.code, skipped.stderr).toBe(0);
      expect(calls.length).toBe(before + 2);
    }
    const list = JSON.parse((await cli.run(['credential', 'list', '--json'])).stdout) as Array<{
      name: string;
    }>;
    expect(list.map((c) => c.name).sort()).toEqual([
      'github-good',
      'github-unchecked',
      'linear-good',
      'linear-unchecked',
    ]);
  });
});
