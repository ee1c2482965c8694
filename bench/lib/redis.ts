// The Redis of the shared-* scenarios: checked with PING and emptied (FLUSHDB of its own database) before
// Tollgate starts on it, through redis-cli (Debian's redis-tools, beside the server .ci/run starts).
import { execFileSync } from 'node:child_process';

/** Null when Redis answers (and its database was emptied), else why not. */
export async function redisUnreachable(url: string): Promise<string | null> {
  try {
    const pong = execFileSync('redis-cli', ['-u', url, 'ping'], { encoding: 'utf8', timeout: 5_000 }).trim();
    if (pong !== 'PONG') return `Redis at ${url} answered ${JSON.stringify(pong.slice(0, 80))} to PING`;
    execFileSync('redis-cli', ['-u', url, 'flushdb'], { encoding: 'utf8', timeout: 5_000 });
    return null;
  } catch (error) {
    return `Redis at ${url} does not answer (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`;
  }
}
