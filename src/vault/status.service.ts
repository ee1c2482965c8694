// `tollgate status`: a read-only health report of every credential (a free upstream check each) and of
// the credentials and gateway keys due for rotation. Nothing here changes stored state.
import type { Environment, Provider } from '../db/schema.js';
import type { KeyView } from '../keys/key.service.js';
import { type AppError, isAppError } from '../lib/errors.js';
import type { CredentialService } from './credential.service.js';
import { probeCredential, type UpstreamTarget } from './validate-credential.js';

export const CHECK_RESULTS = ['ACTIVE', 'INVALID KEY', 'RATE LIMITED', 'ERROR', 'SKIPPED'] as const;
export type CheckResult = (typeof CHECK_RESULTS)[number];

export interface CredentialStatus {
  name: string;
  provider: Provider;
  owner: string;
  environment: Environment | null;
  hint: string;
  stored_status: string;
  check: CheckResult;
  /** The upstream status ('529') or network failure ('ECONNREFUSED', 'timeout') behind an ERROR. */
  code: string | null;
  detail: string;
  age_days: number;
  rotate_due: boolean;
  rotate_command: string | null;
}

export interface KeyDue {
  id: string;
  name: string | null;
  user: string;
  hint: string;
  age_days: number;
  rotate_command: string;
}

export interface StatusDeps {
  credentials: Pick<CredentialService, 'list' | 'reveal'>;
  upstream: UpstreamTarget;
  maxAgeDays: number;
  /** Upstream checks in flight at once (default 4). */
  concurrency?: number;
}

const DAY_MS = 86_400_000;

/** Whole days since `since`, never negative (clock skew between machines sharing a database). */
export function ageDays(since: number, now: number): number {
  return Math.max(0, Math.floor((now - since) / DAY_MS));
}

function isOverAge(since: number, now: number, maxAgeDays: number): boolean {
  return now - since > maxAgeDays * DAY_MS;
}

/** Checks every stored credential with a free upstream call (Anthropic ones only) and reports its age. */
export async function credentialStatuses(deps: StatusDeps, now: number): Promise<CredentialStatus[]> {
  const views = await deps.credentials.list();
  return mapBounded(views, deps.concurrency ?? 4, async (view) => {
    const since = view.rotatedAt ?? view.createdAt;
    const due = isOverAge(since, now, deps.maxAgeDays);
    const outcome = await checkOne(deps, view.id, view.provider);
    return {
      name: view.name,
      provider: view.provider,
      owner: view.owner,
      environment: view.environment,
      hint: view.hint,
      stored_status: view.status,
      ...outcome,
      age_days: ageDays(since, now),
      rotate_due: due,
      rotate_command: due ? `tollgate credential rotate ${view.name}` : null,
    };
  });
}

/** Active gateway keys older than the maximum age that are not already being rotated. */
export function keyAges(keys: readonly KeyView[], now: number, maxAgeDays: number): KeyDue[] {
  return keys
    .filter((k) => k.status === 'active' && k.rotatedTo === null && isOverAge(k.createdAt, now, maxAgeDays))
    .map((k) => ({
      id: k.id,
      name: k.name,
      user: k.user,
      hint: k.hint,
      age_days: ageDays(k.createdAt, now),
      rotate_command: `tollgate key rotate ${k.id} --grace 24h`,
    }));
}

type Outcome = Pick<CredentialStatus, 'check' | 'code' | 'detail'>;

async function checkOne(deps: StatusDeps, id: string, provider: Provider): Promise<Outcome> {
  if (provider !== 'anthropic' && provider !== 'anthropic-admin') {
    return { check: 'SKIPPED', code: null, detail: `no free check exists for ${provider} credentials` };
  }
  let secret: string;
  try {
    secret = await deps.credentials.reveal(id);
  } catch (error) {
    // A secret that cannot be opened is an integrity problem, reported without its cause's text.
    const code = isAppError(error) ? error.code : 'internal';
    return { check: 'ERROR', code, detail: 'the stored secret could not be decrypted' };
  }
  const result = await probeCredential(provider, secret, deps.upstream);
  return result.ok
    ? { check: 'ACTIVE', code: null, detail: 'accepted by Anthropic' }
    : describe(result.error);
}

// The details are written here rather than reusing the probe's messages, which speak of storing a key.
function describe(error: AppError): Outcome {
  switch (error.code) {
    case 'credential_rejected':
      return {
        check: 'INVALID KEY',
        code: null,
        detail: 'Anthropic rejected the key (invalid, revoked or lacking permission)',
      };
    case 'upstream_rate_limited': {
      const wait = retryAfterOf(error);
      return {
        check: 'RATE LIMITED',
        code: '429',
        detail: `Anthropic is rate limiting this key${wait === null ? '' : `; retry in ${wait} s`}`,
      };
    }
    case 'upstream_error': {
      const status = error.details.status;
      const code = typeof status === 'number' ? String(status) : null;
      const meaning =
        status === 529
          ? ' (overloaded)'
          : typeof status === 'number' && status >= 500
            ? ' (server error)'
            : '';
      return {
        check: 'ERROR',
        code,
        detail: `Anthropic answered ${code ?? 'an unexpected status'}${meaning}`,
      };
    }
    case 'upstream_unreachable': {
      const code = networkCodeOf(error);
      return {
        check: 'ERROR',
        code,
        detail:
          code === 'timeout' ? 'Anthropic did not answer in time' : `could not reach Anthropic (${code})`,
      };
    }
    default:
      return { check: 'ERROR', code: error.code, detail: 'the check failed' };
  }
}

// probeCredential words these into its message only; structured details are preferred when present.
function retryAfterOf(error: AppError): string | null {
  const given = error.details.retry_after_s;
  if (typeof given === 'number' || typeof given === 'string') return String(given);
  return /try again in (\d+) s/.exec(error.message)?.[1] ?? null;
}

function networkCodeOf(error: AppError): string {
  const given = error.details.network;
  const text =
    typeof given === 'string' ? given : (/ to check the key \(([^()]+)\)/.exec(error.message)?.[1] ?? null);
  if (text === null) return 'network';
  return text === 'timed out' ? 'timeout' : text;
}

/** Maps items with at most `limit` calls in flight, keeping the input order in the result. */
async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  return results;
}
