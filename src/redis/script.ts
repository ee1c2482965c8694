// A Lua script run by its SHA1 (EVALSHA), loaded again when the server answers NOSCRIPT (a Redis
// restarted or flushed forgets its scripts). Scripts use plain commands only, so Redis 7 and Valkey
// both run them.
import { createHash } from 'node:crypto';
import { AppError } from '../lib/errors.js';
import { answeredWithin, type Redis } from './connect.js';

export interface Script {
  readonly source: string;
  /** Runs the script; fails when Redis has not answered within REDIS_COMMAND_TIMEOUT_MS (answeredWithin). */
  run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown>;
}

/** Connections whose writes are held, with the turn's token (see batchWrites). */
const corked = new Map<Redis, object>();

/**
 * Holds this connection's writes until the event loop's next check phase, so the scripts of every
 * request handled in one turn leave in one write (one system call) instead of one each.
 */
function batchWrites(redis: Redis): void {
  if (corked.has(redis)) return;
  const stream = redis.stream;
  if (!stream || typeof stream.cork !== 'function') return;
  const token = {};
  corked.set(redis, token);
  stream.cork();
  setImmediate(() => {
    // Sent already (sendHeldWrites), and perhaps held again since: that hold has its own turn.
    if (corked.get(redis) !== token) return;
    corked.delete(redis);
    stream.uncork();
  });
}

/**
 * Sends every held write now. For code that runs in the check phase itself (a batch gathered during
 * the turn): its writes would otherwise wait for the next turn's check phase.
 */
export function sendHeldWrites(): void {
  for (const redis of corked.keys()) redis.stream.uncork();
  corked.clear();
}

/** Batches to send in this turn's check phase (see sendInCheckPhase). */
let due: Array<() => void> = [];

function sendDue(): void {
  const list = due;
  due = [];
  try {
    for (const send of list) send();
  } finally {
    sendHeldWrites();
  }
}

/**
 * Runs `send` in this turn's check phase together with every other batch of the turn (a key's
 * admissions, the turn's settlements), then sends their held writes at once: one write, one system
 * call, one wake-up of Redis for all of them instead of one each.
 */
export function sendInCheckPhase(send: () => void): void {
  if (due.length === 0) setImmediate(sendDue);
  due.push(send);
}

/** Every script this process defined: loaded into Redis when a store starts (loadScripts). */
const defined: Script[] = [];
/** Connections every defined script was loaded through (the limiter and the book share one). */
const loadedOn = new WeakSet<Redis>();

/**
 * Loads every defined script into Redis, so that no first use waits for a NOSCRIPT round trip — and a
 * release sent while Redis is slow (a refused request's finish or settlement) does not hang behind its
 * NOSCRIPT answer. A Redis restarted later forgets them: `run` loads a script again on NOSCRIPT.
 */
export async function loadScripts(redis: Redis): Promise<void> {
  if (loadedOn.has(redis)) return;
  try {
    await answeredWithin(Promise.all(defined.map((s) => redis.script('LOAD', s.source))));
    loadedOn.add(redis);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new AppError('redis_unavailable', `Redis did not load Tollgate's scripts: ${reason}`);
  }
}

export function script(source: string): Script {
  const sha = createHash('sha1').update(source).digest('hex');
  const defining: Script = {
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
  defined.push(defining);
  return defining;
}
