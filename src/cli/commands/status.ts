// `tollgate status`: checks every credential with a free upstream call and lists what is due for rotation.
import { Command } from 'commander';
import { type AlertLog, alertLog } from '../../alerts/alert.repo.js';
import type { RetirementView } from '../../anthropic-admin/key-retirement.service.js';
import { systemClock } from '../../lib/clock.js';
import { AppError, type ErrorCode } from '../../lib/errors.js';
import { dispatcherOption } from '../../outbound/outbound.js';
import {
  type CheckResult,
  type CredentialStatus,
  credentialStatuses,
  type KeyDue,
  keyAges,
} from '../../vault/status.service.js';
import type { Io } from '../io.js';
import { printJson, printLines, printTable } from '../output.js';
import { withServices } from '../runtime.js';

export function statusCommand(io: Io): Command {
  return new Command('status')
    .description(
      'check every credential with a free call to Anthropic (ACTIVE | INVALID KEY | RATE LIMITED | ERROR (code)) ' +
        'and list credentials and gateway keys due for rotation; read-only, never prints a key. ' +
        'Exits 0 when every checked credential is ACTIVE, 1 otherwise (so scripts can alert)',
    )
    .action(async (_opts: unknown, command: Command) => {
      await withServices(io, command, async ({ services, config, json, installation }) => {
        const now = systemClock();
        const maxAgeDays = config.security.key_max_age_days;
        const credentials = await credentialStatuses(
          {
            credentials: services.credentials,
            upstream: {
              baseUrl: config.upstream.anthropic_base_url,
              timeoutMs: config.upstream.validate_timeout_ms,
              ...dispatcherOption(config.upstream),
            },
            maxAgeDays,
          },
          now,
        );
        const keysDue = keyAges(await services.keys.list(), now, maxAgeDays);
        const alerts = await alertLog(installation.db.kysely, config.alerts.webhook_url !== null);
        const retirements = openRetirements(await services.keyRetirements.list());
        if (json)
          printJson(io, {
            credentials,
            keys_due: keysDue,
            alerts,
            key_retirements: retirements.map(retirementJson),
          });
        else {
          printReport(io, credentials, keysDue, maxAgeDays);
          printRetirements(io, retirements, now);
          printAlerts(io, alerts);
        }
        const failing = credentials.filter((c) => c.check !== 'ACTIVE' && c.check !== 'SKIPPED');
        if (failing.length > 0) {
          const first = failing[0] as CredentialStatus;
          throw new AppError(
            EXIT_CODE_OF[first.check],
            `${failing.length} of ${credentials.filter((c) => c.check !== 'SKIPPED').length} checked credential(s) not ACTIVE: ${failing
              .map((c) => `${c.name} (${statusWord(c)})`)
              .join(', ')}`,
          );
        }
      });
    });
}

// Every non-ACTIVE result exits 1; the code only picks the wording class of the final error line.
const EXIT_CODE_OF: Readonly<Record<CheckResult, ErrorCode>> = {
  ACTIVE: 'internal',
  SKIPPED: 'internal',
  'INVALID KEY': 'credential_rejected',
  'RATE LIMITED': 'upstream_rate_limited',
  ERROR: 'upstream_error',
};

/** The status column: the check word, with the status or network code of an ERROR in parentheses. */
export function statusWord(c: Pick<CredentialStatus, 'check' | 'code'>): string {
  return c.check === 'ERROR' && c.code !== null ? `ERROR (${c.code})` : c.check;
}

