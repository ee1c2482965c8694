// The README's `tollgate anthropic sync` walk-through, run as written (each command line of the marked
// block through the real CLI) against the fake upstream, with the clocks of Tollgate and the fake set to
// 1 December 2026 so the walk-through's dates hold: Tollgate traffic on `org-key`, and one request sent
// straight to the fake with the same key, reported as drift to the token and the micro-dollar.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { type Harness, startHarness } from '../helpers/gateway.js';

const MARKER = '<!-- example: sync walk-through, run by test/cli/anthropic-sync-readme.test.ts -->';
const ORG_KEY = `sk-ant-api03-test-readme-${randomBytes(30).toString('hex')}org1`;
const ADMIN_KEY = `sk-ant-admin01-test-readme-${randomBytes(30).toString('hex')}adm1`;
const START = Date.parse('2026-12-01T10:00:00Z');
const t0 = Date.now();
const clock = () => START + (Date.now() - t0);

async function walkThrough(): Promise<string[][]> {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  const part = readme.split(MARKER)[1] ?? '';
  const block = /^\s*```sh\n([\s\S]*?)\n```/.exec(part)?.[1];
  if (block === undefined) throw new Error('the README sync walk-through is missing');
  return block.split('\n').map((line) => {
    const words = (line.split('#')[0] ?? '').trim().split(/\s+/);
    expect(words.slice(0, 2)).toEqual(['npx', 'tollgate']);
    return words.slice(2);
  });
}

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ clock, fakeOptions: { now: clock } });
});
afterAll(async () => {
  await h.close();
});

describe('the README sync walk-through', () => {
  it('runs as written and shows the bypassing request as drift', async () => {
    await h.services.credentials.add(h.admin, {
      name: 'org-key',
      provider: 'anthropic',
      secret: ORG_KEY,
      validate: true,
    });
    h.fake.admin.addApiKey({ secret: ORG_KEY, id: 'apikey_readme01', name: 'org key' });
    const ask = (client: Anthropic, text: string) =>
      client.messages.create({
        model: 'claude-sonnet-4-6',
        max_tokens: 100,
        messages: [{ role: 'user', content: text }],
      });
    const through = h.client(await h.key({ credential: 'org-key' }));
    await ask(through, 'first [[fake output_tokens=12]]');
    await ask(through, 'second [[fake output_tokens=8]]');
    const direct = await ask(
      new Anthropic({ apiKey: ORG_KEY, baseURL: h.fake.url, maxRetries: 0 }),
      'around it [[fake output_tokens=6]]',
    );
    await h.gateway.deps.ledger.drain();

    const env = { TOLLGATE_HOME: h.config.home, TOLLGATE_UPSTREAM_URL: h.fake.url };
    const outputs: string[] = [];
    for (const argv of await walkThrough()) {
      const result = await runCli(argv, env, argv[0] === 'credential' ? ADMIN_KEY : '');
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      outputs.push(result.stdout);
    }
    const [, table, json] = outputs;
    expect(table).toContain('drift tokens');
    expect(table).toMatch(/2026-12-01 .*org-key .*claude-sonnet-4-6 .*drift/);
    const rows = (JSON.parse(json ?? '') as { rows: Array<Record<string, unknown>> }).rows;
    const tokens = direct.usage.input_tokens + direct.usage.output_tokens;
    const micro = direct.usage.input_tokens * 3 + direct.usage.output_tokens * 15; // Sonnet 4.6: $3 / $15 per MTok
    expect(rows).toEqual([
      expect.objectContaining({
        day: '2026-12-01',
        credential: 'org-key',
        api_key_id: 'apikey_readme01',
        model: 'claude-sonnet-4-6',
        drift_tokens: tokens,
        drift_micro_usd: micro,
        flag: 'drift',
      }),
    ]);
  });
});
