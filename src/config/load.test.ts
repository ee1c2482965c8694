import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../lib/errors.js';
import type { LoadConfigInput } from './load.js';
import { loadConfig } from './load.js';

// The example of product.md §3, verbatim.
const PRODUCT_EXAMPLE = `
server: { host: 127.0.0.1, port: 8420, public_url: https://tollgate.example.com, trust_proxy: false }
database: { url: "sqlite:.tollgate/tollgate.db" }
upstream: { anthropic_base_url: https://api.anthropic.com, timeout_ms: 600000, max_retries: 2 }
claude:
  default_model: claude-sonnet-4-6
  models_allowed: [claude-sonnet-4-6, claude-haiku-4-5]
  max_monthly_spend_usd: 500          # org-wide monthly cap
  per_coder_monthly_limit_usd: 100    # default monthly budget of each new user
  prompt_caching: auto                # auto | off
  otel_endpoint: ""                   # OTLP/HTTP base URL (\`/v1/metrics\` is appended); empty = off
  otel_interval_s: 10                 # export interval
security: { key_max_age_days: 90 }
alerts: { webhook_url: "", thresholds: [0.5, 0.8, 1.0] }
claude_code:
  deny: ["Read(./.secrets.data.yml)", "Read(./keys/prod_*)", "Read(./**/*.sql)", "Read(./**/*.sql.gz)", "Read(./.env)", "Read(./.env.*)"]
pricing: {}                           # per-model overrides of the built-in price table
`;

let cwd: string;
let file: string;

beforeEach(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'tollgate-config-'));
  file = join(cwd, 'conf', 'tollgate.yml');
  await mkdir(join(cwd, 'conf'));
});

async function load(
  yaml: string | null,
  env: LoadConfigInput['env'] = {},
  extra: Partial<LoadConfigInput> = {},
) {
  if (yaml !== null) await writeFile(file, yaml);
  return loadConfig({ cwd, env: yaml === null ? env : { TOLLGATE_CONFIG: file, ...env }, ...extra });
}

async function problems(yaml: string | null, env: LoadConfigInput['env'] = {}): Promise<string> {
  const error = await load(yaml, env).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  expect((error as AppError).code).toBe('invalid_config');
  return (error as AppError).message;
}

describe('loadConfig defaults', () => {
  it('applies every default when there is no file', async () => {
    const config = await load(null);
    expect(config.home).toBe(join(cwd, '.tollgate'));
    expect(config.configFile).toBeNull();
    expect(config.server).toEqual({
      host: '127.0.0.1',
      port: 8420,
      public_url: 'http://127.0.0.1:8420',
      trust_proxy: false,
      body_limit_bytes: 33_554_432,
      json_max_depth: 64,
      shutdown_grace_s: 30,
      cors_origins: [],
    });
    expect(config.database).toEqual({ kind: 'sqlite', path: join(cwd, '.tollgate', 'tollgate.db') });
    expect(config.redis.url).toBeNull();
    expect(config.upstream.anthropic_base_url).toBe('https://api.anthropic.com');
    expect(config.claude.max_monthly_spend_micro).toBeNull();
    expect(config.claude.models_allowed).toEqual([]);
    expect(config.claude.otel_endpoint).toBeNull();
    expect(config.alerts).toEqual({
      webhook_url: null,
      thresholds: [0.5, 0.8, 1],
      webhook_allow_link_local: false,
    });
    expect(config.claude_code.deny).toContain('Read(./.env.*)');
    expect(config.logging.level).toBe('info');
    expect(config.usage.timezone).toBe('UTC');
    expect(config.masterKey).toEqual({ defaultFile: join(cwd, '.tollgate', 'master.key') });
    expect(config.serverUrl).toBeNull();
    expect(config.adminToken).toBeNull();
  });

  it('finds tollgate.yml in the home directory and honours --home', async () => {
    await writeFile(join(cwd, 'conf', 'tollgate.yml'), 'server: { port: 9001 }\n');
    const config = await loadConfig({
      cwd,
      env: { TOLLGATE_HOME: 'elsewhere' },
      overrides: { home: 'conf' },
    });
    expect(config.home).toBe(join(cwd, 'conf'));
    expect(config.configFile).toBe(file);
    expect(config.server.port).toBe(9001);
  });

  it('reads the environment-only settings', async () => {
    const config = await load(null, {
      TOLLGATE_HOME: '/srv/tg',
      TOLLGATE_MASTER_KEY_FILE: 'run/key',
      TOLLGATE_MASTER_KEY: 'a2V5',
      TOLLGATE_SERVER: 'https://tg.example.com',
      TOLLGATE_ADMIN_TOKEN: 'tok',
    });
    expect(config.home).toBe('/srv/tg');
    expect(config.masterKey).toEqual({
      inline: 'a2V5',
      file: join(cwd, 'run/key'),
      defaultFile: '/srv/tg/master.key',
    });
    expect(config.serverUrl).toBe('https://tg.example.com');
    expect(config.adminToken).toBe('tok');
  });

  it('returns a deeply frozen object', async () => {
    const config = await load(PRODUCT_EXAMPLE);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.server)).toBe(true);
    expect(Object.isFrozen(config.claude.models_allowed)).toBe(true);
    expect(() => {
      (config.server as { port: number }).port = 1;
    }).toThrow(TypeError);
  });
});

