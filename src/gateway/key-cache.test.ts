import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../../test/helpers/gateway.js';
import { generateGatewayKey } from '../crypto/gateway-key.js';
import { createKeyCache, effectiveByok } from './key-cache.js';

describe('effectiveByok', () => {
  it("the user's own setting wins, else the team's, else preferred", () => {
    expect(effectiveByok(null, null)).toBe('preferred');
    expect(effectiveByok(null, 'required')).toBe('required');
    expect(effectiveByok('preferred', 'required')).toBe('preferred');
    expect(effectiveByok('required', null)).toBe('required');
    expect(effectiveByok('required', 'preferred')).toBe('required');
  });
});

describe('key cache', () => {
  let h: Harness;
  let real: string;
  /** Right shape, wrong checksum. */
  const malformed = () => `tg_${'A'.repeat(49)}`;

  beforeAll(async () => {
    h = await startHarness();
    real = await h.key({ user: 'cached' });
  });
  afterAll(async () => {
    await h?.close();
  });

  const cache = (capacity?: number) => {
    const { db, pepper, orgId } = h.installation;
    return createKeyCache(db, pepper, { id: orgId, capMicro: null }, capacity);
  };

  /** A well-formed key nobody holds (valid checksum, never issued). */
  const guess = () => generateGatewayKey();

  it('remembers a key that does not exist as it remembers one that does: both answered by one Map read', async () => {
    const keys = cache();
    const nobody = guess();
    expect(keys.peek(real)).toBeUndefined();
    expect(keys.peek(nobody)).toBeUndefined();
    expect((await keys.lookup(real))?.owner.userName).toBe('cached');
    expect(await keys.lookup(nobody)).toBeNull();
    // Seen once, each is now known to the cache: the entry, or null (not undefined: no second lookup).
    expect(keys.peek(real)?.owner.userName).toBe('cached');
    expect(keys.peek(nobody)).toBeNull();
    // A malformed key is refused before any lookup and never remembered.
    expect(await keys.lookup(malformed())).toBeNull();
    expect(keys.peek(malformed())).toBeUndefined();
    expect(keys.size()).toBe(2);
  });

  it('forgets the oldest first, whether it exists or not; a change forgets everything', async () => {
    const keys = cache(3);
    const [a, b, c] = [guess(), guess(), guess()];
    await keys.lookup(a);
    await keys.lookup(real);
    await keys.lookup(b);
    expect(keys.size()).toBe(3);
    await keys.lookup(c); // evicts a, the oldest
    expect(keys.peek(a)).toBeUndefined();
    expect(keys.peek(real)).not.toBeUndefined();
    await keys.lookup(a); // evicts the real key, next in age: guesses push known keys out in turn
    expect(keys.peek(real)).toBeUndefined();
    expect([keys.peek(b), keys.peek(c), keys.peek(a)]).toEqual([null, null, null]);
    keys.invalidate();
    expect(keys.size()).toBe(0);
    expect(keys.peek(b)).toBeUndefined();
  });
});
