// A Lua script run by its SHA1 (EVALSHA), loaded again when the server answers NOSCRIPT (a Redis
// restarted or flushed forgets its scripts). Scripts use plain commands only, so Redis 7 and Valkey
// both run them.
import { createHash } from 'node:crypto';
import { answeredWithin, type Redis } from './connect.js';

export interface Script {
  readonly source: string;
  /** Runs the script; fails when Redis has not answered within REDIS_COMMAND_TIMEOUT_MS (answeredWithin). */
  run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown>;
}

const corked = new WeakSet<Redis>();

/**
 * Holds this connection's writes until the event loop's next check phase, so the scripts of every
 * request handled in one turn leave in one write (one system call) instead of one each.
 */
function batchWrites(redis: Redis): void {
  if (corked.has(redis)) return;
  const stream = redis.stream;
  if (!stream || typeof stream.cork !== 'function') return;
  corked.add(redis);
  stream.cork();
  setImmediate(() => {
    corked.delete(redis);
    stream.uncork();
  });
}

export function script(source: string): Script {
  const sha = createHash('sha1').update(source).digest('hex');
  return {
    source,
    async run(redis, keys, args) {
      batchWrites(redis);
      try {
        return await answeredWithin(redis.evalsha(sha, keys.length, ...keys, ...args));
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
        await answeredWithin(redis.script('LOAD', source));
        return answeredWithin(redis.evalsha(sha, keys.length, ...keys, ...args));
      }
    },
  };
}
