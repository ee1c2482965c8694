import { describe, expect, it } from 'vitest';
import { jsonDepth, parseJsonObject } from './json-body.js';

describe('JSON bodies', () => {
  it('measures nesting and ignores brackets inside strings', () => {
    expect(jsonDepth(Buffer.from('{"a":[{"b":"[[[{{{"}]}'), 10)).toBe(3);
    expect(jsonDepth(Buffer.from('"\\"{"'), 10)).toBe(0);
  });

  it('refuses bodies nested beyond the limit without parsing them', () => {
    const deep = Buffer.from(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    expect(parseJsonObject(deep, 64)).toEqual({
      ok: false,
      message: 'the request body is nested deeper than 64 levels',
    });
  });

  it('accepts objects only', () => {
    expect(parseJsonObject(Buffer.from('{"model":"x"}'), 8)).toEqual({ ok: true, value: { model: 'x' } });
    expect(parseJsonObject(Buffer.from('[1]'), 8)).toMatchObject({ ok: false });
    expect(parseJsonObject(Buffer.from('{"a":'), 8)).toMatchObject({
      ok: false,
      message: 'the request body is not valid JSON',
    });
    expect(parseJsonObject(Buffer.alloc(0), 8)).toMatchObject({ ok: false });
  });
});
