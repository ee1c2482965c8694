import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  openField,
  PURGED,
  revealDetails,
  sealDetails,
  sealedSubject,
  sealField,
  subjectOf,
  UNREADABLE,
} from './personal.js';

const key = randomBytes(32);

describe('personal audit fields', () => {
  it('seals only the listed fields of the listed actions, bound to the person and the field', () => {
    const details = { name: 'zoe-example', role: 'member', monthly_budget_micro: 5 };
    expect(subjectOf('user.add', 'usr_1', details)).toBe('usr_1');
    // Control: an action without personal fields, and a subject that is not a person id.
    expect(subjectOf('team.add', 'team_1', { name: 'red' })).toBeNull();
    expect(subjectOf('session.open', 'ses_1', { ip: '192.0.2.1' })).toBeNull();
    expect(subjectOf('session.open', 'ses_1', { ip: '192.0.2.1', user_id: 'usr_2' })).toBe('usr_2');

    const sealed = sealDetails('user.add', 'usr_1', key, details);
    expect(sealed.role).toBe('member');
    expect(sealed.monthly_budget_micro).toBe(5);
    expect(String(sealed.name)).not.toContain('zoe');
    expect(sealedSubject(sealed.name)).toBe('usr_1');
    expect(openField(key, 'name', String(sealed.name))).toBe('zoe-example');
    // Moved to another field, or relabelled with another person: does not open.
    expect(openField(key, 'email', String(sealed.name))).toBeNull();
    const relabelled = String(sealed.name).replace('usr_1', 'usr_9');
    expect(openField(key, 'name', relabelled)).toBeNull();
    // Already sealed: left as it is (the reseal is idempotent).
    expect(sealDetails('user.add', 'usr_1', key, sealed)).toEqual(sealed);
    // A purged person (no key): never written in the clear.
    expect(sealDetails('user.add', 'usr_1', null, details).name).toBe(PURGED);
  });

  it('reveals with the key, shows [purged] without it and [unreadable] when tampered', () => {
    const value = sealField(key, 'usr_1', 'name', 'zoe-example');
    const details = { name: value, role: 'member' };
    expect(revealDetails(details, new Map([['usr_1', key]]))).toEqual({
      name: 'zoe-example',
      role: 'member',
    });
    expect(revealDetails(details, new Map([['usr_1', null]]))).toEqual({ name: PURGED, role: 'member' });
    expect(revealDetails(details, new Map())).toEqual({ name: PURGED, role: 'member' });
    expect(revealDetails(details, new Map([['usr_1', randomBytes(32)]])).name).toBe(UNREADABLE);
    const body = value.slice(value.lastIndexOf(':') + 1);
    const bytes = Buffer.from(body, 'base64');
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
    const flipped = `${value.slice(0, value.lastIndexOf(':') + 1)}${bytes.toString('base64')}`;
    expect(revealDetails({ name: flipped }, new Map([['usr_1', key]])).name).toBe(UNREADABLE);
    // Plain details pass through untouched (the same object).
    const plain = { role: 'member' };
    expect(revealDetails(plain, new Map())).toBe(plain);
  });
});
