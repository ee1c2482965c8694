// What the users, teams and keys pages read from the admin API: the JSON shapes they use, every page
// of a list, and USD decimal strings turned into micro-USD for the usage bars.
import { get, query } from '../api.js';

export interface Team {
  id: string;
  name: string;
  members: number;
  monthly_budget_usd: string | null;
}

export interface User {
  id: string;
  name: string;
  email: string | null;
  role: 'admin' | 'member' | 'service';
  team: string | null;
  monthly_budget_usd: string | null;
  active_keys: number;
  disabled_at: string | null;
  password_set: boolean;
  sso: boolean;
}

export type Period = 'day' | 'month' | 'total';
export const PERIODS: readonly Period[] = ['day', 'month', 'total'];
export const PERIOD_LABEL: Record<Period, string> = { day: 'Daily', month: 'Monthly', total: 'Total' };

export interface Budget {
  scope: 'org' | 'team' | 'user' | 'key';
  target: string | null;
  target_id: string;
  period: Period;
  limit_usd: string;
  spent_usd: string;
  reserved_usd: string;
  remaining_usd: string;
}

interface PageOf<T> {
  items: T[];
  next_cursor: string | null;
}

/** Every row of a paged list (500 a page). */
export async function listAll<T>(
  path: string,
  params: Record<string, string | undefined> = {},
): Promise<T[]> {
  const rows: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await get<PageOf<T>>(`${path}${query({ ...params, limit: 500, cursor })}`);
    rows.push(...page.items);
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return rows;
}

/** "12.345" → 12345000 micro-USD (the API writes USD as decimal strings, never floats). */
export function toMicro(usd: string): number {
  const [whole = '0', fraction = ''] = usd.replace('-', '').split('.');
  const micro = Number(whole) * 1_000_000 + Number(fraction.padEnd(6, '0').slice(0, 6));
  return usd.startsWith('-') ? -micro : micro;
}

/** The budgets of one scope, by the target's id. */
export function budgetsById(budgets: readonly Budget[], scope: Budget['scope']): Map<string, Budget[]> {
  const byId = new Map<string, Budget[]>();
  for (const b of budgets) {
    if (b.scope !== scope) continue;
    byId.set(b.target_id, [...(byId.get(b.target_id) ?? []), b]);
  }
  return byId;
}
