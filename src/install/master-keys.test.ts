import { describe, expect, it } from 'vitest';
import { seal } from '../crypto/envelope.js';
import { keyRing, openWithRing, withVersion } from '../crypto/key-ring.js';
import {
  generateMasterKeyText,
  type MasterKey,
  masterKeyCheck,
  parseMasterKey,
} from '../crypto/master-key.js';
import { resolveKeyRing } from './master-keys.js';
import { NEXT_KEY_BINDING, parseRotation, type RotationState, serializeRotation } from './rotation-state.js';
import { encodeSealed } from './sealed-text.js';

const key = (version = 1): MasterKey => parseMasterKey(generateMasterKeyText(), 'test', version);
const label = (k: MasterKey) => ({
  version: k.version,
  fingerprint: k.fingerprint,
  check: masterKeyCheck(k),
});

function rotation(from: MasterKey, to: MasterKey, rewrapped = false): RotationState {
  return {
    from: label(from),
    to: label(to),
    next: encodeSealed(seal(from, NEXT_KEY_BINDING, to.key)),
    source: 'env',
    rewrapped,
    startedAt: 1,
  };
}

describe('resolveKeyRing', () => {
  const k1 = key(1);
  const k2 = key(2);
  const relabel = (k: MasterKey) => withVersion(k, 1); // as loaded: every source is read as version 1

  it('outside a rotation: the right key is current at the stored version; another key is refused', async () => {
    const ring = await resolveKeyRing(
      relabel(k2),
      { check: masterKeyCheck(k2), version: 2, rotation: null },
      null,
    );
    expect(ring.current.version).toBe(2);
    expect([...ring.keys.keys()]).toEqual([2]);
    await expect(
      resolveKeyRing(key(), { check: masterKeyCheck(k2), version: 2, rotation: null }, null),
    ).rejects.toMatchObject({ code: 'master_key_invalid' });
  });

  it('during a rotation, the previous key unwraps the new one from the rotation row', async () => {
    const meta = { check: masterKeyCheck(k2), version: 2, rotation: rotation(k1, k2) };
    const ring = await resolveKeyRing(relabel(k1), meta, null);
    expect(ring.current.fingerprint).toBe(k2.fingerprint);
    expect(ring.current.version).toBe(2);
    expect(ring.keys.get(1)?.fingerprint).toBe(k1.fingerprint);
    // A third key is refused beside them.
    await expect(resolveKeyRing(key(), meta, null)).rejects.toMatchObject({ code: 'master_key_invalid' });
  });

  it('refuses a rotation row whose sealed key does not match its check value', async () => {
    const forged = { ...rotation(k1, k2), next: encodeSealed(seal(k1, NEXT_KEY_BINDING, key().key)) };
    await expect(
      resolveKeyRing(relabel(k1), { check: masterKeyCheck(k2), version: 2, rotation: forged }, null),
    ).rejects.toMatchObject({ code: 'decryption_failed' });
  });

  it('the new key alone starts only once every record is re-wrapped, unless the previous one is at hand', async () => {
    const meta = { check: masterKeyCheck(k2), version: 2, rotation: rotation(k1, k2) };
    await expect(resolveKeyRing(relabel(k2), meta, null)).rejects.toMatchObject({
      code: 'master_key_invalid',
    });
    const withBackup = await resolveKeyRing(relabel(k2), meta, async (v) => withVersion(k1, v));
    expect([...withBackup.keys.keys()].sort()).toEqual([1, 2]);
    // A backup holding another key is not taken for the previous one.
    await expect(resolveKeyRing(relabel(k2), meta, async (v) => withVersion(key(), v))).rejects.toMatchObject(
      {
        code: 'master_key_invalid',
      },
    );
    const done = { ...meta, rotation: rotation(k1, k2, true) };
    expect([...(await resolveKeyRing(relabel(k2), done, null)).keys.keys()]).toEqual([2]);
  });
});

describe('openWithRing', () => {
  it('opens each record with the version it names; a version not held is decryption_failed', () => {
    const k1 = key(1);
    const k2 = key(2);
    const a = seal(k1, 'credentials:a', Buffer.from('one'));
    const b = seal(k2, 'credentials:b', Buffer.from('two'));
    const both = keyRing(k2, [k1]);
    expect(openWithRing(both, 'credentials:a', a).toString()).toBe('one');
    expect(openWithRing(both, 'credentials:b', b).toString()).toBe('two');
    expect(() => openWithRing(keyRing(k2), 'credentials:a', a)).toThrow(/needs master key version 1/);
    // A record relabelled as the other version fails (the wrap AAD names the version).
    expect(() => openWithRing(both, 'credentials:a', { ...a, keyVersion: 2 })).toThrow(
      /could not be decrypted/,
    );
  });
});

describe('rotation state', () => {
  it('round-trips and refuses a malformed row', () => {
    const state = rotation(key(1), key(2));
    expect(parseRotation(serializeRotation(state))).toEqual(state);
    expect(parseRotation(null)).toBeNull();
    expect(() => parseRotation('{"v":1}')).toThrow(/malformed/);
    expect(() => parseRotation('not json')).toThrow(/malformed/);
  });
});