function printReport(
  io: Io,
  credentials: readonly CredentialStatus[],
  keysDue: readonly KeyDue[],
  maxAgeDays: number,
): void {
  printTable(
    io,
    ['credential', 'provider', 'owner', 'env', 'status', 'detail', 'age'],
    credentials.map((c) => [
      c.name,
      c.provider,
      c.owner,
      c.environment,
      statusWord(c),
      c.stored_status === 'active' ? c.detail : `${c.detail} (stored as ${c.stored_status})`,
      `${c.age_days} d${c.rotate_due ? ' (rotate)' : ''}`,
    ]),
  );
  const due = [
    ...credentials
      .filter((c) => c.rotate_due)
      .map((c) => `  credential ${c.name} (${days(c.age_days)} old): ${c.rotate_command}`),
    ...keysDue.map(
      (k) =>
        `  key ${k.id} of ${k.user}${k.name ? ` (${k.name})` : ''}, ${days(k.age_days)} old: ${k.rotate_command}`,
    ),
  ];
  printLines(io, [
    '',
    ...(due.length > 0
      ? [`Due for rotation (older than ${days(maxAgeDays)}):`, ...due]
      : [`Nothing is due for rotation (maximum age ${days(maxAgeDays)}).`]),
    '',
    'This report is read-only: stored credential statuses were not changed. ' +
      'Use `tollgate credential rotate NAME` or `tollgate credential disable NAME` to act on it.',
  ]);
}

/** Old Anthropic keys still to be disabled after a `credential rotate --retire`, and those no key matched. */
function openRetirements(all: readonly RetirementView[]): RetirementView[] {
  return all.filter((r) => r.state !== 'done');
}

function retirementJson(r: RetirementView) {
  return {
    credential: r.credential,
    old_hint: r.oldHint,
    state: r.state,
    due_at: new Date(r.dueAt).toISOString(),
    attempts: r.attempts,
    next_attempt_at: r.nextAttemptAt === null ? null : new Date(r.nextAttemptAt).toISOString(),
    last_error: r.lastError,
  };
}

function printRetirements(io: Io, open: readonly RetirementView[], now: number): void {
  if (open.length === 0) return;
  const line = (r: RetirementView) => {
    const key = `  credential ${r.credential}: old key ${r.oldHint}`;
    if (r.state === 'no_match')
      return `${key}: NO MATCH at Anthropic (disable it by hand: tollgate anthropic keys list)`;
    const when = r.dueAt > now ? `due ${new Date(r.dueAt).toISOString()}` : 'due now';
    return r.attempts === 0
      ? `${key}: ${when}`
      : `${key}: ${when}, ${r.attempts} failed attempt(s)${r.lastError ? ` (${r.lastError})` : ''}, next ${new Date(r.nextAttemptAt ?? now).toISOString()}`;
  };
  printLines(io, [
    '',
    'Old Anthropic keys to disable after a rotation (credential rotate --retire):',
    ...open.map(line),
  ]);
}

/** Recent alerts and the undelivered ones (a serving process raises and sends them; this only reads). */
export function printAlerts(io: Io, log: AlertLog): void {
  const line = (a: AlertLog['recent'][number]) =>
    `  ${a.raised_at.replace(/\.\d{3}Z$/, 'Z')}  ${a.message.replace(/^Tollgate: /, '')}  [${deliveryWord(a)}]`;
  printLines(io, [
    '',
    log.recent.length === 0
      ? `No alerts yet (webhook ${log.webhook ? 'configured' : 'not configured: alerts are only recorded'}).`
      : `Recent alerts (webhook ${log.webhook ? 'configured' : 'not configured: alerts are only recorded'}):`,
    ...log.recent.map(line),
    ...(log.undelivered_count > 0
      ? [`Undelivered alerts: ${log.undelivered_count}`, ...log.undelivered.map(line)]
      : []),
  ]);
}

function deliveryWord(a: AlertLog['recent'][number]): string {
  if (a.delivery === 'off') return 'not sent: no webhook';
  if (a.delivery === 'delivered') return 'delivered';
  const why = a.last_error ? `: ${a.last_error}` : '';
  return a.delivery === 'failed'
    ? `FAILED after ${a.attempts} attempt(s)${why}`
    : `pending, ${a.attempts} attempt(s)${why}`;
}

const days = (n: number): string => `${n} day${n === 1 ? '' : 's'}`;
