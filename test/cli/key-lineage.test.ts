// `tollgate key budget` sets the budget of a key's lineage through any of its keys; `key show` of a
// rotated key shows the shared budget and names the lineage.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliHome, tempHome } from '../helpers/cli.js';

interface KeyJson {
  id: string;
  lineage: string;
  monthly_budget_usd: string | null;
  daily_budget_usd: string | null;
}

describe('key budgets through the CLI', () => {
  let cli: CliHome;
  beforeAll(async () => {
    cli = await tempHome();
    await cli.json(['init']);
    await cli.json(['user', 'add', 'ann']);
  });
  afterAll(() => cli.cleanup());

  it('applies a budget set through any key to the whole lineage, and only to it', async () => {
    const a = await cli.json<KeyJson>(['key', 'issue', '--user', 'ann', '--monthly-budget', '10']);
    const other = await cli.json<KeyJson>(['key', 'issue', '--user', 'ann', '--monthly-budget', '10']);
    const b = await cli.json<KeyJson>(['key', 'rotate', a.id, '--grace', '1h']);
    const c = await cli.json<KeyJson>(['key', 'rotate', b.id]);
    expect([a.lineage, b.lineage, c.lineage]).toEqual([a.id, a.id, a.id]);

    const set = await cli.run(['key', 'budget', a.id, '--monthly', '4', '--daily', '1']);
    expect(set.code).toBe(0);
    expect(set.stdout).toContain(`Budget of key lineage ${a.id}`);
    for (const id of [a.id, b.id, c.id]) {
      const shown = await cli.json<KeyJson>(['key', 'show', id]);
      expect([shown.monthly_budget_usd, shown.daily_budget_usd]).toEqual(['4.00', '1.00']);
    }
    // Positive control: an unrelated key of the same user keeps its own.
    expect((await cli.json<KeyJson>(['key', 'show', other.id])).monthly_budget_usd).toBe('10.00');

    await cli.json(['key', 'budget', c.id, '--daily', 'none']);
    expect((await cli.json<KeyJson>(['key', 'show', a.id])).daily_budget_usd).toBeNull();
    const text = await cli.run(['key', 'show', c.id]);
    expect(text.stdout).toContain(`(shared with its lineage ${a.id})`);

    const none = await cli.run(['key', 'budget', a.id]);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain('--monthly');
  });
});
