// The README's admin and self-service API examples, run as written (curl and jq) against a fresh server:
// every block marked `<!-- example: run as written … -->`, in order, in one shell, with TG and TOKEN set
// as the README says and the two Anthropic keys it refers to pointing at fake-upstream test keys.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';

const run = (args: string[], options: { env: Record<string, string>; timeout: number }) =>
  promisify(execFile)('bash', args, { ...options, encoding: 'utf8', maxBuffer: 4 * 1024 * 1024 });

const MARKER = '<!-- example: run as written by test/api/readme-examples.test.ts -->';

async function markedBlocks(): Promise<string[]> {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  const blocks: string[] = [];
  for (const part of readme.split(MARKER).slice(1)) {
    const match = /^\s*```sh\n([\s\S]*?)\n```/.exec(part);
    if (!match?.[1]) throw new Error('a marked README example is not followed by a ```sh block');
    blocks.push(match[1]);
  }
  return blocks;
}

describe('the README API examples', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  });

  afterAll(async () => {
    await h?.close();
  });

  it('run as written and do what the README says', async () => {
    const blocks = await markedBlocks();
    expect(blocks.length).toBe(4);
    // Asynchronous: the server answering the examples runs in this process.
    const result = await run(['--norc', '--noprofile', '-euo', 'pipefail', '-c', blocks.join('\n')], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        TG: h.url,
        TOKEN: h.adminToken,
        ANTHROPIC_API_KEY: canaryAnthropicKey(),
        MY_ANTHROPIC_KEY: canaryAnthropicKey(),
      },
      timeout: 60_000,
    });
    expect(result.stderr).toBe('');
    const out = result.stdout;
    expect(out).toContain('"actor":"admin-token"');
    expect(out).toContain('"name":"platform"');
    expect(out).toContain('unknown field owner in the body');
    expect(out).toContain('"limit_usd":"40.00"');
    expect(out).toContain('"team.add"'); // jq prints the audit actions
    expect(out).toMatch(/"ok":\s*true/);
    expect(out).toContain('"hasAnthropicKey":true');
    expect(out).toContain('"preferredModel":"claude-sonnet-4-6"');
    // Signing in: an admin session, its CSRF token required, an invite link that signs alice in.
    expect(out).toMatch(/"kind":\s*"installation",\s*"role":\s*"admin",\s*"method":\s*"admin-token"/);
    expect(out).toContain('"forbidden"');
    expect(out).toContain('"data"');
    expect(out).toMatch(/"method":\s*"invite",\s*"user":\s*"alice"/);
    expect((await h.services.teams.list()).map((t) => t.name)).toContain('data');
    expect((await h.services.users.show('alice')).passwordSet).toBe(true);
    // The refused PATCH changed nothing: alice is still a member.
    expect((await h.services.users.show('alice')).role).toBe('member');
    // The credential added by the example is stored and shown by hint only.
    expect((await h.services.credentials.show('org-key')).status).toBe('active');
  }, 90_000);
});
