import { describe, expect, it } from 'vitest';
import { AppError } from '../lib/errors.js';
import { assertNoSecret, looksSecret, MAX_AUDIT_STRING, parseDetails, serializeDetails } from './details.js';

const SECRETS = [
  'sk-ant-api03-R2D2xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxigAA',
  'SK-ANT-ADMIN01-abcdef',
  'prefix sk-ant-oat01-zzz suffix',
  `tg_${'A1b2'.repeat(11)}`,
  `key was tga_${'x'.repeat(20)}`,
  'y'.repeat(MAX_AUDIT_STRING + 1),
];

const REFERENCES = [
  'key_3kTMd9Zq0pB7vXy2LcN1aQ',
  'cred_3kTMd9Zq0pB7vXy2LcN1aQ',
  'sk-ant-api03-R2D...igAA'.slice(0, 6), // a bare "sk-ant" prefix without a version is not a key
  'tg_short',
  'stg_aaaaaaaaaaaaaaaaaaaaaaaaaaaaa', // no word boundary before tg_
  'y'.repeat(MAX_AUDIT_STRING),
];

function refusal(fn: () => unknown): AppError {
  try {
    fn();
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('looksSecret', () => {
  it.each(SECRETS)('flags %s', (text) => expect(looksSecret(text)).toBe(true));
  it.each(REFERENCES)('lets %s through', (text) => expect(looksSecret(text)).toBe(false));
});

describe('serializeDetails', () => {
  it('sorts keys so equal details serialise identically', () => {
    expect(serializeDetails({ b: 1, a: 'x', c: null, d: true })).toBe('{"a":"x","b":1,"c":null,"d":true}');
    expect(serializeDetails(undefined)).toBe('{}');
  });

  it.each(SECRETS)('refuses a secret-looking value without echoing it (%#)', (secret) => {
    const error = refusal(() => serializeDetails({ name: 'ok', note: secret }));
    expect(error.code).toBe('internal');
    expect(error.message).toContain('details.note');
    expect(error.message).not.toContain(secret);
    expect(JSON.stringify(error.details)).not.toContain(secret);
  });

  it('refuses a secret used as a key, and non-finite numbers', () => {
    const secretKey = `tg_${'Q'.repeat(30)}`;
    const error = refusal(() => serializeDetails({ [secretKey]: 1 }));
    expect(error.message).not.toContain(secretKey);
    expect(refusal(() => serializeDetails({ n: Number.NaN })).code).toBe('internal');
    expect(refusal(() => serializeDetails({ n: Number.POSITIVE_INFINITY })).code).toBe('internal');
  });
});

describe('assertNoSecret', () => {
  it('checks top-level fields and ignores null', () => {
    expect(() => assertNoSecret('target_id', null)).not.toThrow();
    expect(() => assertNoSecret('target_id', 'key_abc')).not.toThrow();
    expect(refusal(() => assertNoSecret('target_id', `tg_${'Z'.repeat(40)}`)).message).toContain('target_id');
  });
});

describe('parseDetails', () => {
  it('round-trips serialised details and tolerates tampered text', () => {
    expect(parseDetails(serializeDetails({ a: 1, b: 'x', c: null, d: false }))).toEqual({
      a: 1,
      b: 'x',
      c: null,
      d: false,
    });
    expect(parseDetails('not json')).toEqual({});
    expect(parseDetails('[1,2]')).toEqual({});
    expect(parseDetails('{"a":{"nested":1},"b":2}')).toEqual({ b: 2 });
  });
});