describe('loadConfig file', () => {
  it('parses the product.md example, with money in micro-USD', async () => {
    const config = await load(PRODUCT_EXAMPLE);
    expect(config.configFile).toBe(file);
    expect(config.server.public_url).toBe('https://tollgate.example.com');
    expect(config.database).toEqual({ kind: 'sqlite', path: join(cwd, '.tollgate', 'tollgate.db') });
    expect(config.claude.models_allowed).toEqual(['claude-sonnet-4-6', 'claude-haiku-4-5']);
    expect(config.claude.max_monthly_spend_micro).toBe(500_000_000);
    expect(config.claude.per_coder_monthly_limit_micro).toBe(100_000_000);
    expect(config.security.key_max_age_days).toBe(90);
  });

  it('converts pricing overrides to micro-USD per million tokens', async () => {
    const config = await load(
      'pricing:\n  my-model: { input_usd_per_mtok: 3, output_usd_per_mtok: 15, cache_read_usd_per_mtok: 0.3 }\n',
    );
    expect(config.pricing['my-model']).toEqual({
      input_micro_per_mtok: 3_000_000,
      output_micro_per_mtok: 15_000_000,
      cache_write_5m_micro_per_mtok: null,
      cache_write_1h_micro_per_mtok: null,
      cache_read_micro_per_mtok: 300_000,
      min_cacheable_tokens: null,
    });
  });

  it('reads file: references relative to the config directory and env: references', async () => {
    await mkdir(join(cwd, 'conf', 'secrets'));
    await writeFile(join(cwd, 'conf', 'secrets', 'hook'), 'https://hooks.example.com/T0/B0\n');
    const yaml =
      'alerts: { webhook_url: "file:secrets/hook" }\ndatabase: { url: "env:DB" }\nserver: { port: "env:PORT" }\n';
    const config = await load(yaml, { DB: 'postgres://tg:pw@db/tg', PORT: '9000' });
    expect(config.alerts.webhook_url).toBe('https://hooks.example.com/T0/B0');
    expect(config.database).toEqual({ kind: 'postgres', url: 'postgres://tg:pw@db/tg' });
    expect(config.server.port).toBe(9000);
  });

  it('treats empty sections as defaults and resolves sqlite paths against the working directory', async () => {
    const config = await load('server:\ndatabase: { url: "sqlite:data/tg.db" }\n');
    expect(config.server.port).toBe(8420);
    expect(config.database).toEqual({ kind: 'sqlite', path: join(cwd, 'data', 'tg.db') });
  });
});

