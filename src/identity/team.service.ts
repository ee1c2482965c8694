// Teams: named groups of users with an optional monthly budget.
import { budgetsOf, setBudget } from '../budgets/budget.repo.js';
import type { TeamRow } from '../db/schema.js';
import { type Actor, change, type ServiceContext } from '../install/context.js';
import { AppError } from '../lib/errors.js';
import { newId } from '../lib/ids.js';
import { validateName } from '../lib/validate.js';

export interface TeamView {
  id: string;
  name: string;
  createdAt: number;
  monthlyBudgetMicro: number | null;
  members: number;
}

export function createTeamService(ctx: ServiceContext) {
  const db = ctx.installation.db.kysely;

  async function add(
    by: Actor,
    input: { name: string; monthlyBudgetMicro?: number | null },
  ): Promise<TeamView> {
    const name = validateName('team', input.name);
    return change(ctx, by, async (u) => {
      const existing = await u.tx
        .selectFrom('teams')
        .select('id')
        .where('name', '=', name)
        .executeTakeFirst();
      if (existing) throw new AppError('conflict', `a team named ${name} already exists`);
      const id = newId('tm');
      await u.tx.insertInto('teams').values({ id, name, created_at: u.now }).execute();
      if (input.monthlyBudgetMicro != null)
        await setBudget(u.tx, 'team', id, 'month', input.monthlyBudgetMicro, u.now);
      await u.audit('team.add', 'team', id, { name, monthly_budget_micro: input.monthlyBudgetMicro ?? null });
      await u.changed('team', id);
      return { id, name, createdAt: u.now, monthlyBudgetMicro: input.monthlyBudgetMicro ?? null, members: 0 };
    });
  }

  async function list(): Promise<TeamView[]> {
    const rows = await db.selectFrom('teams').selectAll().orderBy('name').execute();
    return Promise.all(rows.map(view));
  }

  /** Finds a live team by name or id, or refuses with not_found. */
  async function get(nameOrId: string): Promise<TeamRow> {
    const row = await db
      .selectFrom('teams')
      .selectAll()
      .where((eb) => eb.or([eb('name', '=', nameOrId), eb('id', '=', nameOrId)]))
      .executeTakeFirst();
    if (!row) throw new AppError('not_found', `no team named ${nameOrId}`);
    return row;
  }

  async function view(row: TeamRow): Promise<TeamView> {
    const [budgets, members] = await Promise.all([
      budgetsOf(db, 'team', row.id),
      db
        .selectFrom('users')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('team_id', '=', row.id)
        .where('removed_at', 'is', null)
        .executeTakeFirst(),
    ]);
    return {
      id: row.id,
      name: row.name,
      createdAt: row.created_at,
      monthlyBudgetMicro: budgets.find((b) => b.period === 'month')?.limitMicro ?? null,
      members: Number(members?.n ?? 0),
    };
  }

  return { add, list, get };
}

export type TeamService = ReturnType<typeof createTeamService>;
