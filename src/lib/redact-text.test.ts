import { describe, expect, it } from 'vitest';
import { redactSecretShapes } from './redact-text.js';

describe('redactSecretShapes', () => {
  it('cuts every secret shape Tollgate handles, and leaves ids and ordinary words', () => {
    const text =
      'no gateway key with id tg_HMcmpqNjd2wdKgetWBUkwRx6iWgOFQ, token tga_1mDXXsWNEyFHhiFLh6K0, ' +
      'key sk-ant-api03-abcdEFGH_ij, gh ghp_abcdefghijklmnop12, linear lin_api_abcdefghijklmnop';
    const out = redactSecretShapes(text);
    expect(out).toBe(
      'no gateway key with id [redacted], token [redacted], key [redacted], gh [redacted], linear [redacted]',
    );
    expect(redactSecretShapes('no gateway key with id key_7SgSAyuuOky9Ux8arPTdnX; team tg_x')).toBe(
      'no gateway key with id key_7SgSAyuuOky9Ux8arPTdnX; team tg_x',
    );
  });
});
