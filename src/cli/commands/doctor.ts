// `tollgate doctor`: check config, home, master key, database, audit chain, upstream reachability and,
// for several instances, Redis, the live instances and their clocks (doctor-instances.ts).
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { Command } from 'commander';
import { sql } from 'kysely';
import { request } from 'undici';
import type { Config } from '../../config/load.js';
import { type Installation, openInstallation } from '../../install/installation.js';
import { readKeyMeta } from '../../install/master-keys.js';
import { systemClock } from '../../lib/clock.js';
import { AppError, isAppError } from '../../lib/errors.js';
import { describeRoute, type Outbound, sharedOutbound } from '../../outbound/outbound.js';
import { ProxyTunnelError } from '../../outbound/tunnel.js';
import { createServices } from '../../services.js';
import type { Io } from '../io.js';
import { printJson, printLines } from '../output.js';
import { commandEnv } from '../runtime.js';
import { type Check, multiInstanceChecks } from './doctor-instances.js';

export function doctorCommand(io: Io): Command {
  return new Command('doctor')
    .description(
      'validate config, database, master key, audit log, upstream reachability, Redis, live instances and clocks',
    )
    .action(async (_opts: unknown, command: Command) => {
      const env = await commandEnv(io, command);
      const checks = await runChecks(env.config);
      if (env.json) printJson(io, checks);
      else
        printLines(
          io,
          checks.map((c) => `${c.ok ? (c.warning ? '!' : '✓') : '✗'} ${c.check.padEnd(12)} ${c.detail}`),
        );
      const failed = checks.filter((c) => !c.ok).length;
      if (failed > 0) throw new AppError('invalid_config', `${failed} check(s) failed`);
    });
}

async function runChecks(config: Config): Promise<Check[]> {
  const checks: Check[] = [
    { check: 'config', ok: true, detail: config.configFile ?? 'no tollgate.yml; defaults and environment' },
  ];
  checks.push(await homeCheck(config));
  let installation: Installation | null = null;
  try {
    installation = await openInstallation(config);
    const rotation = (await readKeyMeta(installation.db))?.rotation ?? null;
    const key = installation.master;
    checks.push(
      rotation === null
        ? {
            check: 'master key',
            ok: true,
            detail: `matches this installation (fingerprint ${key.fingerprint})`,
          }
        : {
            check: 'master key',
            ok: true,
            warning: true,
            detail:
              `matches this installation (fingerprint ${key.fingerprint}); a rotation from version ${rotation.from.version} ` +
              `to ${rotation.to.version} is not complete: run \`tollgate master-key rotate\` ` +
              (rotation.rewrapped ? 'with the new key' : 'to resume it'),
          },
    );
    checks.push(await databaseCheck(installation, config));
    const services = createServices(installation, config, systemClock);
    const audit = await services.audit.verify();
    const witnessed = audit.ok && audit.witness ? `, witness agrees (#${audit.witness.seq})` : '';
    checks.push(
      audit.ok
        ? {
            check: 'audit log',
            ok: true,
            detail: `${audit.entries} entries, chain and anchor verify${witnessed}`,
          }
        : {
            check: 'audit log',
            ok: false,
            detail: audit.firstBroken.reason.startsWith('witness-')
              ? `witness disagrees (${audit.firstBroken.reason}): ${audit.detail ?? ''}`
              : `broken at entry #${audit.firstBroken.index} (${audit.firstBroken.reason})`,
          },
    );
    if (installation.witness) checks.push(await witnessCheck(installation.witness.path));
    const creds = await services.credentials.list({ provider: 'anthropic' });
    const active = creds.filter((c) => c.status === 'active').length;
    checks.push({
      check: 'credentials',
      ok: true,
      detail:
        active > 0
          ? `${active} active Anthropic credential(s)`
          : 'no Anthropic credential yet: `tollgate credential add NAME --provider anthropic`',
    });
    checks.push(...(await multiInstanceChecks(config, installation, systemClock)));
  } catch (error) {
    const message = isAppError(error) ? error.message : 'unexpected error';
    checks.push({ check: 'installation', ok: false, detail: message });
    if (!installation) checks.push(...(await multiInstanceChecks(config, null, systemClock)));
  } finally {
    await installation?.close();
  }
  checks.push(await upstreamCheck(config));
  return checks;
}

async function homeCheck(config: Config): Promise<Check> {
  try {
    const info = await stat(config.home);
    const loose = (info.mode & 0o077) !== 0;
    return {
      check: 'home',
      ok: true,
      detail: `${config.home}${loose ? ` (mode ${(info.mode & 0o777).toString(8)}; consider chmod 700)` : ''}`,
    };
  } catch {
    return { check: 'home', ok: false, detail: `${config.home} does not exist: run \`tollgate init\`` };
  }
}

/** The witness file must stay writable: a failed write leaves new heads only in the database. */
async function witnessCheck(path: string): Promise<Check> {
  try {
    await access(path, constants.W_OK);
    return { check: 'witness', ok: true, detail: `${path} writable` };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return {
      check: 'witness',
      ok: false,
      detail: `${path} not writable (${typeof code === 'string' ? code : 'error'}): new audit heads are not witnessed`,
    };
  }
}

async function databaseCheck(installation: Installation, config: Config): Promise<Check> {
  const { db } = installation;
  if (db.dialect === 'postgres') {
    await sql`select 1`.execute(db.kysely);
    return { check: 'database', ok: true, detail: 'PostgreSQL reachable, migrations current' };
  }
  const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(db.kysely);
  const integrity = await sql<{ quick_check: string }>`pragma quick_check`.execute(db.kysely);
  const journal = mode.rows[0]?.journal_mode ?? 'unknown';
  const healthy = integrity.rows[0]?.quick_check === 'ok';
  const path = config.database.kind === 'sqlite' ? config.database.path : '';
  return {
    check: 'database',
    ok: journal === 'wal' && healthy,
    detail: `SQLite ${path}, journal ${journal}, integrity ${healthy ? 'ok' : 'FAILED'}, migrations current`,
  };
}

/** An unauthenticated GET of /v1/models; whatever HTTP status comes back (401 expected) proves Anthropic is reachable. */
async function upstreamCheck(config: Config): Promise<Check> {
  const base = config.upstream.anthropic_base_url;
  const started = systemClock();
  const url = new URL('/v1/models', `${base}/`);
  // The same connection as the gateway's: through upstream.proxy_url, trusting upstream.ca_file.
  let outbound: Outbound | null;
  try {
    outbound = sharedOutbound(config.upstream);
  } catch (error) {
    return { check: 'upstream', ok: false, detail: (error as Error).message };
  }
  const route = describeRoute(outbound?.settings ?? null, url);
  try {
    const response = await request(url, {
      method: 'GET',
      headers: { 'anthropic-version': '2023-06-01' },
      signal: AbortSignal.timeout(config.upstream.validate_timeout_ms),
      ...(outbound === null ? {} : { dispatcher: outbound.dispatcher }),
    });
    await response.body.dump();
    return {
      check: 'upstream',
      ok: true,
      detail: `${base} answered ${response.statusCode} in ${systemClock() - started} ms (${route})`,
    };
  } catch (error) {
    return {
      check: 'upstream',
      ok: false,
      detail: `${base} unreachable (${networkReason(error)}; ${route})`,
    };
  }
}

/** The error's code; a refused tunnel also says what the proxy answered (e.g. 407). */
function networkReason(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    if (current instanceof ProxyTunnelError) return `${current.code}: ${current.message}`;
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return 'network error';
}
