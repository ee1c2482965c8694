// The pure parts of Claude Code onboarding: settings merge, diff, helper command, enrollment codes, limiter.
import { describe, expect, it } from 'vitest';
import { createAttemptLimiter } from '../../src/claude-code/attempt-limiter.js';
import { unifiedDiff } from '../../src/claude-code/diff.js';
import {
  generateEnrollmentCode,
  hashEnrollmentCode,
  normalizeEnrollmentCode,
} from '../../src/claude-code/enrollment-code.js';
import { keyHelperCommand, shellQuote } from '../../src/claude-code/helper-command.js';
import {
  type ManagedSettings,
  mergeSettings,
  parseSettings,
  renderSettings,
} from '../../src/claude-code/settings.js';

const desired: ManagedSettings = {
  baseUrl: 'https://tollgate.example.com',
  apiKeyHelper: "'/usr/bin/node' '/opt/tollgate/bin/tollgate.js' claude-code key-helper --profile alice",
  model: 'claude-sonnet-4-6',
  deny: ['Read(./.env)', 'Read(./.env.*)', 'Read(./**/*.sql)'],
};

describe('mergeSettings', () => {
  it('writes the managed keys into an empty file', () => {
    expect(mergeSettings({}, desired)).toEqual({
      settings: {
        env: { ANTHROPIC_BASE_URL: 'https://tollgate.example.com' },
        apiKeyHelper: desired.apiKeyHelper,
        model: 'claude-sonnet-4-6',
        permissions: { deny: ['Read(./.env)', 'Read(./.env.*)', 'Read(./**/*.sql)'] },
      },
      warnings: [],
    });
  });

  it('keeps unknown keys, other env variables, allow/ask lists and existing deny rules, in place', () => {
    const existing = parseSettings(
      JSON.stringify({
        $schema: 'https://json.schemastore.org/claude-code-settings.json',
        env: { DISABLE_TELEMETRY: '1', ANTHROPIC_BASE_URL: 'http://old:8420' },
        permissions: {
          allow: ['Bash(npm test)'],
          ask: ['Bash(git push *)'],
          deny: ['Read(./secrets/**)', 'Read(./.env)'],
          defaultMode: 'acceptEdits',
        },
        hooks: { PostToolUse: [] },
        model: 'claude-opus-4-6',
      }),
      'settings.json',
    );
    const { settings } = mergeSettings(existing, desired);
    expect(settings).toEqual({
      $schema: 'https://json.schemastore.org/claude-code-settings.json',
      env: { DISABLE_TELEMETRY: '1', ANTHROPIC_BASE_URL: 'https://tollgate.example.com' },
      permissions: {
        allow: ['Bash(npm test)'],
        ask: ['Bash(git push *)'],
        deny: ['Read(./secrets/**)', 'Read(./.env)', 'Read(./.env.*)', 'Read(./**/*.sql)'],
        defaultMode: 'acceptEdits',
      },
      hooks: { PostToolUse: [] },
      model: 'claude-sonnet-4-6',
      apiKeyHelper: desired.apiKeyHelper,
    });
    // Key order of the file is kept: existing keys where they were, new ones appended.
    expect(Object.keys(settings)).toEqual([
      '$schema',
      'env',
      'permissions',
      'hooks',
      'model',
      'apiKeyHelper',
    ]);
  });

  it('is idempotent: merging its own output changes nothing, byte for byte', () => {
    const once = renderSettings(mergeSettings({ permissions: { deny: ['Read(./.env)'] } }, desired).settings);
    const twice = renderSettings(mergeSettings(parseSettings(once, 'f'), desired).settings);
    expect(twice).toBe(once);
  });

  it('unions deny rules without duplicates, even when the configured list repeats itself', () => {
    const { settings } = mergeSettings(
      { permissions: { deny: ['Read(./.env)', 'Read(./.env)', 'Bash(rm *)'] } },
      { ...desired, deny: ['Bash(rm *)', 'Read(./x)', 'Read(./x)'] },
    );
    expect((settings.permissions as { deny: string[] }).deny).toEqual([
      'Read(./.env)',
      'Bash(rm *)',
      'Read(./x)',
    ]);
  });

  it('warns about env variables Claude Code would prefer to the key helper, and keeps them', () => {
    const { settings, warnings } = mergeSettings(
      { env: { ANTHROPIC_API_KEY: 'x', ANTHROPIC_AUTH_TOKEN: 'y' } },
      desired,
    );
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain('ANTHROPIC_AUTH_TOKEN');
    expect(settings.env).toMatchObject({ ANTHROPIC_API_KEY: 'x', ANTHROPIC_AUTH_TOKEN: 'y' });
  });

  it('treats a "__proto__" key as data', () => {
    const existing = parseSettings('{"__proto__": {"polluted": true}, "env": {}}', 'f');
    const { settings } = mergeSettings(existing, desired);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.hasOwn(settings, '__proto__')).toBe(true);
  });

  it('refuses files it cannot merge safely, naming the problem', () => {
    expect(() => parseSettings('{"env": ', 'p/.claude/settings.json')).toThrow(
      /p\/.claude\/settings.json is not valid JSON/,
    );
    expect(() => parseSettings('[1]', 'f')).toThrow(/must hold a JSON object/);
    expect(() => mergeSettings({ env: 'x' }, desired)).toThrow(
      /env in the settings file must be a JSON object/,
    );
    expect(() => mergeSettings({ permissions: { deny: 'Read(./x)' } }, desired)).toThrow(/permissions.deny/);
    expect(parseSettings('  \n', 'f')).toEqual({});
  });
});

