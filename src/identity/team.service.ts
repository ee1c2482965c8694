// Teams: named groups of users with an optional monthly budget.
import { budgetsOf, setBudget } from '../budgets/budget.repo.js';
import type { ByokPolicy, TeamRow } from '../db/schema.js';
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
  byok: ByokPolicy;
}

export interface TeamUpdate {
  /** null removes the monthly budget. */
  monthlyBudgetMicro?: number | null;
  byok?: ByokPolicy;
}

export function createTeamService(ctx: ServiceContext) {
  const db = ctx.installation.db.kysely;

  async function add(
    by: Actor,
    input: { name: string; monthlyBudgetMicro?: number | null; byok?: ByokPolicy },
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
      const byok = input.byok === 'required' ? 'required' : null;
      await u.tx.insertInto('teams').values({ id, name, created_at: u.now, byok }).execute();
      if (input.monthlyBudgetMicro != null)
        await setBudget(u.tx, 'team', id, 'month', input.monthlyBudgetMicro, u.now);
      await u.audit('team.add', 'team', id, {
        name,
        monthly_budget_micro: input.monthlyBudgetMicro ?? null,
        byok: byok ?? 'preferred',
      });
      await u.changed('team', id);
      return {
        id,
        name,
        createdAt: u.now,
        monthlyBudgetMicro: input.monthlyBudgetMicro ?? null,
        members: 0,
        byok: byok ?? 'preferred',
      };
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

  async function show(nameOrId: string): Promise<TeamView> {
    return view(await get(nameOrId));
  }

  /** Changes a team's monthly budget and/or bring-your-own-key policy; fields left out stay as they are. */
  async function update(by: Actor, nameOrId: string, changes: TeamUpdate): Promise<TeamView> {
    const team = await get(nameOrId);
    await change(ctx, by, async (u) => {
      const details: Record<string, string | number | null> = {};
      if (changes.monthlyBudgetMicro !== undefined) {
        await setBudget(u.tx, 'team', team.id, 'month', changes.monthlyBudgetMicro, u.now);
        details.monthly_budget_micro = changes.monthlyBudgetMicro;
        await u.changed('budget', team.id);
      }
      if (changes.byok !== undefined) {
        await u.tx
          .updateTable('teams')
          .set({ byok: changes.byok === 'required' ? 'required' : null })
          .where('id', '=', team.id)
          .execute();
        details.byok = changes.byok;
      }
      await u.audit('team.update', 'team', team.id, details);
      await u.changed('team', team.id);
    });
    return show(team.id);
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
      byok: row.byok ?? 'preferred',
    };
  }

  return { add, list, get, show, update };
}

export type TeamService = ReturnType<typeof createTeamService>;
