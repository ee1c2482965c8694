// Helpers of the admin API suites: the CLI on the harness's local database or against it over HTTP,
// and small API calls.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { type CliResult, runCli } from '../helpers/cli.js';
import type { ApiJson, Harness } from '../helpers/gateway.js';

/** The CLI on the harness's own home (the local database, next to the running server). */
export function local(h: Harness, argv: string[]): Promise<CliResult> {
  return runCli(argv, { TOLLGATE_HOME: h.config.home, TOLLGATE_UPSTREAM_URL: h.fake.url });
}

/** The CLI against the harness over HTTP, with a home that does not exist (it must not be needed). */
export async function remote(h: Harness, argv: string[], token = h.adminToken): Promise<CliResult> {
  const nowhere = join(h.config.home, '..', 'no-such-home');
  const result = await runCli(['--server', h.url, ...argv], {
    TOLLGATE_HOME: nowhere,
    TOLLGATE_ADMIN_TOKEN: token,
  });
  expect(existsSync(nowhere)).toBe(false);
  return result;
}

export async function issue(h: Harness, user: string, name?: string): Promise<ApiJson> {
  const r = await h.api('POST', '/admin/v1/admin-tokens', { body: { user, ...(name ? { name } : {}) } });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return r.json;
}

export async function whoami(h: Harness, token: string): Promise<{ status: number; json: ApiJson }> {
  return h.api('GET', '/admin/v1/whoami', { token });
}
