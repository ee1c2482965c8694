import { describe, expect, it } from 'vitest';
import { parseJsonObject, scanJson } from './json-body.js';

describe('JSON bodies', () => {
  it('measures nesting and ignores brackets inside strings', () => {
    // Nested 3 deep (the brackets in the string do not count): within 3, beyond 2.
    expect(scanJson(Buffer.from('{"a":[{"b":"[[[{{{"}]}'), 3).kind).toBe('ok');
    expect(scanJson(Buffer.from('{"a":[{"b":"[[[{{{"}]}'), 2).kind).toBe('too-deep');
    // A string with an escaped quote and a brace: nesting 0.
    expect(scanJson(Buffer.from('"\\"{"'), 0).kind).toBe('ok');
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

describe('duplicate keys', () => {
  const parse = (text: string) => parseJsonObject(Buffer.from(text), 64);

  it('refuses a key given twice, naming it, beside the same keys given once', () => {
    expect(parse('{"model":"claude-opus-4-1","max_tokens":1,"model":"claude-haiku-4-5"}')).toEqual({
      ok: false,
      message: 'the request body has the key "model" twice; send each key once',
    });
    expect(parse('{"model":"claude-opus-4-1","max_tokens":1,"modelx":"claude-haiku-4-5"}').ok).toBe(true);
  });

  it('compares keys after unescaping, as JSON.parse reads them', () => {
    expect(parse('{"model":"a","mo\\u0064el":"b"}')).toMatchObject({ ok: false, message: /"model" twice/ });
    expect(parse('{"m\\"":"a","m\\u0022":"b"}')).toMatchObject({ ok: false });
    expect(parse('{"m\\\\":"a","m\\"":"b"}').ok).toBe(true); // m\ and m" differ
    expect(parse('{"\\u00e9":1,"é":2}')).toMatchObject({ ok: false });
  });

  it('finds duplicates at any depth and names their path', () => {
    expect(
      parse(
        '{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","type":"x"}]}]}',
      ),
    ).toEqual({
      ok: false,
      message: 'the request body has the key "messages[0].content[1].type" twice; send each key once',
    });
    // The same key in sibling and nested objects is not a duplicate.
    expect(parse('{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}],"c":{"b":1}}').ok).toBe(true);
  });

  it('ignores key-like text inside string values', () => {
    expect(parse('{"text":"{\\"a\\":1,\\"a\\":2}","other":"\\"text\\""}').ok).toBe(true);
  });

  it('handles objects with thousands of keys in linear time', () => {
    const many = Array.from({ length: 50_000 }, (_, i) => `"k${i}":${i}`).join(',');
    expect(parse(`{${many}}`).ok).toBe(true);
    expect(parse(`{${many},"k49999":0}`)).toMatchObject({ ok: false, message: /"k49999" twice/ });
    expect(parse(`{${many},"k0":0}`)).toMatchObject({ ok: false, message: /"k0" twice/ });
    const t0 = performance.now();
    parse(`{${many}}`);
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it('leaves no state behind between scans', () => {
    expect(parse('{"a":{"b":{"c":1,"c":2').ok).toBe(false);
    expect(parse('{"a":{"b":{"c":1}}}').ok).toBe(true);
    expect(scanJson(Buffer.from('{"c":1}'), 64)).toEqual({ kind: 'ok' });
  });
});