describe('loadConfig overrides', () => {
  it('ranks CLI flags over specific variables over generic variables over the file', async () => {
    const yaml = 'server: { host: 10.0.0.1, port: 9000 }\nclaude: { default_model: from-file }\n';
    const env = { TOLLGATE_SERVER_PORT: '9100', TOLLGATE_CLAUDE_DEFAULT_MODEL: 'from-env' };
    expect((await load(yaml, env)).server.port).toBe(9100);
    expect((await load(yaml, env)).claude.default_model).toBe('from-env');
    expect((await load(yaml, { ...env, TOLLGATE_PORT: '9200' })).server.port).toBe(9200);
    const flagged = await load(
      yaml,
      { ...env, TOLLGATE_PORT: '9200', TOLLGATE_HOST: '0.0.0.0' },
      {
        overrides: { port: 9300 },
      },
    );
    expect(flagged.server).toMatchObject({ host: '0.0.0.0', port: 9300, public_url: 'http://0.0.0.0:9300' });
  });

  it('maps the specific variables of product.md', async () => {
    const config = await load(null, {
      TOLLGATE_DATABASE_URL: 'postgres://tg:secret@db:5432/tg',
      TOLLGATE_REDIS_URL: 'redis://cache:6379',
      TOLLGATE_UPSTREAM_URL: 'http://127.0.0.1:9999/',
    });
    expect(config.database).toEqual({ kind: 'postgres', url: 'postgres://tg:secret@db:5432/tg' });
    expect(config.redis.url).toBe('redis://cache:6379');
    expect(config.upstream.anthropic_base_url).toBe('http://127.0.0.1:9999');
  });

  it('coerces generic variables by the type of the key', async () => {
    const config = await load('claude: { max_monthly_spend_usd: 50 }\n', {
      TOLLGATE_ALERTS_THRESHOLDS: '0.5, 0.9',
      TOLLGATE_SERVER_TRUST_PROXY: 'true',
      TOLLGATE_SECURITY_KEY_MAX_AGE_DAYS: '30',
      TOLLGATE_CLAUDE_MODELS_ALLOWED: '["a","b"]',
      TOLLGATE_CLAUDE_CODE_DENY: 'Read(./x),Read(./y)',
      TOLLGATE_CLAUDE_MAX_MONTHLY_SPEND_USD: 'null',
      TOLLGATE_CLAUDE_PER_CODER_MONTHLY_LIMIT_USD: '12.5',
      TOLLGATE_UPSTREAM_MAX_RETRIES: '',
      TOLLGATE_PRICING: '{"m":{"input_usd_per_mtok":1,"output_usd_per_mtok":2}}',
    });
    expect(config.alerts.thresholds).toEqual([0.5, 0.9]);
    expect(config.server.trust_proxy).toBe(true);
    expect(config.security.key_max_age_days).toBe(30);
    expect(config.claude.models_allowed).toEqual(['a', 'b']);
    expect(config.claude_code.deny).toEqual(['Read(./x)', 'Read(./y)']);
    expect(config.claude.max_monthly_spend_micro).toBeNull();
    expect(config.claude.per_coder_monthly_limit_micro).toBe(12_500_000);
    expect(config.upstream.max_retries).toBe(2);
    expect(config.pricing.m?.output_micro_per_mtok).toBe(2_000_000);
  });

  it('names the variable that carries a bad value', async () => {
    const message = await problems('server: { port: 9000 }\n', {
      TOLLGATE_PORT: 'abc',
      TOLLGATE_SERVER_TRUST_PROXY: 'yes',
      TOLLGATE_REDIS_URL: 'env:MISSING',
    });
    expect(message).toContain('TOLLGATE_PORT (server.port): expected a number, got string "abc"');
    expect(message).toContain('TOLLGATE_SERVER_TRUST_PROXY (server.trust_proxy): expected true or false');
    expect(message).toContain('TOLLGATE_REDIS_URL (redis.url): environment variable MISSING');
    expect(message.split('\n')).toHaveLength(3);
  });
});

