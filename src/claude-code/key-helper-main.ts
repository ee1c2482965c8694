// The fast path of `tollgate claude-code key-helper`: bin/tollgate.js imports this module instead of the
// full CLI, so each call loads the key store only (no commander, kysely or fastify).
import { runKeyHelper } from './key-helper.js';
import { nativeKeychain } from './key-store.js';

/** Runs the helper with the process's streams and environment; returns the exit status. */
export function keyHelperMain(args: readonly string[]): Promise<number> {
  return runKeyHelper(
    args,
    { stdout: process.stdout, stderr: process.stderr, env: process.env },
    nativeKeychain(process.platform),
  );
}
