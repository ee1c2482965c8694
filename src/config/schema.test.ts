import { describe, expect, it } from 'vitest';
import { coerceText, configFileSchema, isSecretKey, isSensitiveKey, OVERRIDABLE_PATHS } from './schema.js';

describe('configFileSchema', () => {
  it('accepts an empty file and fills every default', () => {
    const parsed = configFileSchema.parse({});
    expect(parsed.server.public_url).toBe('http://127.0.0.1:8420');
    expect(parsed.claude.max_monthly_spend_micro).toBeNull();
    expect(parsed.database.url).toBe('');
  });

  it('derives public_url from host and port, bracketing IPv6 hosts', () => {
    expect(configFileSchema.parse({ server: { host: '::1', port: 9000 } }).server.public_url).toBe(
      'http://[::1]:9000',
    );
  });

  it('converts USD to micro-USD exactly', () => {
    const parsed = configFileSchema.parse({
      claude: { max_monthly_spend_usd: 0.3, per_coder_monthly_limit_usd: 0.1 },
    });
    expect(parsed.claude.max_monthly_spend_micro).toBe(300_000);
    expect(parsed.claude.per_coder_monthly_limit_micro).toBe(100_000);
  });
});

describe('server.cors_origins', () => {
  const parse = (origins: unknown) => configFileSchema.safeParse({ server: { cors_origins: origins } });

  it('accepts exact origins and defaults to none', () => {
    expect(configFileSchema.parse({}).server.cors_origins).toEqual([]);
    const ok = parse(['https://app.example.com', 'http://localhost:5173']);
    expect(ok.success && ok.data.server.cors_origins).toEqual([
      'https://app.example.com',
      'http://localhost:5173',
    ]);
  });

  it('refuses wildcards, paths, trailing slashes and other schemes', () => {
    for (const bad of [
      '*',
      'https://*.example.com',
      'https://app.example.com/',
      'https://a.example/x',
      'ftp://a.example',
      'null',
    ]) {
      const result = parse([bad]);
      expect(result.success, bad).toBe(false);
      expect(result.error?.issues[0]?.message, bad).toMatch(/exact origin/);
    }
  });
});

describe('secret keys', () => {
  it('knows the listed keys and the naming rule', () => {
    expect(isSecretKey(['alerts', 'webhook_url'])).toBe(true);
    expect(isSecretKey(['oidc', 'client_secret'])).toBe(true);
    expect(isSecretKey(['smtp', 'password'])).toBe(true);
    expect(isSecretKey(['server', 'host'])).toBe(false);
    expect(isSensitiveKey(['database', 'url'])).toBe(true);
  });
});

describe('coerceText', () => {
  it('lists every section key for generic overrides', () => {
    expect(OVERRIDABLE_PATHS).toContainEqual(['claude', 'default_model']);
    expect(OVERRIDABLE_PATHS).toContainEqual(['claude_code', 'deny']);
    expect(OVERRIDABLE_PATHS).toContainEqual(['pricing']);
  });

  it.each([
    [['server', 'port'], '8421', 8421],
    [['server', 'port'], 'x', 'x'],
    [['server', 'port'], '', undefined],
    [['server', 'trust_proxy'], 'false', false],
    [['server', 'host'], ' h ', ' h '],
    [['alerts', 'thresholds'], '0.5,1', [0.5, 1]],
    [['alerts', 'thresholds'], '[0.5]', [0.5]],
    [['claude', 'models_allowed'], '', []],
    [['claude', 'max_monthly_spend_usd'], 'null', null],
    [['pricing'], '{"m":{}}', { m: {} }],
    [['alerts', 'thresholds', 0], '0.5', 0.5],
    [['nope', '__proto__'], 'x', 'x'],
  ])('%j from %j', (path, text, value) => {
    expect(coerceText(path, text)).toEqual(value);
  });
});
