// Property: the upstream never bills more than Tollgate reserved (see bound-property.ts). A fixed seed and
// a few hundred cases here; thousands under `npm run test:stress` (test/stress/bound-property.test.ts).
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { caseArbitrary, checkCase, type Tally } from './bound-property.js';

describe('the worst-case bound is an upper bound (adversarial upstream)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ fakeOptions: { adversarialBilling: true, streamChunkTokens: 512 } });
    await h.orgCredential();
  });
  afterAll(() => h.close());

  it('no admitted request is billed above its reservation; unboundable ones are refused with the reason', async () => {
    const tally: Tally = { admitted: 0, refused: 0, worstShare: 0 };
    // The SDK warns on console about the deprecated models and thinking modes the generator uses.
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    await fc.assert(
      fc.asyncProperty(caseArbitrary, (c) => checkCase(h, c, tally)),
      { seed: 20261204, numRuns: 300 },
    );
    // The generator mostly produces boundable requests, and the refusals it does produce are counted.
    expect(tally.admitted).toBeGreaterThan(250);
    expect(tally.refused).toBeGreaterThan(0);
    // The bound is not vacuous: some bills come close to it.
    expect(tally.worstShare).toBeGreaterThan(0.5);
    console.log(`bound property: ${JSON.stringify(tally)}`);
  }, 120_000);
});
