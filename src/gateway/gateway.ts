// The gateway's composition: caches, limiters, budget book, ledger, upstream pool and change poller,
// built once per process from the installation and the configuration.

import { hostname } from 'node:os';
import { credentialInvalidAlert } from '../alerts/alert-text.js';
import { type AlertOptions, createAlerts } from '../alerts/alerts.js';
import { type Budgets, createBudgetBook, type SpendLoader } from '../budgets/budget-book.js';
import {
  createRedisBudgetBook,
  type RedisBudgetBook,
  reservationTtlMs,
} from '../budgets/redis-budget-book.js';
import { loadSpend } from '../budgets/spend.js';
import { CHANGE_POLL_MS, createChangePoller } from '../changes/poller.js';
import { type ChangeSubscription, changeChannel, subscribeChanges } from '../changes/push.js';
import type { Config } from '../config/load.js';
import type { ServiceContext } from '../install/context.js';
import { listLiveInstances } from '../install/serve-lease.js';
import { sequentialIds } from '../lib/ids.js';
import { type OtlpPush, startOtlpPush } from '../metrics/otlp.js';
import { createPrometheus } from '../metrics/prometheus.js';
import { createMetricsStore } from '../metrics/store.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { dispatcherOption, sharedOutbound } from '../outbound/outbound.js';
import { DEFAULT_DOCUMENT_TOKEN_ALLOWANCE, DEFAULT_IMAGE_TOKEN_ALLOWANCE } from '../pricing/input-bound.js';
import { bareModelId, createPriceBook } from '../pricing/models.js';
import { createRateLimiter } from '../ratelimit/limiter.js';
import { createRedisRateLimiter } from '../ratelimit/redis-limiter.js';
import { connectRedis, type Redis } from '../redis/connect.js';
import { createServices } from '../services.js';
import { createLedger } from '../usage/ledger.js';
import { VERSION } from '../version.js';
import { createCredentialPool } from './credential-pool.js';
import { createKeyCache } from './key-cache.js';
import type { MessagesDeps } from './messages.js';
import { createSharedSteps } from './shared-steps.js';
import { createUpstream } from './upstream.js';

/** A credential an upstream 401 put in doubt is validated at most this often (per secret)… */
export const CONFIRM_INTERVAL_MS = 60_000;
/** …and each validation call gives up after this long (nothing is marked then). */
const CONFIRM_TIMEOUT_MS = 10_000;

/** A shared in-flight slot outlives the longest request by this much before it expires (see below). */
const SLOT_MARGIN_MS = 60_000;

/** Web searches reserved (and injected as max_uses) for a web search tool that sets no limit. */
export const DEFAULT_WEB_SEARCH_MAX_USES = 5;

