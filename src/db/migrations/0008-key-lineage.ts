// A gateway key's budget belongs to its lineage: `key rotate` makes a key of the same lineage, which
// shares the budget limits and the spend of its predecessors. lineage_id is the first key's id;
// existing rotation chains (rotated_to) are backfilled, and their per-key budget rows become one row
// per lineage (the most recently updated limit of each period wins).
import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../connect.js';

// Migrations run against the schema as it was then, so they are not typed against today's tables.
type MigrationDb = Kysely<unknown>;

interface KeyLink {
  id: string;
  rotated_to: string | null;
}

interface BudgetRowThen {
  scope_id: string;
  period: string;
  limit_micro: number | string;
  updated_at: number | string;
}

/** Each key's lineage (the first key of its rotated_to chain), for the keys not their own lineage. */
export function lineagesOf(keys: readonly KeyLink[]): Map<string, string> {
  const previous = new Map<string, string>();
  for (const k of keys) if (k.rotated_to !== null) previous.set(k.rotated_to, k.id);
  const lineage = new Map<string, string>();
  for (const k of keys) {
    let root = k.id;
    // Bounded by the number of keys: a corrupt cycle cannot loop forever.
    for (let steps = 0; steps < keys.length; steps++) {
      const before = previous.get(root);
      if (before === undefined || before === k.id) break;
      root = before;
    }
    if (root !== k.id) lineage.set(k.id, root);
  }
  return lineage;
}

export function keyLineageMigration(_dialect: Dialect) {
  return {
    async up(db: MigrationDb): Promise<void> {
      await db.schema.alterTable('gateway_keys').addColumn('lineage_id', 'text').execute();
      await sql`update gateway_keys set lineage_id = id`.execute(db);
      const keys = (await sql<KeyLink>`select id, rotated_to from gateway_keys`.execute(db)).rows;
      const lineage = lineagesOf(keys);
      for (const [id, root] of lineage) {
        await sql`update gateway_keys set lineage_id = ${root} where id = ${id}`.execute(db);
      }
      if (lineage.size > 0) {
        const rows = (
          await sql<BudgetRowThen>`select scope_id, period, limit_micro, updated_at from budgets
            where scope_type = 'key'`.execute(db)
        ).rows;
        const newest = new Map<string, BudgetRowThen>();
        for (const r of rows) {
          const root = lineage.get(r.scope_id) ?? r.scope_id;
          const slot = `${root}\u0000${r.period}`;
          const held = newest.get(slot);
          if (!held || Number(r.updated_at) > Number(held.updated_at)) newest.set(slot, r);
        }
        for (const [slot, r] of newest) {
          const root = slot.slice(0, slot.indexOf('\u0000'));
          if (r.scope_id === root) continue;
          await sql`delete from budgets where scope_type = 'key' and scope_id = ${root} and period = ${r.period}`.execute(
            db,
          );
          await sql`insert into budgets (scope_type, scope_id, period, limit_micro, updated_at)
            values ('key', ${root}, ${r.period}, ${r.limit_micro}, ${r.updated_at})`.execute(db);
        }
        for (const id of lineage.keys()) {
          await sql`delete from budgets where scope_type = 'key' and scope_id = ${id}`.execute(db);
        }
      }
      await sql`create index gateway_keys_lineage on gateway_keys (lineage_id)`.execute(db);
    },
  };
}
