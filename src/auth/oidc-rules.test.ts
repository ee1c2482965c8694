// The single sign-on rules on their own: domain, verified email, groups → role and team, and who the
// claims belong to (bound, bound now by email, created, or refused).
import { describe, expect, it } from 'vitest';
import {
  baseNameOf,
  type Candidates,
  claimsOf,
  decideAccess,
  type KnownPerson,
  nthName,
  type OidcClaims,
  type OidcRules,
  placementOf,
  REFUSED,
} from './oidc-rules.js';

const claims = (over: Partial<OidcClaims> = {}): OidcClaims => ({
  sub: 's1',
  email: 'ada@example.com',
  emailVerified: true,
  preferredUsername: 'ada',
  groups: [],
  ...over,
});
const person = (over: Partial<KnownPerson> = {}): KnownPerson => ({
  id: 'usr_1',
  role: 'member',
  disabled: false,
  removed: false,
  oidcSubject: null,
  ...over,
});
const none: Candidates = { bySubject: null, byEmail: [] };
const open: OidcRules = { allowed_domains: [], group_map: {} };
const mapped: OidcRules = {
  allowed_domains: [],
  group_map: {
    eng: { team: 'platform' },
    ops: { team: 'ops', role: 'admin' },
    staff: { role: 'member' },
  },
};

describe('domain and verified email', () => {
  it('lets an allowed domain in (any case) and refuses another, even for a bound person', () => {
    const rules = { allowed_domains: ['example.com'], group_map: {} };
    expect(decideAccess(claims({ email: 'Ada@EXAMPLE.com' }), rules, none)).toMatchObject({
      kind: 'allow',
      person: { kind: 'create' },
    });
    const bound = { bySubject: person({ oidcSubject: 'i|s1' }), byEmail: [] };
    expect(decideAccess(claims({ email: 'ada@evil.test' }), rules, bound)).toEqual({
      kind: 'refuse',
      reason: REFUSED.domain,
    });
    expect(decideAccess(claims({ email: null }), rules, bound)).toMatchObject({ kind: 'refuse' });
  });

  it('refuses email_verified false, accepts true or absent', () => {
    const bound = { bySubject: person(), byEmail: [] };
    expect(decideAccess(claims({ emailVerified: false }), open, bound)).toEqual({
      kind: 'refuse',
      reason: REFUSED.unverified,
    });
    expect(decideAccess(claims({ emailVerified: null }), open, bound).kind).toBe('allow');
    expect(decideAccess(claims(), open, bound).kind).toBe('allow');
  });
});

describe('groups → role and team', () => {
  it('admin when any mapped group says admin; team of the first mapped group (config order) naming one', () => {
    expect(placementOf(['ops', 'eng'], mapped)).toEqual({
      placement: { role: 'admin', team: 'platform' },
      mapped: true,
    });
    expect(placementOf(['staff'], mapped)).toEqual({
      placement: { role: 'member', team: null },
      mapped: true,
    });
    expect(placementOf(['unknown'], mapped)).toEqual({
      placement: { role: 'member', team: null },
      mapped: false,
    });
  });

  it('leaves role and team alone when no group_map is configured', () => {
    expect(placementOf(['ops'], open)).toEqual({
      placement: { role: undefined, team: undefined },
      mapped: false,
    });
  });
});

describe('who signs in', () => {
  it('the person bound to the subject', () => {
    const found = { bySubject: person({ id: 'usr_b', oidcSubject: 'i|s1' }), byEmail: [] };
    expect(decideAccess(claims(), open, found)).toMatchObject({
      kind: 'allow',
      person: { kind: 'existing', id: 'usr_b', bind: false },
    });
  });

  it('binds the one unbound person with the email; refuses two, or one bound elsewhere', () => {
    expect(
      decideAccess(claims(), open, { bySubject: null, byEmail: [person({ id: 'usr_e' })] }),
    ).toMatchObject({
      kind: 'allow',
      person: { kind: 'existing', id: 'usr_e', bind: true },
    });
    expect(
      decideAccess(claims(), open, { bySubject: null, byEmail: [person(), person({ id: 'usr_2' })] }),
    ).toEqual({ kind: 'refuse', reason: REFUSED.ambiguous });
    expect(
      decideAccess(claims(), open, { bySubject: null, byEmail: [person({ oidcSubject: 'i|other' })] }),
    ).toEqual({ kind: 'refuse', reason: REFUSED.boundElsewhere });
  });

  it('creates a stranger only by the domain rule or a mapped group', () => {
    expect(decideAccess(claims(), open, none)).toEqual({ kind: 'refuse', reason: REFUSED.noAccount });
    expect(decideAccess(claims({ groups: ['unknown'] }), mapped, none)).toEqual({
      kind: 'refuse',
      reason: REFUSED.noAccount,
    });
    expect(decideAccess(claims({ groups: ['eng'] }), mapped, none)).toEqual({
      kind: 'allow',
      person: { kind: 'create' },
      placement: { role: 'member', team: 'platform' },
    });
  });

  it('refuses disabled, removed and service accounts', () => {
    for (const who of [person({ disabled: true }), person({ removed: true })])
      expect(decideAccess(claims(), open, { bySubject: who, byEmail: [] })).toEqual({
        kind: 'refuse',
        reason: REFUSED.disabled,
      });
    expect(decideAccess(claims(), open, { bySubject: null, byEmail: [person({ role: 'service' })] })).toEqual(
      {
        kind: 'refuse',
        reason: REFUSED.service,
      },
    );
  });
});

describe('claims and names', () => {
  it('reads the claims defensively', () => {
    expect(claimsOf({ sub: '' }, 'groups')).toBeNull();
    expect(
      claimsOf(
        { sub: 'x', email: 'a@b.co', email_verified: 'false', roles: ['a', 3], groups: 'nope' },
        'roles',
      ),
    ).toEqual({
      sub: 'x',
      email: 'a@b.co',
      emailVerified: false,
      preferredUsername: null,
      groups: ['a'],
    });
  });

  it('derives a valid base name and numbered alternatives', () => {
    expect(baseNameOf(claims({ preferredUsername: 'Ada Lovelace!' }))).toBe('Ada-Lovelace-');
    expect(baseNameOf(claims({ preferredUsername: null, email: '_x.y@example.com' }))).toBe('x.y');
    expect(baseNameOf(claims({ preferredUsername: '***', email: 'jo@x.io' }))).toBe('jo');
    expect(baseNameOf(claims({ preferredUsername: '***', email: null }))).toBe('user');
    expect(baseNameOf(claims({ preferredUsername: 'a'.repeat(100) })).length).toBe(56);
    expect([1, 2, 3].map((n) => nthName('ada', n))).toEqual(['ada', 'ada-2', 'ada-3']);
  });
});
