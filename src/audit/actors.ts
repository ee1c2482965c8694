// Actors that name a person (`user:<name>`, `admin:<name>`, `enroll:<name>`, as the principal and the
// sign-in code build them) are stored by the person's id (`admin:usr_…`): a name hashed into the chain
// could never be purged. Listings show the person's current name again (their pseudonym once purged),
// and an `actor` filter given by name is translated to the stored id.
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';

const PERSON_ACTOR = /^(user|admin|enroll):(.+)$/;

function split(actor: string): { kind: string; who: string } | null {
  const m = PERSON_ACTOR.exec(actor);
  return m?.[1] && m[2] ? { kind: m[1], who: m[2] } : null;
}

/**
 * The stored form of an actor: a person's name replaced by their id — the live person of that name, else
 * the one who existed at `at` (older entries; a removed person's name may have been reused since).
 */
export async function actorForStorage(db: Kysely<Database>, actor: string, at: number): Promise<string> {
  const parts = split(actor);
  if (!parts || parts.who.startsWith('usr_')) return actor;
  const rows = await db
    .selectFrom('users')
    .select(['id', 'created_at', 'removed_at'])
    .where('name', '=', parts.who)
    .execute();
  const live = rows.find((r) => r.removed_at === null);
  const then = rows.find((r) => r.created_at <= at && (r.removed_at === null || r.removed_at >= at));
  const person = live ?? then ?? (rows.length === 1 ? rows[0] : undefined);
  return person ? `${parts.kind}:${person.id}` : actor;
}

/** Display forms of stored actors: `admin:usr_…` → `admin:<current name>`; others unchanged. */
export async function actorsForDisplay(
  db: Kysely<Database>,
  actors: Iterable<string>,
): Promise<Map<string, string>> {
  const ids = new Set<string>();
  for (const actor of actors) {
    const parts = split(actor);
    if (parts?.who.startsWith('usr_')) ids.add(parts.who);
  }
  const names = new Map<string, string>();
  if (ids.size > 0) {
    const rows = await db
      .selectFrom('users')
      .select(['id', 'name'])
      .where('id', 'in', [...ids])
      .execute();
    for (const r of rows) names.set(r.id, r.name);
  }
  const shown = new Map<string, string>();
  for (const actor of actors) {
    const parts = split(actor);
    const name = parts ? names.get(parts.who) : undefined;
    shown.set(actor, parts && name ? `${parts.kind}:${name}` : actor);
  }
  return shown;
}
