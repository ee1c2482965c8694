// `npm run test:stress`: the gateway fuzz of test/gateway/fuzz.test.ts with thousands of cases.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuzzRequest } from '../helpers/fuzz-requests.js';
import { type Harness, startHarness } from '../helpers/gateway.js';

describe('fuzzed requests (stress)', () => {
  let h: Harness;
  let key: string;
  beforeAll(async () => {
    h = await startHarness();
    await h.orgCredential();
    key = await h.key({ user: 'fuzz' });
  });
  afterAll(() => h.close());

  it('never answer 5xx (5000 cases, seed 1111)', async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(fuzzRequest(key), async (r) => {
        const res = await fetch(`${h.url}${r.path}`, { method: 'POST', headers: r.headers, body: r.body });
        const text = await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        expect(res.status, text).toBeLessThan(500);
      }),
      { seed: Number(process.env.FUZZ_SEED ?? 1111), numRuns: Number(process.env.FUZZ_RUNS ?? 5000) },
    );
    process.stdout.write(`fuzz statuses: ${JSON.stringify([...statuses].sort((a, b) => a[0] - b[0]))}\n`);
  });
});
