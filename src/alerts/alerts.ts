// The alerts of one serving process: budget crossings noted after each ledger commit, credentials marked
// invalid (raised in the marking's own transaction), keys and credentials past the age policy (checked at
// start and every `ageIntervalMs`), all recorded in the alerts table and the audit log, and sent to
// alerts.webhook_url when one is configured. Nothing here runs on a request's path.
import type { ChangeKind } from '../changes/change-feed.js';
import type { Config } from '../config/load.js';
import type { ChangeUnit, ServiceContext } from '../install/context.js';
import { sharedOutbound } from '../outbound/outbound.js';
import { VERSION } from '../version.js';
import { checkAges } from './age-watch.js';
import { raiseAll, raiseIn } from './alert.repo.js';
import type { NewAlert } from './alert-text.js';
import { createBudgetWatch } from './budget-watch.js';
import { createDelivery, type DeliveryOptions } from './delivery.js';
import { type PostWebhook, postWebhook } from './webhook-post.js';

export interface AlertOptions {
  /** Timeouts, attempts and backoff of the webhook (defaults in delivery.ts). */
  readonly delivery?: Partial<
    Pick<DeliveryOptions, 'timeoutMs' | 'maxAttempts' | 'backoffMs' | 'maxBackoffMs' | 'pollMs'>
  >;
  /** How long after a ledger commit its scopes are checked. */
  readonly budgetDelayMs?: number;
  /** How often ages are checked (default hourly). */
  readonly ageIntervalMs?: number;
  readonly post?: PostWebhook;
}

export function createAlerts(ctx: ServiceContext, config: Config, options: AlertOptions = {}) {
  const { db, orgId } = ctx.installation;
  const webhook = config.alerts.webhook_url !== null;
  const delivery = createDelivery(
    db,
    ctx.clock,
    {
      url: config.alerts.webhook_url,
      allowLinkLocal: config.alerts.webhook_allow_link_local,
      userAgent: `Tollgate/${VERSION}`,
      outbound: sharedOutbound(config.upstream)?.settings ?? null,
      ...options.delivery,
    },
    options.post ?? postWebhook,
  );
  const raise = async (alerts: readonly NewAlert[]): Promise<number> => {
    const raised = await raiseAll(ctx, alerts, webhook);
    if (raised > 0) delivery.wake();
    return raised;
  };
  const budgets = createBudgetWatch({
    db,
    orgId,
    orgCapMicro: config.claude.max_monthly_spend_micro,
    thresholds: config.alerts.thresholds,
    clock: ctx.clock,
    raise,
    ...(options.budgetDelayMs === undefined ? {} : { delayMs: options.budgetDelayMs }),
  });
  const ages = { db, maxAgeDays: config.security.key_max_age_days, raise };
  let ageTimer: NodeJS.Timeout | null = null;
  let ageRun: Promise<unknown> | null = null;
  const checkAgesNow = (): Promise<unknown> => {
    ageRun ??= checkAges(ages, ctx.clock())
      .catch(() => 0)
      .finally(() => {
        ageRun = null;
      });
    return ageRun;
  };

  return {
    /** The ledger's commit hook: the scopes a committed batch charged. */
    noteSpend: budgets.note,
    /** The change feed's kinds: limits may have moved; a credential may have been marked invalid. */
    changed(kinds: ReadonlySet<ChangeKind>): void {
      if (
        kinds.has('budget') ||
        kinds.has('org') ||
        kinds.has('key') ||
        kinds.has('user') ||
        kinds.has('team')
      )
        budgets.limitsChanged();
      if (kinds.has('credential')) delivery.wake();
    },
    /** Raises a credential-invalid (or other) alert inside the caller's change unit. */
    raiseIn: (u: ChangeUnit, alert: NewAlert) => raiseIn(u, alert, webhook),
    wake: delivery.wake,
    start(): void {
      budgets.limitsChanged();
      void checkAgesNow();
      ageTimer = setInterval(() => void checkAgesNow(), options.ageIntervalMs ?? 3_600_000);
      ageTimer.unref();
      delivery.start();
    },
    /** Checks ages now (tests; otherwise hourly). */
    checkAges: checkAgesNow,
    /** Resolves when budget checks and deliveries in progress have ended (tests). */
    async idle(): Promise<void> {
      await budgets.idle();
      if (ageRun) await ageRun;
      await delivery.idle();
    },
    async close(): Promise<void> {
      if (ageTimer) clearInterval(ageTimer);
      await budgets.close();
      if (ageRun) await ageRun;
      await delivery.close();
    },
  };
}

export type Alerts = ReturnType<typeof createAlerts>;
