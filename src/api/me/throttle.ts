// Attempt throttles of the self-service credential endpoint, so it cannot become an oracle for testing
// stolen keys: a few attempts per user and a few more per client address, per window. One set per
// server (keyed by the server's shared state object), bounded like the enrollment limiter.
import { type AttemptLimiter, createAttemptLimiter } from '../../claude-code/attempt-limiter.js';
import type { SharedState } from '../operation.js';

export const CREDENTIAL_ATTEMPTS = {
  perUser: 5,
  perIp: 20,
  windowMs: 10 * 60_000,
  maxClients: 10_000,
} as const;

interface Throttles {
  readonly byUser: AttemptLimiter;
  readonly byIp: AttemptLimiter;
}

const perServer = new WeakMap<SharedState, Throttles>();

function throttlesOf(shared: SharedState): Throttles {
  let found = perServer.get(shared);
  if (!found) {
    const common = { windowMs: CREDENTIAL_ATTEMPTS.windowMs, maxClients: CREDENTIAL_ATTEMPTS.maxClients };
    found = {
      byUser: createAttemptLimiter({ ...common, limit: CREDENTIAL_ATTEMPTS.perUser }),
      byIp: createAttemptLimiter({ ...common, limit: CREDENTIAL_ATTEMPTS.perIp }),
    };
    perServer.set(shared, found);
  }
  return found;
}

export interface Throttled {
  /** Seconds to wait. */
  readonly waitS: number;
  /** The first refusal of its window (for the user or the address): later ones are not audited each. */
  readonly first: boolean;
}

/** Counts one attempt; null when it may proceed. Both counters always count. */
export function credentialAttempt(
  shared: SharedState,
  userId: string,
  ip: string,
  now: number,
): Throttled | null {
  const t = throttlesOf(shared);
  const user = t.byUser.hit(userId, now);
  const address = t.byIp.hit(ip, now);
  const refused = [user, address].flatMap((v) => (v.allowed ? [] : [v]));
  if (refused.length === 0) return null;
  return {
    waitS: Math.max(1, Math.ceil(Math.max(...refused.map((v) => v.retryAfterMs)) / 1000)),
    first: refused.some((v) => v.over === 1),
  };
}