describe('unifiedDiff', () => {
  it('is empty for equal texts and shows hunks with context otherwise', () => {
    expect(unifiedDiff('a\n', 'a\n', { from: 'x', to: 'x' })).toBe('');
    const before = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'].join('\n');
    const after = ['1', '2', '3', '4', 'five', '6', '7', '8', '9', '10', '11'].join('\n');
    expect(unifiedDiff(`${before}\n`, `${after}\n`, { from: 'a', to: 'b' })).toBe(
      [
        '--- a',
        '+++ b',
        '@@ -2,9 +2,10 @@',
        ' 2',
        ' 3',
        ' 4',
        '-5',
        '+five',
        ' 6',
        ' 7',
        ' 8',
        ' 9',
        ' 10',
        '+11',
        '',
      ].join('\n'),
    );
  });

  it('splits distant changes into separate hunks and handles a new file', () => {
    const lines = Array.from({ length: 20 }, (_, i) => `l${i + 1}`);
    const changed = lines.map((l, i) => (i === 0 || i === 19 ? `${l}!` : l));
    const diff = unifiedDiff(`${lines.join('\n')}\n`, `${changed.join('\n')}\n`, { from: 'a', to: 'b' });
    expect(diff.match(/^@@/gm)).toHaveLength(2);
    expect(diff).toContain('@@ -1,4 +1,4 @@');
    expect(diff).toContain('@@ -17,4 +17,4 @@');
    expect(unifiedDiff('', 'x\ny\n', { from: '/dev/null', to: 'f' })).toBe(
      '--- /dev/null\n+++ f\n@@ -0,0 +1,2 @@\n+x\n+y\n',
    );
  });
});

describe('keyHelperCommand', () => {
  it('quotes both paths so the command works from any shell and directory', () => {
    expect(
      keyHelperCommand({
        nodePath: '/usr/bin/node',
        cliPath: "/home/o'brien/tg/bin/tollgate.js",
        profile: 'alice',
      }),
    ).toBe(`'/usr/bin/node' '/home/o'\\''brien/tg/bin/tollgate.js' claude-code key-helper --profile alice`);
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote('alice.smith@example.com')).toBe('alice.smith@example.com');
  });
});

describe('enrollment codes', () => {
  it('have 80 random bits in a shape the argv guard accepts', () => {
    const codes = new Set(Array.from({ length: 200 }, generateEnrollmentCode));
    expect(codes.size).toBe(200);
    for (const code of codes) {
      expect(code).toMatch(/^ENR(-[0-9A-HJKMNP-TV-Z]{4}){4}$/);
      expect(code).not.toMatch(/tg_|sk-ant/);
    }
  });

  it('normalise typing variations to one canonical form and refuse anything else', () => {
    const code = 'ENR-7K2M-QX9P-4TRB-HV3D';
    expect(normalizeEnrollmentCode('enr 7k2m qx9p 4trb hv3d')).toBe(code);
    expect(normalizeEnrollmentCode('7K2MQX9P4TRBHV3D')).toBe(code);
    expect(normalizeEnrollmentCode('ENR-7K2M-QX9P-4TRB-HV3O')).toBe('ENR-7K2M-QX9P-4TRB-HV30');
    expect(normalizeEnrollmentCode('ENR-7K2M-QX9P-4TRB')).toBeNull();
    expect(normalizeEnrollmentCode('ENR-7K2M-QX9P-4TRB-HV3U')).toBeNull();
    expect(normalizeEnrollmentCode('x'.repeat(10_000))).toBeNull();
  });

  it('are stored as an HMAC under the pepper', () => {
    const pepper = Buffer.alloc(32, 7);
    const hash = hashEnrollmentCode(pepper, 'ENR-7K2M-QX9P-4TRB-HV3D');
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hashEnrollmentCode(Buffer.alloc(32, 8), 'ENR-7K2M-QX9P-4TRB-HV3D')).not.toBe(hash);
  });
});

describe('attempt limiter', () => {
  it('allows `limit` attempts per window and client, then says when to retry', () => {
    const limiter = createAttemptLimiter({ limit: 3, windowMs: 60_000, maxClients: 100 });
    for (let i = 0; i < 3; i++) expect(limiter.hit('a', 1_000 + i)).toEqual({ allowed: true });
    expect(limiter.hit('a', 11_000)).toEqual({ allowed: false, retryAfterMs: 50_000, over: 1 });
    expect(limiter.hit('b', 11_000)).toEqual({ allowed: true });
    expect(limiter.hit('a', 61_000)).toEqual({ allowed: true });
  });

  it('stays bounded, forgetting the oldest clients first', () => {
    const limiter = createAttemptLimiter({ limit: 1, windowMs: 60_000, maxClients: 50 });
    for (let i = 0; i < 1_000; i++) limiter.hit(`10.0.${i >> 8}.${i & 255}`, 1_000);
    expect(limiter.size()).toBeLessThanOrEqual(50);
    expect(limiter.hit('10.0.3.231', 1_000).allowed).toBe(false);
  });
});
