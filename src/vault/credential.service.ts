// The credential vault: upstream secrets sealed with envelope encryption, never returned by any listing.

import type { UpdateQueryBuilder, UpdateResult } from 'kysely';
import { seal } from '../crypto/envelope.js';
import type {
  CredentialRow,
  CredentialStatus,
  Database,
  Environment,
  OwnerType,
  Provider,
} from '../db/schema.js';
import type { Tx } from '../db/tx.js';
import type { TeamService } from '../identity/team.service.js';
import type { UserService } from '../identity/user.service.js';
import { type Actor, type ChangeUnit, change, type ServiceContext } from '../install/context.js';
import { AppError } from '../lib/errors.js';
import { newId } from '../lib/ids.js';
import { validateName } from '../lib/validate.js';
import { newCredentialRow } from './credential-row.js';
import { credentialHint } from './hint.js';
import { checkSecretShape, probeCredential, type UpstreamTarget } from './validate-credential.js';
import { type IntegrationTargets, probeIntegration } from './validate-integration.js';

export const PROVIDERS = [
  'anthropic',
  'anthropic-admin',
  'github',
  'linear',
  'generic',
] as const satisfies readonly Provider[];
export const ENVIRONMENTS = ['dev', 'staging', 'prod'] as const satisfies readonly Environment[];

export type OwnerRef = { type: 'org' } | { type: 'team'; name: string } | { type: 'user'; name: string };

export interface NewCredentialInput {
  name: string;
  provider: Provider;
  owner?: OwnerRef;
  environment?: Environment | null;
  secret: string;
  validate: boolean;
}

export interface CredentialView {
  id: string;
  name: string;
  provider: Provider;
  owner: string;
  ownerType: OwnerType;
  ownerId: string | null;
  environment: Environment | null;
  status: CredentialStatus;
  preferred: boolean;
  hint: string;
  createdAt: number;
  updatedAt: number;
  lastUsedAt: number | null;
  rotatedAt: number | null;
  /** For a rotated-out previous secret: when it stops being used. */
  retireAt: number | null;
}

/** Parses `org`, `team:NAME` or `user:NAME`. */
export function parseOwner(text: string): OwnerRef {
  if (text === 'org') return { type: 'org' };
  const match = /^(team|user):(.+)$/.exec(text);
  if (match?.[1] === 'team' && match[2]) return { type: 'team', name: match[2] };
  if (match?.[1] === 'user' && match[2]) return { type: 'user', name: match[2] };
  throw new AppError(
    'invalid_input',
    `owner must be org, team:NAME or user:NAME (got ${JSON.stringify(text.slice(0, 40))})`,
  );
}

const binding = (id: string) => `credentials:${id}`;

const sealedOf = (row: CredentialRow) => ({
  ciphertext: row.ciphertext,
  wrappedKey: row.wrapped_key,
  keyVersion: row.key_version,
});