describe('loadConfig refusals', () => {
  it('gives file, line and column of a YAML syntax error', async () => {
    expect(await problems('server:\n  host: x\n port: 3\n')).toMatch(`${file}:3:1: YAML syntax error`);
  });

  it('names unknown keys', async () => {
    const message = await problems('server: { hots: x }\nserverr: {}\n');
    expect(message).toContain(`${file}: server.hots: unknown key`);
    expect(message).toContain(`${file}: serverr: unknown key`);
  });

  it('reports wrong types with the value', async () => {
    expect(await problems('claude: { max_monthly_spend_usd: abc }\n')).toBe(
      `${file}: claude.max_monthly_spend_usd: expected a number, got string "abc"`,
    );
    expect(await problems('logging: { level: loud }\n')).toContain(
      `${file}: logging.level: expected one of fatal`,
    );
  });

  it('takes usage.timezone as an IANA zone (default UTC) and names the key when it is not one', async () => {
    expect((await load('usage: { timezone: Asia/Kathmandu }\n')).usage.timezone).toBe('Asia/Kathmandu');
    expect(await problems('usage: { timezone: Mars/Olympus_Mons }\n')).toContain(
      `${file}: usage.timezone: expected an IANA timezone`,
    );
  });

  it('takes usage.retention_days as whole days of at least 1, or null (the default: keep forever)', async () => {
    expect((await load('')).usage.retention_days).toBeNull();
    expect((await load('usage: { retention_days: 90 }\n')).usage.retention_days).toBe(90);
    expect((await load('usage: { retention_days: null }\n')).usage.retention_days).toBeNull();
    expect(await problems('usage: { retention_days: 0 }\n')).toContain(`${file}: usage.retention_days:`);
    expect(await problems('usage: { retention_days: 1.5 }\n')).toContain(`${file}: usage.retention_days:`);
    expect(await problems('usage: { retention_days: soon }\n')).toContain(`${file}: usage.retention_days:`);
    expect((await load('', { TOLLGATE_USAGE_RETENTION_DAYS: '30' })).usage.retention_days).toBe(30);
  });

  it('refuses negative money and a per-coder limit above the cap', async () => {
    expect(await problems('claude: { per_coder_monthly_limit_usd: -5 }\n')).toContain(
      `${file}: claude.per_coder_monthly_limit_usd: must not be negative`,
    );
    expect(
      await problems('claude: { max_monthly_spend_usd: 10, per_coder_monthly_limit_usd: 20 }\n'),
    ).toContain(`${file}: claude.per_coder_monthly_limit_usd: must not exceed claude.max_monthly_spend_usd`);
  });

  it('reads metrics: the token only as a reference (a secret), the user label cap with its default', async () => {
    const inline = await problems('metrics: { token: "tgm-inline-token-value" }\n');
    expect(inline).toBe(`${file}: metrics.token: secrets must be given as env:NAME or file:PATH, not inline`);
    expect(inline).not.toContain('tgm-inline');
    const config = await load('metrics: { token: "env:MT" }\n', { MT: 'tgm-from-env' });
    expect(config.metrics).toEqual({ token: 'tgm-from-env', max_user_labels: 100 });
    expect((await load(null)).metrics).toEqual({ token: null, max_user_labels: 100 });
    expect(await problems('metrics: { max_user_labels: -1 }\n')).toContain('metrics.max_user_labels');
  });

  it('refuses inline secrets without repeating them', async () => {
    const message = await problems('alerts: { webhook_url: "https://hooks.example.com/SECRET" }\n');
    expect(message).toBe(
      `${file}: alerts.webhook_url: secrets must be given as env:NAME or file:PATH, not inline`,
    );
    const db = await problems('database: { url: "postgres://tg:hunter2@db/tg" }\n');
    expect(db).toContain(
      `${file}: database.url: a URL with a password must be given as env:NAME or file:PATH`,
    );
    expect(db).not.toContain('hunter2');
    const query = await problems('database: { url: "postgres://db/tg?password=hunter2" }\n');
    expect(query).toContain('database.url: a URL with a password');
    expect(query).not.toContain('hunter2');
  });

  it('names a missing reference, never its value', async () => {
    expect(await problems('alerts: { webhook_url: "env:HOOK" }\n')).toContain(
      `${file}: alerts.webhook_url: environment variable HOOK (referenced as env:HOOK) is not set`,
    );
    expect(await problems('alerts: { webhook_url: "file:nope" }\n')).toContain(
      `${file}: alerts.webhook_url: cannot read ${join(cwd, 'conf', 'nope')} (referenced as file:nope): ENOENT`,
    );
    const bad = await problems('alerts: { webhook_url: "env:HOOK" }\n', { HOOK: 'not a url s3cr3t' });
    expect(bad).toContain(`${file}: alerts.webhook_url: expected an http(s) URL`);
    expect(bad).not.toContain('s3cr3t');
  });

  it('refuses a webhook on a link-local or metadata address unless allowed, without repeating the URL', async () => {
    const yaml = 'alerts: { webhook_url: "env:HOOK" }\n';
    for (const hook of [
      'http://169.254.169.254/latest/s3cr3t',
      'http://169.254.10.1:8080/s3cr3t',
      'http://[fe80::1]/s3cr3t',
      'http://[fd00:ec2::254]/s3cr3t',
      'http://[::ffff:169.254.169.254]/s3cr3t',
      'http://metadata.google.internal/s3cr3t',
      'https://METADATA.GOOGLE.INTERNAL./s3cr3t',
      'http://2852039166/s3cr3t', // 169.254.169.254 as one number
    ]) {
      const message = await problems(yaml, { HOOK: hook });
      expect(message, hook).toContain(`${file}: alerts.webhook_url: points to a`);
      expect(message, hook).toContain('set alerts.webhook_allow_link_local: true if this is intended');
      expect(message, hook).not.toContain('s3cr3t');
      // The same URL is accepted when explicitly allowed.
      const allowed = await load('alerts: { webhook_url: "env:HOOK", webhook_allow_link_local: true }\n', {
        HOOK: hook,
      });
      expect(allowed.alerts.webhook_url, hook).toBe(hook);
    }
    // Positive controls: loopback, private and public hosts stay allowed.
    for (const hook of [
      'http://127.0.0.1:9000/hook',
      'http://10.0.0.5/hook',
      'http://[::1]:9000/hook',
      'https://hooks.slack.com/services/T0/B0/x',
      'http://relay.internal/hook',
    ]) {
      expect((await load(yaml, { HOOK: hook })).alerts.webhook_url, hook).toBe(hook);
    }
    expect(await problems(yaml, { HOOK: 'ftp://hooks.example.com/s3cr3t' })).toContain(
      `${file}: alerts.webhook_url: expected an http(s) URL`,
    );
  });

  it('refuses thresholds out of order or out of range', async () => {
    const message = await problems('alerts: { thresholds: [0.8, 0.5, 1.5] }\n');
    expect(message).toContain(`${file}: alerts.thresholds[1]: thresholds must be ascending`);
    expect(message).toContain(`${file}: alerts.thresholds[2]: must be greater than 0 and at most 1`);
  });

  it('refuses bad URLs', async () => {
    const message = await problems(
      'server: { public_url: "ftp://x", port: 70000 }\nupstream: { anthropic_base_url: "https://u:p@api.example.com/?a=1" }\n',
    );
    expect(message).toContain(`${file}: server.public_url: expected an http(s) URL`);
    expect(message).toContain(`${file}: server.port: must be at most 65535`);
    expect(message).toContain(`${file}: upstream.anthropic_base_url: must not contain credentials`);
    expect(message).toContain(`${file}: upstream.anthropic_base_url: must not contain a query or fragment`);
  });

  it('reports every problem at once, one per line', async () => {
    const message = await problems('server: { hots: x, port: -1 }\nsecurity: { key_max_age_days: 0 }\n');
    expect(message.split('\n')).toHaveLength(3);
  });

  it('reports a __proto__ key as unknown without touching Object.prototype', async () => {
    const message = await problems('__proto__: { polluted: "env:X" }\n', { X: 'yes' });
    expect(message).toContain(`${file}: __proto__: unknown key`);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses a named config file that does not exist', async () => {
    const error = await loadConfig({ cwd, env: { TOLLGATE_CONFIG: 'missing.yml' } }).catch((e: unknown) => e);
    expect((error as AppError).message).toBe(
      `${join(cwd, 'missing.yml')}: cannot read the config file (ENOENT)`,
    );
  });
});

