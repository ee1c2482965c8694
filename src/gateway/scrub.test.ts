import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildScrubTable, redact, redactText, WINDOW } from './scrub.js';

// Key-like characters (what Anthropic keys and gateway keys are made of) and some punctuation a
// secret of another provider may hold; '[' and ']' are left out: they are the redaction mark's.
const SECRET_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+/=:!$%@';
const TEXT_CHARS = `${SECRET_CHARS} "{},\n`;

const secretArb = fc
  .array(fc.constantFrom(...SECRET_CHARS), { minLength: WINDOW, maxLength: 140 })
  .map((chars) => chars.join(''));
const textArb = fc
  .array(fc.constantFrom(...TEXT_CHARS), { minLength: 0, maxLength: 80 })
  .map((chars) => chars.join(''));

/** The encodings an echo may use, written independently of scrub.ts (whole-string encodings). */
const ENCODINGS: Record<string, (s: string) => string> = {
  raw: (s) => s,
  base64: (s) => Buffer.from(s).toString('base64'),
  base64url: (s) => Buffer.from(s).toString('base64url'),
  hex: (s) => Buffer.from(s).toString('hex'),
  HEX: (s) => Buffer.from(s).toString('hex').toUpperCase(),
  url: (s) => encodeURIComponent(s),
};

function windowsOf(text: string): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i + WINDOW <= text.length; i++) out.add(text.slice(i, i + WINDOW));
  return out;
}

describe('redact', () => {
  it('removes any 24+ character substring of a secret in any encoding (property)', () => {
    fc.assert(
      fc.property(
        secretArb,
        fc.nat(),
        fc.nat(),
        fc.constantFrom(...Object.keys(ENCODINGS)),
        textArb,
        textArb,
        fc.array(secretArb, { maxLength: 3 }),
        (secret, a, b, encoding, before, after, others) => {
          const start = a % (secret.length - WINDOW + 1);
          const end = start + WINDOW + (b % (secret.length - start - WINDOW + 1));
          const fragment = secret.slice(start, end);
          const encode = ENCODINGS[encoding] as (s: string) => string;
          const embedded = encode(fragment);
          const table = buildScrubTable([...others, secret]);
          const out = redact(Buffer.from(before + embedded + after), [table]).toString();
          // No window of the output is a window of the embedded encoding...
          const leaked = windowsOf(embedded);
          for (const w of windowsOf(out))
            expect(leaked.has(w), `${encoding} window ${w} in ${out}`).toBe(false);
          // ...nor of the whole secret in any encoding (aligned forms of every substring included).
          for (const enc of Object.values(ENCODINGS)) {
            const whole = windowsOf(enc(secret));
            for (const w of windowsOf(out)) expect(whole.has(w)).toBe(false);
          }
        },
      ),
      { seed: 11, numRuns: 300 },
    );
  });

  it('leaves a body without secrets byte for byte unchanged (the same buffer)', () => {
    fc.assert(
      fc.property(secretArb, fc.string({ maxLength: 400 }), (secret, text) => {
        fc.pre(!text.includes(secret.slice(0, WINDOW)));
        const body = Buffer.from(`{"type":"error","error":{"message":${JSON.stringify(text)}}}`);
        const table = buildScrubTable([secret]);
        const out = redact(body, [table]);
        // Only a 24-byte run of the secret (in some form) could change it; random text has none.
        expect(out).toBe(body);
      }),
      { seed: 12, numRuns: 200 },
    );
  });

  it('redacts the exact key, its first 40 characters and its base64 form, in bodies and header values', () => {
    const secret = `sk-ant-api03-test-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ-xyzAA`;
    const table = buildScrubTable([secret]);
    const body = `{"error":{"message":"bad key ${secret} / ${secret.slice(0, 40)} / ${Buffer.from(secret).toString('base64')}"}}`;
    const out = redact(Buffer.from(body), [table]).toString();
    // The base64 form's padding is not part of the secret and stays.
    expect(out).toBe('{"error":{"message":"bad key [redacted] / [redacted] / [redacted]=="}}');
    expect(redactText(`id-${secret.slice(10, 40)}`, [table])).toBe('id-[redacted]');
    expect(redactText('req_011CSHoEeqs5C35K2UUqLbar', [table])).toBe('req_011CSHoEeqs5C35K2UUqLbar');
  });

  it('keeps 23-character runs (below the window) and scrubs short secrets only whole', () => {
    const secret = 'sk-ant-api03-test-0123456789abcdefghijklmnop';
    const table = buildScrubTable([secret, 'shortpw1']);
    const body = Buffer.from(`${secret.slice(0, 23)} and shortpw1`);
    expect(redact(body, [table]).toString()).toBe(`${secret.slice(0, 23)} and [redacted]`);
  });

  it('scans a 1 MB body in time linear in its size, with many secrets loaded', () => {
    const secrets = Array.from(
      { length: 200 },
      (_, i) => `sk-ant-api03-test-${i}-${'k'.repeat(10)}${i * 7919}xyz`,
    );
    const table = buildScrubTable(secrets);
    const body = Buffer.alloc(1024 * 1024, 'a');
    const started = performance.now();
    const out = redact(body, [table]);
    const ms = performance.now() - started;
    expect(out).toBe(body);
    // A quadratic or per-secret scan of 1 MB × 200 secrets takes seconds; the rolling scan takes ~10 ms.
    expect(ms).toBeLessThan(1000);
  });
});