export function createGateway(
  ctx: ServiceContext,
  config: Config,
  options: {
    logger?: Logger;
    alerts?: AlertOptions;
    /** The change feed's fallback poll (default CHANGE_POLL_MS); the push channel wakes it sooner. */
    changePollMs?: number;
  } = {},
) {
  const { db, pepper, orgId } = ctx.installation;
  const logger = options.logger ?? createLogger('silent');
  // Every request's end and usage record are observed here; GET /metrics and the OTLP push read it.
  const metrics = createMetricsStore({ maxUsers: config.metrics.max_user_labels });
  // Budget crossings, invalid credentials and ages: detected off the request path (src/alerts).
  const alerts = createAlerts(ctx, config, options.alerts);
  const keys = createKeyCache(db, pepper, { id: orgId, capMicro: config.claude.max_monthly_spend_micro });
  const credentials = createCredentialPool(ctx, {
    target: {
      baseUrl: config.upstream.anthropic_base_url,
      timeoutMs: Math.min(config.upstream.validate_timeout_ms, CONFIRM_TIMEOUT_MS),
      ...dispatcherOption(config.upstream),
    },
    intervalMs: CONFIRM_INTERVAL_MS,
    actor: { actor: 'system:gateway' },
    onMarked: (u, row) => alerts.raiseIn(u, credentialInvalidAlert(row, u.now)).then(() => undefined),
  });
  const upstream = createUpstream({
    baseUrl: config.upstream.anthropic_base_url,
    timeoutMs: config.upstream.timeout_ms,
    outbound: sharedOutbound(config.upstream)?.settings ?? null,
  });
  // Daily usage is cut in the reporting timezone; serve made the table agree (ensureDailyRollups).
  const ledger = createLedger(db, orgId, {
    timeZone: config.usage.timezone,
    onCommit: (commit) => {
      metrics.commit(commit.ms);
      if (commit.spend.length > 0) alerts.noteSpend(commit.spend);
    },
  });
  // The book loads a scope's settled spend the first time it is used (see budgets/spend.ts). With
  // redis.url set, the counters are shared by every instance (budgets/redis-budget-book.ts).
  const loader: SpendLoader = (scope, id, period, start) => loadSpend(db.kysely, scope, id, period, start);
  const retryBudgetMs = Math.min(config.upstream.timeout_ms, 30_000);
  const redisUrl = config.redis.url;
  const lastLogged = new Map<string, number>();
  // One connection for the budget book and the rate limiter: with auto-pipelining, what a request asks of
  // both in one turn (a settlement and a finish) leaves in one write — each write is a system call.
  let redisConnection: Promise<Redis> | null = null;
  const sharedRedis = (url: string) => () => {
    redisConnection ??= connectRedis(url, { name: 'tollgate-gateway', callerTimeouts: true }).catch(
      (error: unknown) => {
        redisConnection = null;
        throw error;
      },
    );
    return redisConnection;
  };
  const shared: RedisBudgetBook | null =
    redisUrl === null
      ? null
      : createRedisBudgetBook(sharedRedis(redisUrl), loader, {
          // The installation's own namespace: another installation on the same Redis and prefix shares
          // nothing (not the epoch, not the reservations' deadlines).
          prefix: `${config.redis.key_prefix}budget:${orgId}:`,
          ttlMs: reservationTtlMs(config.upstream.timeout_ms, retryBudgetMs),
          renewMs: Math.min(
            5_000,
            Math.floor(reservationTtlMs(config.upstream.timeout_ms, retryBudgetMs) / 3),
          ),
          onError: (what, err) => {
            // At most one line per cause every 10 s: a Redis outage refuses every request.
            const at = Date.now();
            if ((lastLogged.get(what) ?? 0) > at - 10_000) return;
            lastLogged.set(what, at);
            logger.warn({ err }, `${what} failed`);
          },
        });
  const budgets: Budgets = shared ?? createBudgetBook(loader);
  const allowed = config.claude.models_allowed;
  // With Redis, rate limits are shared by every instance; without it they live in this process. A slot
  // outlives the longest request: an attempt started just before the retry budget ends runs timeout_ms.
  const sharedLimiter =
    redisUrl === null
      ? null
      : createRedisRateLimiter({
          connect: sharedRedis(redisUrl),
          closeConnection: false,
          prefix: config.redis.key_prefix,
          slotTtlMs: config.upstream.timeout_ms + retryBudgetMs + SLOT_MARGIN_MS,
          onError: (err) => logger.warn({ err }, 'shared rate limits: Redis failed a step'),
        });
  const deps: MessagesDeps = {
    keys,
    credentials,
    prices: createPriceBook(config.pricing),
    limiter: sharedLimiter ?? createRateLimiter(),
    budgets,
    sharedSteps: shared && sharedLimiter ? createSharedSteps(sharedLimiter, shared) : null,
    ledger,
    clock: ctx.clock,
    maxJsonDepth: config.server.json_max_depth,
    newId: sequentialIds('req'),
    observer: metrics.observer,
    policy: {
      modelsAllowed: allowed.length > 0 ? new Set(allowed.map(bareModelId)) : null,
      orgId,
      promptCaching: config.claude.prompt_caching,
      webSearchDefaultMaxUses: DEFAULT_WEB_SEARCH_MAX_USES,
      imageTokenAllowance: DEFAULT_IMAGE_TOKEN_ALLOWANCE,
      documentTokenAllowance: DEFAULT_DOCUMENT_TOKEN_ALLOWANCE,
    },
    attempts: {
      upstream,
      policy: {
        maxRetries: config.upstream.max_retries,
        budgetMs: retryBudgetMs,
        backoffMs: 200,
      },
      onUnauthorized: credentials.suspect,
      scrubTable: credentials.scrubTable,
    },
  };
  const poller = createChangePoller(
    db,
    (kinds) => {
      if (
        kinds.has('key') ||
        kinds.has('user') ||
        kinds.has('team') ||
        kinds.has('budget') ||
        kinds.has('org')
      )
        keys.invalidate();
      // A master-key rotation announces itself as an 'org' change: learn the new key now, not at the
      // first record or audit append that needs it (a failed read is retried at that point).
      if (kinds.has('org')) ctx.installation.refreshKeys().catch(() => false);
      if (kinds.has('credential')) credentials.invalidate();
      alerts.changed(kinds);
    },
    options.changePollMs ?? CHANGE_POLL_MS,
  );
  // With Redis, every instance is woken as soon as any instance or CLI command commits a change.
  let push: ChangeSubscription | null = null;
  const pushUrl = config.redis.url;

  // Previous secrets kept for a rotation's grace period are destroyed once it ends.
  const services = createServices(ctx.installation, config, ctx.clock);
  const credentialsService = services.credentials;
  // Old Anthropic keys of `credential rotate --retire` are disabled through the Admin API when the grace
  // ends: one run at a time, off the sweep's path (it may wait on Anthropic); failures are recorded
  // on the row and retried later.
  let retiring: Promise<unknown> | null = null;
  const retireOldKeys = () => {
    retiring ??= services.keyRetirements
      .runDue({ actor: 'system:rotation' })
      .catch((err: unknown) => {
        // A key's own failure is recorded on its row; this is the run itself failing (e.g. the database).
        logger.warn({ err }, 'retiring old Anthropic keys failed; the next sweep tries again');
        return [];
      })
      .finally(() => {
        retiring = null;
      });
  };
  let sweeper: NodeJS.Timeout | null = null;
  const prometheus = createPrometheus({
    store: metrics,
    ledger: ledger.stats,
    budgets,
    orgId,
    clock: ctx.clock,
  });
  let otlp: OtlpPush | null = null;
  const sweep = () => {
    // Rate-limit and budget state of keys no longer in use is dropped (it is rebuilt on their next
    // request), so memory follows the active keys rather than every key seen since start.
    const now = ctx.clock();
    deps.limiter.forgetIdle(now);
    deps.budgets.forgetIdle(now);
    retireOldKeys();
    return credentialsService.retireDue({ actor: 'system:rotation' }).catch(() => []);
  };

  return {
    deps,
    metrics: {
      store: metrics,
      prometheus,
      /** metrics.token: the bearer GET /metrics requires, or null (open). */
      token: config.metrics.token,
      /** The OTLP push while one runs (claude.otel_endpoint set). */
      otlp: () => otlp,
    },
    alerts,
    async start(): Promise<void> {
      // Redis not answering at start: the start fails (redis_unavailable) rather than serve unlimited.
      await sharedLimiter?.start();
      if (shared) {
        // Another live instance may have requests in flight: a missing epoch is then waited out.
        const others = (await listLiveInstances(db, ctx.clock)).filter(
          (i) => i.pid !== process.pid || i.host !== hostname(),
        );
        await shared.start(others.map((i) => i.startedAt));
      }
      await poller.start();
      if (pushUrl !== null)
        push = subscribeChanges(pushUrl, changeChannel(orgId), poller.wake, {
          onState: (state) => {
            if (state === 'subscribed') logger.info('change push subscribed: changes apply at once');
            else if (state === 'down')
              logger.warn('change push down (Redis unreachable): changes apply by polling the feed');
          },
        });
      // The OpenTelemetry SDK is loaded only when an endpoint is configured.
      if (config.claude.otel_endpoint !== null) {
        otlp = await startOtlpPush(metrics, {
          endpoint: config.claude.otel_endpoint,
          intervalMs: config.claude.otel_interval_s * 1000,
          version: VERSION,
          logger,
        });
      }
      await sweep();
      sweeper = setInterval(sweep, 30_000);
      sweeper.unref();
      alerts.start();
    },
    /** Applies pending changes now (tests; the poller does it every 250 ms). */
    refresh: () => poller.pollNow(),
    /** Breaks every upstream call in flight (the end of a shutdown's grace; see upstream.cut). */
    cutUpstream: (): Promise<void> => upstream.cut(),
    /** The push channel: 'off' without Redis, else whether this instance is subscribed. */
    pushState: () => push?.state() ?? 'off',
    async close(): Promise<void> {
      if (sweeper) clearInterval(sweeper);
      await retiring;
      await push?.close();
      await poller.stop();
      await credentials.settled();
      await ledger.close();
      // The limiter first: the budget book closes the connection both use (the limiter leaves it open).
      deps.sharedSteps?.close();
      await sharedLimiter?.close();
      await shared?.close();
      // One last export with every committed record, bounded in time.
      await otlp?.close();
      await alerts.close();
      await upstream.close();
    },
  };
}

export type Gateway = ReturnType<typeof createGateway>;