export function createCredentialService(
  ctx: ServiceContext,
  deps: {
    teams: TeamService;
    users: UserService;
    upstream: UpstreamTarget;
    /** GitHub and Linear tokens are checked there; absent = not checked (as before). */
    integrations?: IntegrationTargets;
  },
) {
  const db = ctx.installation.db.kysely;

  async function resolveOwner(owner: OwnerRef): Promise<{ type: OwnerType; id: string | null }> {
    if (owner.type === 'org') return { type: 'org', id: null };
    if (owner.type === 'team') return { type: 'team', id: (await deps.teams.get(owner.name)).id };
    return { type: 'user', id: (await deps.users.get(owner.name)).id };
  }

  async function assertNameFree(name: string, tx: Tx = db): Promise<void> {
    const existing = await tx
      .selectFrom('credentials')
      .select('id')
      .where('name', '=', name)
      .where('removed_at', 'is', null)
      .executeTakeFirst();
    if (existing) throw new AppError('conflict', `a credential named ${name} already exists`);
  }

  async function validate(provider: Provider, secret: string, enabled: boolean): Promise<void> {
    checkSecretShape(provider, secret);
    if (!enabled) return;
    if (provider === 'github' || provider === 'linear') {
      if (deps.integrations) await probeIntegration(provider, secret, deps.integrations);
      return;
    }
    const outcome = await probeCredential(provider, secret, deps.upstream);
    if (!outcome.ok) throw outcome.error;
  }

  /** Validates (unless told not to), seals and stores a new credential; the secret is never returned. */
  async function add(by: Actor, input: NewCredentialInput): Promise<CredentialView> {
    const name = validateName('credential', input.name);
    const owner = await resolveOwner(input.owner ?? { type: 'org' });
    // Cheap local checks first, so a duplicate name never costs an upstream call.
    await assertNameFree(name);
    await validate(input.provider, input.secret, input.validate);
    const id = newId('cred');
    const sealed = seal(ctx.installation.master, binding(id), Buffer.from(input.secret, 'utf8'));
    const hint = credentialHint(input.provider, input.secret);
    const row = await change(ctx, by, async (u) => {
      // Checked again inside the transaction: another process may have taken the name meanwhile.
      await assertNameFree(name, u.tx);
      const siblings = await u.tx
        .selectFrom('credentials')
        .select('id')
        .where('provider', '=', input.provider)
        .where('owner_type', '=', owner.type)
        .where((eb) => (owner.id === null ? eb('owner_id', 'is', null) : eb('owner_id', '=', owner.id)))
        .where('removed_at', 'is', null)
        .execute();
      const values = newCredentialRow({
        id,
        name,
        provider: input.provider,
        ownerType: owner.type,
        ownerId: owner.id,
        environment: input.environment ?? null,
        // The first credential of a provider at an owner is the one `credential use` would pick.
        preferred: siblings.length === 0,
        hint,
        sealed,
        now: u.now,
      });
      await u.tx.insertInto('credentials').values(values).execute();
      await u.audit('credential.add', 'credential', id, {
        name,
        provider: input.provider,
        owner_type: owner.type,
        owner_id: owner.id,
        environment: input.environment ?? null,
        validated: input.validate,
      });
      await u.changed('credential', id);
      return values;
    });
    return view(row);
  }

  async function get(nameOrId: string): Promise<CredentialRow> {
    const row = await db
      .selectFrom('credentials')
      .selectAll()
      .where('removed_at', 'is', null)
      .where((eb) => eb.or([eb('name', '=', nameOrId), eb('id', '=', nameOrId)]))
      .executeTakeFirst();
    if (!row) throw new AppError('not_found', `no credential named ${nameOrId}`);
    return row;
  }

  async function list(filter: { provider?: Provider; owner?: OwnerRef } = {}): Promise<CredentialView[]> {
    let query = db.selectFrom('credentials').selectAll().where('removed_at', 'is', null).orderBy('name');
    if (filter.provider) query = query.where('provider', '=', filter.provider);
    if (filter.owner) {
      const owner = await resolveOwner(filter.owner);
      query = query.where('owner_type', '=', owner.type);
      if (owner.id !== null) query = query.where('owner_id', '=', owner.id);
    }
    const rows = await query.execute();
    const views: CredentialView[] = [];
    for (const row of rows) views.push(await view(row));
    return views;
  }

  async function show(nameOrId: string): Promise<CredentialView> {
    return view(await get(nameOrId));
  }

  /** Marks one credential as the preferred one of its owner and provider; takes effect without restarts. */
  async function use(by: Actor, nameOrId: string): Promise<CredentialView> {
    const cred = await get(nameOrId);
    if (cred.status !== 'active') {
      throw new AppError(
        'invalid_input',
        `credential ${cred.name} is ${cred.status}; enable it first with \`tollgate credential enable ${cred.name}\``,
      );
    }
    await change(ctx, by, async (u) => {
      await u.tx
        .updateTable('credentials')
        .set({ preferred: 0, updated_at: u.now })
        .where('provider', '=', cred.provider)
        .where('owner_type', '=', cred.owner_type)
        .where((eb) =>
          cred.owner_id === null ? eb('owner_id', 'is', null) : eb('owner_id', '=', cred.owner_id),
        )
        .where('removed_at', 'is', null)
        .execute();
      await u.tx
        .updateTable('credentials')
        .set({ preferred: 1, updated_at: u.now })
        .where('id', '=', cred.id)
        .execute();
      await u.audit('credential.use', 'credential', cred.id, { name: cred.name });
      await u.changed('credential', cred.id);
    });
    return show(cred.id);
  }

  async function setStatus(
    by: Actor,
    nameOrId: string,
    status: 'active' | 'inactive',
  ): Promise<CredentialView> {
    const cred = await get(nameOrId);
    await change(ctx, by, async (u) => {
      await u.tx
        .updateTable('credentials')
        .set({ status, updated_at: u.now })
        .where('id', '=', cred.id)
        .execute();
      await u.audit(status === 'active' ? 'credential.enable' : 'credential.disable', 'credential', cred.id, {
        name: cred.name,
      });
      await u.changed('credential', cred.id);
    });
    return show(cred.id);
  }

  /**
   * Replaces the secret of a credential after validating the new one; switches atomically. With a
   * grace period the previous secret stays usable — as a failover behind the new one, in a row of
   * its own named `NAME.previous` — until the grace ends, then it is deactivated and destroyed.
   */
  async function rotate(
    by: Actor,
    nameOrId: string,
    secret: string,
    validateFirst: boolean,
    graceMs: number | null = null,
    options: { retire?: boolean } = {},
  ): Promise<CredentialView> {
    const cred = await get(nameOrId);
    if (cred.retired_from !== null)
      throw new AppError(
        'invalid_input',
        `${cred.name} is a retiring previous secret; rotate ${cred.name.replace(/\.previous$/, '')} instead`,
      );
    const retire = options.retire === true;
    if (retire && cred.provider !== 'anthropic')
      throw new AppError(
        'invalid_input',
        `--retire disables the old key through Anthropic's Admin API: only anthropic credentials (${cred.name} is ${cred.provider})`,
      );
    await validate(cred.provider, secret, validateFirst);
    const previous = graceMs ? await ctx.installation.openSealed(binding(cred.id), sealedOf(cred)) : null;
    // Read after the open: it may have taught this process a rotated master key.
    const master = ctx.installation.master;
    const sealed = seal(master, binding(cred.id), Buffer.from(secret, 'utf8'));
    await change(ctx, by, async (u) => {
      if (previous) {
        const retiringName = `${cred.name}.previous`;
        // A still-retiring older secret makes way: only the latest previous secret is kept.
        await shredWhere(u, (q) => q.where('name', '=', retiringName));
        const id = newId('cred');
        const resealed = seal(master, binding(id), previous);
        previous.fill(0);
        await u.tx
          .insertInto('credentials')
          .values({
            ...cred,
            id,
            name: retiringName,
            preferred: 0,
            ciphertext: resealed.ciphertext,
            wrapped_key: resealed.wrappedKey,
            key_version: resealed.keyVersion,
            created_at: u.now,
            updated_at: u.now,
            last_used_at: null,
            rotated_at: null,
            removed_at: null,
            retire_at: u.now + (graceMs ?? 0),
            retired_from: cred.id,
          })
          .execute();
        await u.changed('credential', id);
      }
      await u.tx
        .updateTable('credentials')
        .set({
          ciphertext: sealed.ciphertext,
          wrapped_key: sealed.wrappedKey,
          key_version: sealed.keyVersion,
          hint: credentialHint(cred.provider, secret),
          status: 'active',
          rotated_at: u.now,
          updated_at: u.now,
        })
        .where('id', '=', cred.id)
        .execute();
      if (retire) {
        // The old key's hint (Anthropic's partial_key_hint format) is what finds it at Anthropic later.
        const due = u.now + (graceMs ?? 0);
        await u.tx
          .insertInto('key_retirements')
          .values({
            id: newId('ret'),
            credential_id: cred.id,
            credential_name: cred.name,
            old_hint: cred.hint,
            created_at: u.now,
            due_at: due,
            state: 'pending',
            attempts: 0,
            next_attempt_at: due,
            anthropic_key_id: null,
            last_error: null,
            done_at: null,
          })
          .execute();
      }
      await u.audit('credential.rotate', 'credential', cred.id, {
        name: cred.name,
        validated: validateFirst,
        grace_ms: graceMs,
        retire,
      });
      await u.changed('credential', cred.id);
    });
    return show(cred.id);
  }

  /** Deactivates and destroys previous secrets whose grace period has ended. Returns their names. */
  async function retireDue(by: Actor): Promise<string[]> {
    const now = ctx.clock();
    const due = await db
      .selectFrom('credentials')
      .select(['id', 'name'])
      .where('retire_at', '<=', now)
      .where('removed_at', 'is', null)
      .execute();
    if (due.length === 0) return [];
    await change(ctx, by, async (u) => {
      await shredWhere(u, (q) =>
        q.where(
          'id',
          'in',
          due.map((d) => d.id),
        ),
      );
      for (const d of due) await u.audit('credential.retire', 'credential', d.id, { name: d.name });
    });
    return due.map((d) => d.name);
  }

  /** Marks matching live credentials removed and overwrites their sealed secrets. */
  async function shredWhere(
    u: ChangeUnit,
    filter: (
      q: UpdateQueryBuilder<Database, 'credentials', 'credentials', UpdateResult>,
    ) => UpdateQueryBuilder<Database, 'credentials', 'credentials', UpdateResult>,
  ): Promise<void> {
    const rows = await filter(
      u.tx
        .updateTable('credentials')
        .set({
          removed_at: u.now,
          status: 'inactive',
          preferred: 0,
          ciphertext: Buffer.alloc(0),
          wrapped_key: Buffer.alloc(0),
          updated_at: u.now,
        })
        .where('removed_at', 'is', null),
    )
      .returning('id')
      .execute();
    for (const r of rows) await u.changed('credential', r.id);
  }

  /** Removes a credential and destroys its sealed secret; refused while active keys are pinned to it. */
  async function remove(by: Actor, nameOrId: string): Promise<{ id: string; name: string }> {
    const cred = await get(nameOrId);
    await change(ctx, by, async (u) => {
      const pinned = await u.tx
        .selectFrom('gateway_keys')
        .select('id')
        .where('credential_id', '=', cred.id)
        .where('status', '=', 'active')
        .execute();
      if (pinned.length > 0) {
        throw new AppError(
          'conflict',
          `credential ${cred.name} is pinned by active gateway keys (${pinned.map((k) => k.id).join(', ')}); revoke them first`,
        );
      }
      await shredWhere(u, (q) => q.where('id', '=', cred.id));
      await u.audit('credential.remove', 'credential', cred.id, { name: cred.name });
    });
    return { id: cred.id, name: cred.name };
  }

  /** Opens a credential's secret for an upstream call. The only place plaintext leaves the vault. */
  async function reveal(id: string): Promise<string> {
    const cred = await get(id);
    const plain = await ctx.installation.openSealed(binding(cred.id), sealedOf(cred));
    return plain.toString('utf8');
  }

  async function ownerLabel(row: CredentialRow): Promise<string> {
    if (row.owner_type === 'org' || row.owner_id === null) return 'org';
    const table = row.owner_type === 'team' ? 'teams' : 'users';
    const owner = await db.selectFrom(table).select('name').where('id', '=', row.owner_id).executeTakeFirst();
    return `${row.owner_type}:${owner?.name ?? row.owner_id}`;
  }

  async function view(row: CredentialRow): Promise<CredentialView> {
    return {
      id: row.id,
      name: row.name,
      provider: row.provider,
      owner: await ownerLabel(row),
      ownerType: row.owner_type,
      ownerId: row.owner_id,
      environment: row.environment,
      status: row.status,
      preferred: row.preferred === 1,
      hint: row.hint,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      lastUsedAt: row.last_used_at,
      rotatedAt: row.rotated_at,
      retireAt: row.retire_at,
    };
  }

  return {
    add,
    validate,
    list,
    get,
    show,
    use,
    enable: (by: Actor, n: string) => setStatus(by, n, 'active'),
    disable: (by: Actor, n: string) => setStatus(by, n, 'inactive'),
    rotate,
    retireDue,
    remove,
    reveal,
  };
}

export type CredentialService = ReturnType<typeof createCredentialService>;
