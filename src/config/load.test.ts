import { it } from 'vitest';
import { loadConfig } from './load.js';
it('smoke', async () => {
  console.log(JSON.stringify(await loadConfig({ env: {}, cwd: '/tmp' }), null, 1));
  try { await loadConfig({ env: { TOLLGATE_PORT: 'abc', TOLLGATE_ALERTS_THRESHOLDS: '0.9,0.5', TOLLGATE_CLAUDE_MAX_MONTHLY_SPEND_USD: '-5', TOLLGATE_SERVER_HOTS: '1', TOLLGATE_PRICING: '{"m":{"input_usd_per_mtok":"x","foo":1}}' }, cwd: '/tmp' }); } catch (e) { console.log((e as Error).message); }
});
