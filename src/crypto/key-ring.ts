// The master keys a process holds: the current one (seals new secrets, keys the audit anchor) and,
// during a master-key rotation, the previous one. A sealed record names the version that wrapped its
// data key, so a reader picks that key; a version it does not hold is a clear `decryption_failed`.
import { AppError } from '../lib/errors.js';
import { open, type SealedSecret } from './envelope.js';
import type { MasterKey } from './master-key.js';

export interface KeyRing {
  /** Seals new secrets; its derived keys (audit anchor, export proof) are the installation's. */
  readonly current: MasterKey;
  /** Every key held, by version (the current one included). */
  readonly keys: ReadonlyMap<number, MasterKey>;
}

/** The same key bytes labelled with the version the installation knows it by. */
export function withVersion(master: MasterKey, version: number): MasterKey {
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new AppError('invalid_input', 'master key version must be a positive integer');
  }
  if (master.version === version) return master;
  return Object.freeze({ version, key: master.key, fingerprint: master.fingerprint });
}

export function keyRing(current: MasterKey, others: readonly MasterKey[] = []): KeyRing {
  const keys = new Map<number, MasterKey>();
  for (const k of others) keys.set(k.version, k);
  keys.set(current.version, current);
  return { current, keys };
}

/** Whether the ring holds the key of this version. */
export function holds(ring: KeyRing, version: number): boolean {
  return ring.keys.has(version);
}

/** Opens a sealed secret with the key of the version it names. */
export function openWithRing(ring: KeyRing, binding: string, sealed: SealedSecret): Buffer {
  const master = ring.keys.get(sealed.keyVersion);
  if (master === undefined) {
    throw new AppError(
      'decryption_failed',
      `secret ${binding} could not be decrypted: it needs master key version ${sealed.keyVersion}, ` +
        `which this process does not hold (held: ${[...ring.keys.keys()].join(', ')})`,
    );
  }
  return open(master, binding, sealed);
}
