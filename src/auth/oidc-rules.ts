// Who may sign in with single sign-on, and as what: the pure rules applied to the identity provider's
// claims at every sign-in and at every session recheck (email domain, groups → role and team, binding
// to an existing person or creating one). No I/O: the caller looks the people up and applies the result.
import type { UserRole } from '../db/schema.js';

export interface OidcRules {
  readonly allowed_domains: readonly string[];
  /** Provider group → team and role; its key order is the order "first mapped group" follows. */
  readonly group_map: Readonly<
    Record<string, { readonly team?: string; readonly role?: 'admin' | 'member' }>
  >;
}

/** What the rules read from the ID token and userinfo. */
export interface OidcClaims {
  readonly sub: string;
  readonly email: string | null;
  /** null when the provider did not say. */
  readonly emailVerified: boolean | null;
  readonly preferredUsername: string | null;
  readonly groups: readonly string[];
}

/** A Tollgate person the claims may belong to. */
export interface KnownPerson {
  readonly id: string;
  readonly role: UserRole;
  readonly disabled: boolean;
  readonly removed: boolean;
  /** `${issuer}|${sub}` once bound. */
  readonly oidcSubject: string | null;
}

export interface Candidates {
  /** The person bound to this subject (removed ones included: they are refused, not re-created). */
  readonly bySubject: KnownPerson | null;
  /** Live people whose email equals the claimed one (case-insensitive). */
  readonly byEmail: readonly KnownPerson[];
}

/** Role and team the groups give; undefined fields stay as they are (no group_map configured). */
export interface Placement {
  readonly role: 'admin' | 'member' | undefined;
  /** A team name, null for none, undefined to leave as is. */
  readonly team: string | null | undefined;
}

export type AccessDecision =
  | { readonly kind: 'refuse'; readonly reason: string }
  | {
      readonly kind: 'allow';
      readonly person:
        | { readonly kind: 'existing'; readonly id: string; readonly bind: boolean }
        | { readonly kind: 'create' };
      readonly placement: Placement;
    };

export const REFUSED = {
  unverified: 'your email address is not verified at the identity provider',
  domain: 'your email domain may not sign in to this Tollgate',
  noAccount: 'there is no Tollgate account for you; ask an administrator to add you',
  ambiguous: 'more than one Tollgate account has your email address; ask an administrator',
  boundElsewhere: 'your email address belongs to another single sign-on identity; ask an administrator',
  disabled: 'your Tollgate account is disabled; ask an administrator',
  service: 'service accounts cannot sign in',
} as const;

/** The rules in their order: email verified → domain → groups → who the person is. */
export function decideAccess(claims: OidcClaims, rules: OidcRules, found: Candidates): AccessDecision {
  if (claims.emailVerified === false) return refuse(REFUSED.unverified);
  const domain = domainOf(claims.email);
  const domainRule = rules.allowed_domains.length > 0;
  if (domainRule && (domain === null || !rules.allowed_domains.includes(domain)))
    return refuse(REFUSED.domain);
  const { placement, mapped } = placementOf(claims.groups, rules);

  if (found.bySubject) {
    const standing = standingOf(found.bySubject);
    if (standing) return refuse(standing);
    return { kind: 'allow', person: { kind: 'existing', id: found.bySubject.id, bind: false }, placement };
  }
  if (found.byEmail.length > 1) return refuse(REFUSED.ambiguous);
  const byEmail = found.byEmail[0];
  if (byEmail) {
    if (byEmail.oidcSubject !== null) return refuse(REFUSED.boundElsewhere);
    const standing = standingOf(byEmail);
    if (standing) return refuse(standing);
    return { kind: 'allow', person: { kind: 'existing', id: byEmail.id, bind: true }, placement };
  }
  // A stranger is let in only by a rule an admin wrote for it: their domain, or one of their groups.
  if (!(domainRule || mapped)) return refuse(REFUSED.noAccount);
  return { kind: 'allow', person: { kind: 'create' }, placement };
}

/** Role = admin when any mapped group says so; team = that of the first mapped group naming one. */
export function placementOf(
  groups: readonly string[],
  rules: Pick<OidcRules, 'group_map'>,
): { placement: Placement; mapped: boolean } {
  const entries = Object.entries(rules.group_map);
  if (entries.length === 0) return { placement: { role: undefined, team: undefined }, mapped: false };
  const mine = entries.filter(([group]) => groups.includes(group)).map(([, target]) => target);
  const role = mine.some((t) => t.role === 'admin') ? 'admin' : 'member';
  const team = mine.find((t) => t.team !== undefined)?.team ?? null;
  return { placement: { role, team }, mapped: mine.length > 0 };
}

function standingOf(person: KnownPerson): string | null {
  if (person.removed || person.disabled) return REFUSED.disabled;
  if (person.role === 'service') return REFUSED.service;
  return null;
}

function refuse(reason: string): AccessDecision {
  return { kind: 'refuse', reason };
}

export function domainOf(email: string | null): string | null {
  if (email === null) return null;
  const at = email.lastIndexOf('@');
  return at > 0 && at < email.length - 1 ? email.slice(at + 1).toLowerCase() : null;
}

/** Reads the claims the rules use from the provider's (untrusted-shape) claim set. */
export function claimsOf(raw: Readonly<Record<string, unknown>>, groupsClaim: string): OidcClaims | null {
  const sub = raw.sub;
  if (typeof sub !== 'string' || sub === '') return null;
  const email = typeof raw.email === 'string' && raw.email.length <= 254 ? raw.email : null;
  const verified = raw.email_verified;
  const groups = raw[groupsClaim];
  return {
    sub,
    email,
    // Some providers send "true"/"false" as strings.
    emailVerified:
      typeof verified === 'boolean'
        ? verified
        : verified === 'false'
          ? false
          : verified === 'true'
            ? true
            : null,
    preferredUsername: typeof raw.preferred_username === 'string' ? raw.preferred_username : null,
    groups: Array.isArray(groups) ? groups.filter((g): g is string => typeof g === 'string') : [],
  };
}

const NAME_CHARS = /[^A-Za-z0-9._@-]+/g;

/** A valid user name for a new person (validateName's alphabet), before making it unique. */
export function baseNameOf(claims: OidcClaims): string {
  for (const source of [claims.preferredUsername, claims.email?.split('@')[0]]) {
    const cleaned = (source ?? '')
      .replace(NAME_CHARS, '-')
      .replace(/^[^A-Za-z0-9]+/, '')
      .slice(0, 56);
    if (cleaned !== '') return cleaned;
  }
  return 'user';
}

/** The n-th candidate name: base, base-2, base-3, … */
export function nthName(base: string, n: number): string {
  return n <= 1 ? base : `${base}-${n}`;
}
