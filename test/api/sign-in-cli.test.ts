// `tollgate user login-link|sessions|logout|disable|enable` and `user update --key-ceiling`, on the
// local database next to a running server and against it with --server (no home): the same commands,
// the same answers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signIn } from '../helpers/browser-session.js';
import type { CliResult } from '../helpers/cli.js';
import { type ApiJson, type Harness, startHarness } from '../helpers/gateway.js';
import { local, remote } from './cli-modes.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  await h.services.profiles.add(h.admin, { name: 'bounded', policy: { tools: ['Read'] } });
});
afterAll(() => h.close());

const modes: Array<[string, (h: Harness, argv: string[]) => Promise<CliResult>]> = [
  ['locally', local],
  ['with --server', remote],
];

for (const [mode, run] of modes) {
  describe(`user sign-in commands, ${mode}`, () => {
    const name = mode === 'locally' ? 'lou' : 'rae';
    const ok = async (argv: string[]): Promise<string> => {
      const result = await run(h, argv);
      expect(result.code, `${argv.join(' ')}: ${result.stderr}`).toBe(0);
      return result.stdout;
    };
    const json = async (argv: string[]): Promise<ApiJson> => JSON.parse(await ok([...argv, '--json']));

    it('issues a login link that signs the person in; lists and ends their sessions', async () => {
      await h.services.users.add(h.admin, { name });
      const link = await json(['user', 'login-link', name]);
      expect(Object.keys(link).sort()).toEqual(['expires_at', 'url', 'user']);
      expect(link.user).toBe(name);
      const session = await signIn(h.url, new URL(link.url).pathname, { password: 'correct horse battery' });
      // Text form: the URL and its expiry.
      const text = await ok(['user', 'login-link', name]);
      expect(text).toMatch(/\/invite\/tgi_\w+/);
      expect(text).toMatch(/until \d{4}-\d{2}-\d{2}T/);

      const sessions = await json(['user', 'sessions', name]);
      expect(sessions).toHaveLength(1);
      expect(sessions[0]).toMatchObject({ method: 'invite' });
      expect(await ok(['user', 'sessions', name])).toContain(sessions[0].id);
      expect(await ok(['user', 'logout', name])).toContain(`Ended 1 session(s) of ${name}.`);
      expect((await session.call('GET', '/api/v1/me')).status).toBe(401);
      expect(await ok(['user', 'sessions', name])).toContain('(none)');
    });

    it('disables and enables a person, and sets and clears their key ceiling', async () => {
      await h.key({ user: name });
      expect((await json(['user', 'show', name])).active_keys).toBe(1);
      const disabled = await json(['user', 'disable', name, '--reason', 'on leave']);
      expect(disabled).toMatchObject({ name, active_keys: 0, password_set: true });
      expect(disabled.disabled_at).toMatch(/^\d{4}-/);
      expect((await h.api('GET', `/admin/v1/keys?user=${name}&status=active`)).json.items).toEqual([]);
      expect(await ok(['user', 'enable', name])).toContain(`Enabled ${name}.`);
      expect((await json(['user', 'show', name])).disabled_at).toBeNull();

      const set = await ok(['user', 'update', name, '--key-ceiling', 'bounded']);
      expect(set).toMatch(/key ceiling: +bounded/);
      expect((await json(['user', 'list'])).find((u: ApiJson) => u.name === name)).toMatchObject({
        key_ceiling: 'bounded',
        sso: false,
      });
      const unknown = await run(h, ['user', 'update', name, '--key-ceiling', 'nope']);
      expect(unknown.code).not.toBe(0);
      expect(unknown.stderr).toContain('nope');
      expect((await json(['user', 'update', name, '--key-ceiling', 'none'])).key_ceiling).toBeNull();
    });

    it('refuses a login link for a service user, beside one for a person', async () => {
      const service = `${name}-bot`;
      await h.services.users.add(h.admin, { name: service, role: 'service' });
      const refused = await run(h, ['user', 'login-link', service]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/service user/);
      expect((await json(['user', 'login-link', name])).user).toBe(name);
    });
  });
}
