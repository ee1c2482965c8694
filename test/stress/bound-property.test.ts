// `npm run test:stress`: the bound property of test/gateway/bound-property.test.ts with thousands of cases.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { caseArbitrary, checkCase, type Tally } from '../gateway/bound-property.js';
import { type Harness, startHarness } from '../helpers/gateway.js';

describe('the worst-case bound is an upper bound (adversarial upstream, stress)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ fakeOptions: { adversarialBilling: true, streamChunkTokens: 512 } });
    await h.orgCredential();
  });
  afterAll(() => h.close());

  it('holds for 5,000 generated requests', async () => {
    const tally: Tally = { admitted: 0, refused: 0, worstShare: 0 };
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    await fc.assert(
      fc.asyncProperty(caseArbitrary, (c) => checkCase(h, c, tally)),
      { numRuns: 5_000 },
    );
    expect(tally.admitted).toBeGreaterThan(4_000);
    console.log(`bound property (stress): ${JSON.stringify(tally)}`);
  });
});
