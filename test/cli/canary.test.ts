// Canary credentials added through the CLI must never appear — raw, base64, hex or URL-encoded — in the
// database file, its WAL, the server's logs, or anything any command prints after `add`.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { buildServer } from '../../src/http/server.js';
import { openInstallation } from '../../src/install/installation.js';
import { createLogger } from '../../src/observability/logger.js';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { type CliHome, tempHome } from '../helpers/cli.js';
import { canaryAnthropicKey, findLeaks } from '../helpers/secrets.js';

describe('canary credentials never leak', () => {
  let fake: FakeUpstream;
  let cli: CliHome;
  const apiKey = canaryAnthropicKey('api03');
  const rotatedKey = canaryAnthropicKey('api03');
  const adminKey = canaryAnthropicKey('admin01');
  const githubToken = `ghp_testcanary${'Q'.repeat(26)}`;
  const genericToken = 'generic-test-canary-0123456789abcdefghijklmnop';
  const canaries = [apiKey, rotatedKey, adminKey, githubToken, genericToken];

  beforeAll(async () => {
    fake = await startFakeUpstream();
    cli = await tempHome({ TOLLGATE_UPSTREAM_URL: fake.url, CANARY_GITHUB: githubToken });
    expect((await cli.run(['init'])).code).toBe(0);
  });

  afterAll(async () => {
    await fake.close();
    await cli.cleanup();
  });

  it('adds canaries by every input path, then finds them nowhere', async () => {
    const transcriptBefore = cli.transcript().length;
    expect(
      (await cli.run(['credential', 'add', 'org-key', '--provider', 'anthropic'], { stdin: `${apiKey}\n` }))
        .code,
    ).toBe(0);
    expect(
      (await cli.run(['credential', 'add', 'admin', '--provider', 'anthropic-admin'], { stdin: adminKey }))
        .code,
    ).toBe(0);
    expect(
      // GitHub tokens are checked against api.github.com unless told otherwise: no test reaches the internet.
      (
        await cli.run([
          'credential',
          'add',
          'gh',
          '--provider',
          'github',
          '--no-validate',
          '--from-env',
          'CANARY_GITHUB',
        ])
      ).code,
    ).toBe(0);
    const file = join(cli.home, '..', 'generic.txt');
    await writeFile(file, `${genericToken}\n`, { mode: 0o600 });
    expect(
      (await cli.run(['credential', 'add', 'other', '--provider', 'generic', '--from-file', file])).code,
    ).toBe(0);
    await cli.run(['credential', 'rotate', 'org-key'], { stdin: rotatedKey });

    // Every reading and error path a person would try afterwards.
    await cli.run(['user', 'add', 'alice']);
    for (const argv of [
      ['credential', 'list'],
      ['credential', 'list', '--json'],
      ['credential', 'show', 'org-key'],
      ['credential', 'show', 'admin', '--json'],
      ['credential', 'use', 'org-key'],
      ['credential', 'disable', 'gh'],
      ['credential', 'enable', 'gh'],
      [
        'credential',
        'add',
        'org-key',
        '--provider',
        'anthropic',
        '--no-validate',
        '--from-env',
        'CANARY_GITHUB',
      ],
      ['key', 'issue', '--user', 'alice', '--credential', 'org-key', '--json'],
      ['key', 'list', '--json'],
      ['audit', 'list', '--json'],
      ['audit', 'verify'],
      ['doctor', '--json'],
    ]) {
      await cli.run(argv);
    }

    // The server's logs while it serves a few requests.
    const logChunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logChunks.push(chunk);
        done();
      },
    });
    const config = await loadConfig({ env: cli.env, cwd: join(cli.home, '..') });
    const installation = await openInstallation(config);
    const app = await buildServer({
      installation,
      logger: createLogger('trace', sink),
      bodyLimit: 1024,
      trustProxy: false,
      version: 'test',
    });
    await app.inject({
      method: 'GET',
      url: `/admin/v1/whoami?key=${encodeURIComponent(apiKey)}`,
      headers: { authorization: `Bearer ${apiKey}` },
    });
    await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-api-key': adminKey } });
    await app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: { 'x-api-key': apiKey },
      payload: { secret: githubToken },
    });
    await app.close();
    await installation.close();
    const logs = Buffer.concat(logChunks).toString('utf8');
    expect(logs).toContain('"path":"/admin/v1/whoami"');

    const printed = cli.transcript().slice(transcriptBefore);
    const db = await readFile(join(cli.home, 'tollgate.db'));
    const wal = await readFile(join(cli.home, 'tollgate.db-wal')).catch(() => Buffer.alloc(0));

    expect(findLeaks(printed, canaries)).toEqual([]);
    expect(findLeaks(db, canaries)).toEqual([]);
    expect(findLeaks(wal, canaries)).toEqual([]);
    expect(findLeaks(logs, canaries)).toEqual([]);
    // The hint is shown, so the test would notice if output were simply empty.
    expect(printed).toContain(`${rotatedKey.slice(0, 16)}...${rotatedKey.slice(-4)}`);
  });

  it('is able to find a leak (the detector itself works)', () => {
    const bytes = Buffer.from(`xx${Buffer.from(apiKey).toString('base64')}yy`);
    expect(findLeaks(bytes, [apiKey])).not.toEqual([]);
    expect(findLeaks(Buffer.from(apiKey).toString('hex'), [apiKey])).not.toEqual([]);
    expect(findLeaks(`a${Buffer.from(`z${apiKey}`).toString('base64')}`, [apiKey])).not.toEqual([]);
  });
});
