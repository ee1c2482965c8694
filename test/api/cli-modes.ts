// Helpers of the admin API suites: the CLI on the harness's local database or against it over HTTP,
// and small API calls.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { type CliResult, runCli } from '../helpers/cli.js';
import { type ApiJson, type Harness, startHarness } from '../helpers/gateway.js';
import { createPgSchema, PG_URL } from '../helpers/pg.js';

/** The CLI on the harness's own home (the local database, next to the running server). */
export function local(h: Harness, argv: string[]): Promise<CliResult> {
  const db = h.config.database;
  return runCli(argv, {
    TOLLGATE_HOME: h.config.home,
    TOLLGATE_UPSTREAM_URL: h.fake.url,
    ...(db.kind === 'postgres' ? { TOLLGATE_DATABASE_URL: db.url } : {}),
  });
}

/**
 * The harness on SQLite, or on a throw-away PostgreSQL schema when TOLLGATE_TEST_DATABASE_URL is set
 * (as in CI), so the operations' SQL runs on both.
 */
export async function startApiHarness(): Promise<Harness> {
  if (!PG_URL) return startHarness();
  const schema = await createPgSchema(PG_URL);
  const h = await startHarness({ env: { TOLLGATE_DATABASE_URL: schema.url } });
  const close = h.close;
  h.close = async () => {
    await close();
    await schema.drop();
  };
  return h;
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
