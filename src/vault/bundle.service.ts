// Moving every credential between installations: export reveals secrets into bundle entries, import
// stores bundle entries through the credential service (so each addition or rotation is audited).
import type { CredentialRow, Environment, Provider } from '../db/schema.js';
import type { TeamService } from '../identity/team.service.js';
import type { UserService } from '../identity/user.service.js';
import { type Actor, change, type ServiceContext } from '../install/context.js';
import { isAppError } from '../lib/errors.js';
import { oneOf, validateName } from '../lib/validate.js';
import type { BundleEntry } from './bundle.js';
import {
  type CredentialService,
  ENVIRONMENTS,
  type OwnerRef,
  PROVIDERS,
  parseOwner,
} from './credential.service.js';

export interface BundleServiceDeps {
  credentials: Pick<CredentialService, 'list' | 'get' | 'add' | 'rotate' | 'reveal' | 'use' | 'disable'>;
  users: Pick<UserService, 'get'>;
  teams: Pick<TeamService, 'get'>;
}

export interface ImportReport {
  imported: string[];
  replaced: string[];
  skipped: Array<{ name: string; reason: string }>;
}

type Outcome = 'imported' | 'replaced' | { skipped: string };

interface Checked {
  name: string;
  provider: Provider;
  owner: OwnerRef;
  ownerId: string | null;
  environment: Environment | null;
}

// Refusals that concern one entry (bad value, name taken meanwhile, owner gone) skip that entry;
// anything else (a broken database, a bug) stops the import.
const SKIPPABLE = new Set(['invalid_input', 'conflict', 'not_found']);

export function createBundleService(ctx: ServiceContext, deps: BundleServiceDeps) {
  const { credentials } = deps;

  /** Every live credential with its secret, for sealing into a bundle; the export itself is audited. */
  async function exportAll(by: Actor): Promise<BundleEntry[]> {
    const entries: BundleEntry[] = [];
    for (const view of await credentials.list()) {
      entries.push({
        name: view.name,
        provider: view.provider,
        owner: view.owner,
        environment: view.environment,
        status: view.status,
        preferred: view.preferred,
        hint: view.hint,
        secret: await credentials.reveal(view.id),
        created_at: new Date(view.createdAt).toISOString(),
      });
    }
    // Revealing every secret at once is worth a trace even though nothing in the vault changed.
    await change(ctx, by, (u) =>
      u.audit('credential.export', 'credential', '*', {
        count: entries.length,
        names: entries.map((e) => e.name).join(','),
      }),
    );
    return entries;
  }

  /**
   * Stores bundle entries without re-validating them upstream (they were checked when first added).
   * An existing name is skipped, or with `replace` gets the bundle's secret while keeping its status
   * and environment.
   */
  async function importAll(
    by: Actor,
    entries: readonly BundleEntry[],
    opts: { replace: boolean },
  ): Promise<ImportReport> {
    const report: ImportReport = { imported: [], replaced: [], skipped: [] };
    const seen = new Set<string>();
    for (const entry of entries) {
      let outcome: Outcome;
      if (seen.has(entry.name)) outcome = { skipped: 'appears more than once in the bundle' };
      else {
        seen.add(entry.name);
        outcome = await importOne(by, entry, opts.replace).catch((error: unknown) => {
          if (isAppError(error) && SKIPPABLE.has(error.code)) return { skipped: error.message };
          throw error;
        });
      }
      if (outcome === 'imported') report.imported.push(entry.name);
      else if (outcome === 'replaced') report.replaced.push(entry.name);
      else report.skipped.push({ name: entry.name, reason: outcome.skipped });
    }
    return report;
  }

  async function importOne(by: Actor, entry: BundleEntry, replace: boolean): Promise<Outcome> {
    const checked = checkEntry(entry);
    const ownerId = await findOwner(checked.owner);
    if (ownerId === undefined) {
      return {
        skipped: `owner ${entry.owner} does not exist in this installation (add the ${checked.owner.type} first)`,
      };
    }
    const existing = await findCredential(checked.name);
    if (existing) {
      if (!replace) return { skipped: 'exists (use --replace)' };
      return replaceSecret(by, existing, { ...checked, ownerId }, entry.secret);
    }
    const view = await credentials.add(by, { ...checked, secret: entry.secret, validate: false });
    // A credential that was disabled (or found invalid upstream) stays out of use after the move.
    if (entry.status !== 'active') await credentials.disable(by, view.id);
    else if (entry.preferred && !view.preferred) await credentials.use(by, view.id);
    return 'imported';
  }

  async function replaceSecret(
    by: Actor,
    existing: CredentialRow,
    wanted: Checked,
    secret: string,
  ): Promise<Outcome> {
    // Never move a secret into a credential that serves another provider or another owner.
    if (existing.provider !== wanted.provider) {
      return {
        skipped: `exists as a ${existing.provider} credential, the bundle has ${wanted.provider}; not replaced`,
      };
    }
    if (existing.owner_type !== wanted.owner.type || existing.owner_id !== wanted.ownerId) {
      return { skipped: 'exists with a different owner; not replaced' };
    }
    await credentials.rotate(by, existing.id, secret, false);
    // rotate() reactivates the credential; one that was disabled here stays disabled.
    if (existing.status === 'inactive') await credentials.disable(by, existing.id);
    return 'replaced';
  }

  /** The owner's id (null for the org), or undefined when that team or user does not exist here. */
  async function findOwner(owner: OwnerRef): Promise<string | null | undefined> {
    if (owner.type === 'org') return null;
    const lookup = owner.type === 'team' ? deps.teams.get(owner.name) : deps.users.get(owner.name);
    return lookup.then(
      (row) => row.id,
      (error: unknown) => {
        if (isAppError(error) && error.code === 'not_found') return undefined;
        throw error;
      },
    );
  }

  async function findCredential(name: string): Promise<CredentialRow | null> {
    return credentials.get(name).catch((error: unknown) => {
      if (isAppError(error) && error.code === 'not_found') return null;
      throw error;
    });
  }

  return { exportAll, importAll };
}

/** Narrows a bundle entry to the credential service's types; refusals name the field. */
function checkEntry(entry: BundleEntry): Omit<Checked, 'ownerId'> {
  return {
    name: validateName('credential', entry.name),
    provider: oneOf<Provider>('provider', entry.provider, PROVIDERS),
    owner: parseOwner(entry.owner),
    environment:
      entry.environment === null ? null : oneOf<Environment>('environment', entry.environment, ENVIRONMENTS),
  };
}

export type BundleService = ReturnType<typeof createBundleService>;
