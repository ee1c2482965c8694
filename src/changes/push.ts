// Push of change-feed wake-ups over Redis pub/sub, so every instance applies a change within
// milliseconds instead of at its next poll. A message carries nothing but "the feed moved": each
// server then reads the feed (the truth), so a lost, duplicated or forged message costs at most one
// poll interval or one extra query, never a wrong cache. Pub/sub is at-most-once: while a subscriber
// is disconnected it misses messages, which is why the poller keeps running underneath.
import { connectRedis, REDIS_CONNECT_TIMEOUT_MS, type Redis } from '../redis/connect.js';

/** One channel per installation: several installations may share a Redis server (pub/sub ignores db numbers). */
export function changeChannel(orgId: string): string {
  return `tollgate:changes:${orgId}`;
}

export interface ChangePublisher {
  /** Announces that changes committed. Never throws and never waits: the change is already durable. */
  publish(): void;
  /** Waits for an announcement in flight (bounded by the Redis timeouts), then closes the connection. */
  close(): Promise<void>;
}

/**
 * A publisher that connects on first use (a CLI command that changes nothing never touches Redis).
 * Announcements are coalesced: while one is in flight, any number of further calls send one more
 * after it, which still follows every commit that preceded them.
 */
export function createChangePublisher(url: string, channel: string): ChangePublisher {
  let client: Promise<Redis> | null = null;
  let inFlight: Promise<void> | null = null;
  let again = false;
  let closed = false;

  async function send(): Promise<void> {
    do {
      again = false;
      client ??= connectRedis(url, { name: 'tollgate-publish' });
      try {
        await (await client).publish(channel, '1');
      } catch {
        // Redis unreachable: the instances' pollers read the feed within one interval anyway. A
        // failed connection is retried on the next announcement (a live one reconnects by itself).
        const failed = client;
        client = null;
        failed.then(
          (c) => c.disconnect(),
          () => {},
        );
        return;
      }
      // Also after close(): an announcement asked for before it still follows its commit.
    } while (again);
  }

  return {
    publish(): void {
      if (closed) return;
      if (inFlight) {
        again = true;
        return;
      }
      inFlight = send().finally(() => {
        inFlight = null;
      });
    },
    async close(): Promise<void> {
      closed = true;
      await inFlight;
      const open = client;
      client = null;
      if (open)
        await open.then(
          (c) => c.quit().catch(() => c.disconnect()),
          () => {},
        );
    },
  };
}

export type PushState = 'connecting' | 'subscribed' | 'down' | 'closed';

export interface ChangeSubscription {
  state(): PushState;
  close(): Promise<void>;
}

export interface SubscribeOptions {
  /** Called on every state change (the gateway logs the transitions). */
  readonly onState?: (state: PushState) => void;
  /** First retry delay after a failed initial connection; doubled up to `maxRetryMs`. */
  readonly retryMs?: number;
  readonly maxRetryMs?: number;
}

/** How long a SUBSCRIBE, and a connection with its first PING, may take. */
const SUBSCRIBE_TIMEOUT_MS = 2_000;
const CONNECT_TIMEOUT_MS = REDIS_CONNECT_TIMEOUT_MS + SUBSCRIBE_TIMEOUT_MS;

/**
 * Subscribes to `channel` and calls `wake` on each message, and once more each time the subscription
 * is (re)established (messages published while it was down are lost). Never throws: a Redis that is
 * down at start is retried with a capped backoff, one that drops later is reconnected by ioredis,
 * which subscribes again by itself.
 */
export function subscribeChanges(
  url: string,
  channel: string,
  wake: () => void,
  options: SubscribeOptions = {},
): ChangeSubscription {
  let state: PushState = 'connecting';
  let client: Redis | null = null;
  let retry: NodeJS.Timeout | null = null;
  let delay = options.retryMs ?? 250;
  const maxDelay = options.maxRetryMs ?? 5_000;
  // A function, not a comparison: close() may change the state while attempt() awaits.
  const isClosed = () => state === 'closed';
  const setState = (next: PushState) => {
    if (state === next || state === 'closed') return;
    state = next;
    options.onState?.(next);
  };

  async function attempt(): Promise<void> {
    let redis: Redis;
    // A subscriber connection has no command timeout of its own: its first PING is bounded here.
    const connecting = connectRedis(url, { name: 'tollgate-subscribe', subscriber: true });
    try {
      redis = await withTimeout(connecting, CONNECT_TIMEOUT_MS);
    } catch {
      connecting.then(
        (late) => late.disconnect(),
        () => {},
      );
      return scheduleRetry();
    }
    if (isClosed()) {
      redis.disconnect();
      return;
    }
    redis.on('message', (from: string) => {
      if (from === channel) wake();
    });
    try {
      await withTimeout(redis.subscribe(channel), SUBSCRIBE_TIMEOUT_MS);
    } catch {
      redis.disconnect();
      return scheduleRetry();
    }
    if (isClosed()) {
      redis.disconnect();
      return;
    }
    client = redis;
    redis.on('close', () => setState('down'));
    // ioredis subscribes again on its own before it reports 'ready' to us; anything published in
    // between is read by this wake-up's poll.
    redis.on('ready', () => {
      setState('subscribed');
      wake();
    });
    setState('subscribed');
    wake();
  }

  function scheduleRetry(): void {
    if (isClosed()) return;
    setState('down');
    retry = setTimeout(() => {
      retry = null;
      void attempt();
    }, delay);
    retry.unref();
    delay = Math.min(delay * 2, maxDelay);
  }

  void attempt();
  return {
    state: () => state,
    async close(): Promise<void> {
      setState('closed');
      if (retry) clearTimeout(retry);
      const open = client;
      client = null;
      if (open) await open.quit().catch(() => open.disconnect());
    },
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
