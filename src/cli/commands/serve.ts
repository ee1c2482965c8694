// `tollgate serve`: run the server; on first start the installation is created and the admin token printed.

import { Command } from 'commander';
import { createApiDeps } from '../../api/api-deps.js';
import { type Config, loadConfig } from '../../config/load.js';
import { openConnections } from '../../db/connect.js';
import { createGateway } from '../../gateway/gateway.js';
import { buildServer } from '../../http/server.js';
import { createLifecycle } from '../../http/shutdown.js';
import {
  type Installation,
  initInstallation,
  isInitialised,
  openInstallation,
} from '../../install/installation.js';
import { acquireServeLease, HEARTBEAT_MS, systemLeaseEnv } from '../../install/serve-lease.js';
import { systemClock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import { parsePositiveInt } from '../../lib/validate.js';
import { createLogger, type Logger } from '../../observability/logger.js';
import { ensureDailyRollups } from '../../usage/daily-rollups.js';
import { startRetentionJob } from '../../usage/retention-job.js';
import { VERSION } from '../../version.js';
import type { Io } from '../io.js';
import { globalsOf } from '../runtime.js';

/** PostgreSQL connections opened at start: as many as the overview's reads at once. */
const STARTUP_CONNECTIONS = 6;

export function serveCommand(io: Io): Command {
  return new Command('serve')
    .description('serve the gateway, admin API and health endpoints')
    .option('--host <host>', 'listen address (default 127.0.0.1)')
    .option('--port <port>', 'listen port (default 8420; 0 picks a free one)')
    .action(async (opts: { host?: string; port?: string }, command: Command) => {
      const globals = globalsOf(command);
      const port =
        opts.port === undefined
          ? undefined
          : opts.port === '0'
            ? 0
            : parsePositiveInt('--port', opts.port, 65535);
      const config = await loadConfig({
        env: io.env,
        cwd: io.cwd,
        overrides: {
          ...(globals.home ? { home: globals.home } : {}),
          ...(opts.host ? { host: opts.host } : {}),
          ...(port === undefined ? {} : { port }),
        },
      });
      const installation = await openOrCreate(io, config);
      // Several servers per database only on PostgreSQL with Redis (budgets and rate limits shared);
      // otherwise one: refuse (exit non-zero, saying who serves it and what to set) before anything starts.
      let lostReason: string | null = null;
      let onLost: () => void = () => {};
      const lease = await acquireServeLease(
        installation.db,
        systemLeaseEnv(systemClock),
        (reason) => {
          lostReason = reason;
          onLost();
        },
        HEARTBEAT_MS,
        config.redis.url !== null,
        installation.startedWithVersion,
      ).catch(async (error: unknown) => {
        await installation.close();
        throw error;
      });
      const logger = createLogger(config.logging.level);
      // The daily usage table in the reporting timezone, before the gateway's ledger adds to it.
      await ensureDailyRollups(installation.db, config.usage.timezone).catch(async (error: unknown) => {
        await lease.release();
        await installation.close();
        throw error;
      });
      await openConnections(installation.db, STARTUP_CONNECTIONS);
      const gateway = createGateway({ installation, clock: systemClock }, config, { logger });
      const lifecycle = createLifecycle();
      let app: Awaited<ReturnType<typeof buildServer>> | null = null;
      let address: string;
      try {
        await gateway.start();
        app = await buildServer({
          gateway,
          enroll: { installation, config, clock: systemClock },
          api: createApiDeps(installation, config, systemClock, gateway, logger),
          installation,
          logger,
          bodyLimit: config.server.body_limit_bytes,
          trustProxy: config.server.trust_proxy,
          publicUrl: config.server.public_url,
          corsOrigins: config.server.cors_origins,
          version: VERSION,
          lifecycle,
        });
        address = await app.listen({ host: config.server.host, port: config.server.port });
      } catch (error) {
        // A failed start (e.g. the port is taken) frees the lease at once.
        await app?.close();
        await gateway.close();
        await lease.release();
        await installation.close();
        throw error;
      }
      // The signal handlers go in before "listening" is announced: a supervisor that sends SIGTERM as soon
      // as it reads that line (while this process may not have run another statement yet) must get a
      // clean shutdown, not the default kill. The first SIGTERM/SIGINT drains (see http/shutdown.ts); a
      // second one stops at once.
      let stopping = false;
      const stopped = new Promise<void>((resolve) => {
        const stop = () => {
          stopping = true;
          resolve();
        };
        onLost = stop;
        process.on('SIGTERM', (signal) => (stopping ? exitNow(logger, signal) : stop()));
        process.on('SIGINT', (signal) => (stopping ? exitNow(logger, signal) : stop()));
        if (lostReason !== null) stop();
      });
      io.stdout.write(
        `Tollgate ${VERSION} listening on ${address} (public URL ${publicUrl(config, address)})\n`,
      );
      // usage.retention_days: raw usage rows pruned in the background (the rollups reports read are kept).
      const days = config.usage.retention_days;
      const retention =
        days === null
          ? null
          : startRetentionJob({ db: installation.db, retentionDays: days, logger, now: systemClock });
      await stopped;
      const server = app;
      const drained = lifecycle.drain({
        graceMs: config.server.shutdown_grace_s * 1000,
        logger,
        close: () => server.close(),
        cut: () => gateway.cutUpstream(),
      });
      io.stdout.write(lostReason === null ? 'Shutting down…\n' : `Lease lost (${lostReason}): stopping.\n`);
      await drained;
      await retention?.close();
      // The ledger's last commits; the rate limiter's and the shared budget book's settlements sent.
      await gateway.close();
      logger.info('shutdown: usage ledger flushed; budget reservations and rate-limit slots released');
      await lease.release();
      await installation.close();
      logger.info('shutdown: done');
      logger.flush();
      // Stopped because another server took over: exit non-zero, the message says why.
      if (lostReason !== null) throw new AppError('conflict', `stopped serving: ${lostReason as string}`);
    });
}

/** A second SIGTERM/SIGINT during the drain: exit at once, 128 + the signal's number (130, 143). */
function exitNow(logger: Logger, signal: NodeJS.Signals): void {
  const code = signal === 'SIGINT' ? 130 : 143;
  logger.warn({ signal }, 'shutdown: second signal; exiting at once (requests in flight are cut unrecorded)');
  const exit = () => process.exit(code);
  logger.flush(exit);
  setTimeout(exit, 200);
}

async function openOrCreate(io: Io, config: Config): Promise<Installation> {
  if (await isInitialised(config)) return openInstallation(config);
  const { installation, adminToken } = await initInstallation(config, systemClock, 'system:first-start');
  io.stdout.write(
    [
      `First start: created a new installation in ${config.home}.`,
      'Admin token (shown only this once; store it in a password manager):',
      '',
      `  ${adminToken}`,
      '',
      `Gateway: ${config.server.public_url} (point ANTHROPIC_BASE_URL here; the web dashboard is not built yet)`,
      '',
    ].join('\n'),
  );
  return installation;
}

function publicUrl(config: Config, address: string): string {
  return config.server.port === 0 ? address : config.server.public_url;
}