describe('audit.witness_path', () => {
  it('is unset by default, resolved against the working directory, and overridden by its variable', async () => {
    expect((await load(null)).audit).toEqual({ witness_path: null });
    expect((await load('audit: { witness_path: witness/audit.log }\n')).audit.witness_path).toBe(
      join(cwd, 'witness', 'audit.log'),
    );
    const env = { TOLLGATE_AUDIT_WITNESS_PATH: '/mnt/worm/tollgate.witness' };
    expect((await load('audit: { witness_path: a.log }\n', env)).audit.witness_path).toBe(
      '/mnt/worm/tollgate.witness',
    );
    // An empty variable turns a configured witness off (as for other optional keys).
    expect(
      (await load('audit: { witness_path: a.log }\n', { TOLLGATE_AUDIT_WITNESS_PATH: '' })).audit,
    ).toEqual({
      witness_path: null,
    });
  });
});

describe('integrations', () => {
  it('defaults to the public GitHub and Linear APIs and takes overrides from the file or the environment', async () => {
    expect((await load(null)).integrations).toEqual({
      github_api_url: 'https://api.github.com',
      linear_api_url: 'https://api.linear.app',
    });
    const config = await load('integrations: { github_api_url: "https://ghe.example.com/api/v3/" }\n', {
      TOLLGATE_LINEAR_API_URL: 'http://127.0.0.1:7001',
    });
    expect(config.integrations).toEqual({
      github_api_url: 'https://ghe.example.com/api/v3',
      linear_api_url: 'http://127.0.0.1:7001',
    });
    expect(
      (await load(null, { TOLLGATE_GITHUB_API_URL: 'http://127.0.0.1:7002' })).integrations.github_api_url,
    ).toBe('http://127.0.0.1:7002');
  });

  it('refuses URLs that are not http(s)', async () => {
    const message = await problems(null, { TOLLGATE_GITHUB_API_URL: 'ftp://example.com' });
    expect(message).toContain(
      'TOLLGATE_GITHUB_API_URL (integrations.github_api_url): expected an http(s) URL',
    );
    expect(await problems('integrations: { linear_api_url: "not a url" }\n')).toContain(
      'integrations.linear_api_url: expected an http(s) URL',
    );
  });
});
