// `npm run test:stress`: long runs kept out of `npm test` (property tests with thousands of cases,
// adversarial corpora measured for event-loop stalls). Tests live under test/stress/.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/stress/**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 600_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
