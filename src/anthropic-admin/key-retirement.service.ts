// Old Anthropic keys of `credential rotate --retire`: once the rotation's grace ends, the key whose
// `partial_key_hint` equals the old secret's stored hint is set inactive through the Admin API. Each
// retirement is done once (marked in the database); a failure is recorded and retried later, a missing
// key is recorded plainly. Audited as `credential.retire` with the Anthropic key id, never a secret.
import type { KeyRetirementRow, KeyRetirementState } from '../db/schema.js';
import { type Actor, change, type ServiceContext } from '../install/context.js';
import { AppError } from '../lib/errors.js';
import { type AdminServiceDeps, openAdminTransport } from './admin.service.js';
import { type AdminClient, createAdminClient } from './client.js';
import type { ApiKey } from './schemas.js';

/** While a runner works on a row, others leave it alone for this long. */
const CLAIM_MS = 5 * 60_000;
const RETRY_BASE_MS = 60_000;
const RETRY_MAX_MS = 3_600_000;

/** Wait before the next attempt after `attempts` failures: 1 min, doubling, at most an hour. */
export function retryDelayMs(attempts: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.max(0, Math.min(attempts - 1, 10)));
}

export type RetirementOutcome = 'disabled' | 'already_inactive' | 'no_match' | 'failed';

export interface RetirementResult {
  readonly id: string;
  readonly credential: string;
  readonly oldHint: string;
  readonly outcome: RetirementOutcome;
  readonly anthropicKeyId: string | null;
  readonly message: string | null;
}

export interface RetirementView {
  readonly id: string;
  readonly credential: string;
  readonly oldHint: string;
  readonly dueAt: number;
  readonly state: KeyRetirementState;
  readonly attempts: number;
  readonly nextAttemptAt: number | null;
  readonly anthropicKeyId: string | null;
  readonly lastError: string | null;
  readonly doneAt: number | null;
}

/** Which Anthropic key a stored hint names: exactly one, or why not (pure). */
export function matchOldKey(
  keys: readonly ApiKey[],
  hint: string,
): { ok: true; key: ApiKey } | { ok: false; message: string } {
  const found = keys.filter((k) => k.partial_key_hint === hint && k.status !== 'archived');
  const [only] = found;
  if (only !== undefined && found.length === 1) return { ok: true, key: only };
  if (found.length > 1)
    return {
      ok: false,
      message: `${found.length} Anthropic keys have the hint ${hint} (${found.map((k) => k.id).join(', ')}); none was disabled — disable the old one with \`tollgate anthropic keys disable ID\``,
    };
  return { ok: false, message: `no Anthropic API key of this organisation has the hint ${hint}` };
}

export function createKeyRetirementService(ctx: ServiceContext, deps: AdminServiceDeps) {
  const db = ctx.installation.db.kysely;

  /** Takes a due row for this runner (another runner's claim or a finished row is skipped). */
  async function claim(row: KeyRetirementRow, now: number): Promise<boolean> {
    const result = await db
      .updateTable('key_retirements')
      .set({ next_attempt_at: now + CLAIM_MS })
      .where('id', '=', row.id)
      .where('state', '=', 'pending')
      .where('next_attempt_at', '<=', now)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async function finish(
    by: Actor,
    row: KeyRetirementRow,
    outcome: Exclude<RetirementOutcome, 'failed'>,
    key: ApiKey | null,
    message: string | null,
  ): Promise<RetirementResult> {
    await change(ctx, by, async (u) => {
      await u.tx
        .updateTable('key_retirements')
        .set({
          state: outcome === 'no_match' ? 'no_match' : 'done',
          attempts: row.attempts + 1,
          anthropic_key_id: key?.id ?? null,
          last_error: message,
          done_at: u.now,
        })
        .where('id', '=', row.id)
        .execute();
      await u.audit('credential.retire', 'credential', row.credential_id, {
        // Ids and names only: the audit log refuses anything shaped like a key, hints included.
        name: row.credential_name,
        retirement_id: row.id,
        outcome,
        anthropic_key_id: key?.id ?? null,
        workspace_id: key?.workspace_id ?? null,
      });
    });
    return result(row, outcome, key?.id ?? null, message);
  }

  async function failed(row: KeyRetirementRow, error: unknown): Promise<RetirementResult> {
    // AppError messages are written for people and never carry a key; anything else is not echoed.
    const message = error instanceof AppError ? error.message : 'unexpected error';
    const now = ctx.clock();
    await db
      .updateTable('key_retirements')
      .set({
        attempts: row.attempts + 1,
        last_error: message,
        next_attempt_at: now + retryDelayMs(row.attempts + 1),
      })
      .where('id', '=', row.id)
      .execute();
    return result(row, 'failed', null, message);
  }

  function result(
    row: KeyRetirementRow,
    outcome: RetirementOutcome,
    anthropicKeyId: string | null,
    message: string | null,
  ): RetirementResult {
    return {
      id: row.id,
      credential: row.credential_name,
      oldHint: row.old_hint,
      outcome,
      anthropicKeyId,
      message,
    };
  }

  return {
    /** Disables every old key whose grace has ended; failures are recorded and retried later. */
    async runDue(by: Actor): Promise<RetirementResult[]> {
      const now = ctx.clock();
      const due = await db
        .selectFrom('key_retirements')
        .selectAll()
        .where('state', '=', 'pending')
        .where('next_attempt_at', '<=', now)
        .orderBy('due_at')
        .execute();
      const results: RetirementResult[] = [];
      let keys: { client: AdminClient; list: ApiKey[] } | null = null;
      for (const row of due) {
        if (!(await claim(row, now))) continue;
        try {
          if (keys === null) {
            const client = createAdminClient(await openAdminTransport(deps));
            keys = { client, list: await client.listApiKeys() };
          }
          const match = matchOldKey(keys.list, row.old_hint);
          if (!match.ok) {
            results.push(await finish(by, row, 'no_match', null, match.message));
            continue;
          }
          if (match.key.status !== 'active') {
            results.push(await finish(by, row, 'already_inactive', match.key, null));
            continue;
          }
          const disabled = await keys.client.updateApiKey(match.key.id, { status: 'inactive' });
          results.push(await finish(by, row, 'disabled', disabled, null));
        } catch (error) {
          results.push(await failed(row, error));
        }
      }
      return results;
    },

    /** Every retirement, newest first: pending ones with their last error, done ones with the key id. */
    async list(): Promise<RetirementView[]> {
      const rows = await db.selectFrom('key_retirements').selectAll().orderBy('created_at', 'desc').execute();
      return rows.map((r) => ({
        id: r.id,
        credential: r.credential_name,
        oldHint: r.old_hint,
        dueAt: Number(r.due_at),
        state: r.state,
        attempts: r.attempts,
        nextAttemptAt: r.state === 'pending' ? Number(r.next_attempt_at) : null,
        anthropicKeyId: r.anthropic_key_id,
        lastError: r.last_error,
        doneAt: r.done_at === null ? null : Number(r.done_at),
      }));
    },
  };
}

export type KeyRetirementService = ReturnType<typeof createKeyRetirementService>;
