// Obviously fake canary secrets and the encoded forms a leak could take.
import { randomBytes } from 'node:crypto';

/** The last four characters of each canary issued in this process (see below). */
const tails = new Set<string>();

/**
 * A unique fake Anthropic key shaped like a real one (prefix, length, `AA` at the end) but marked as a
 * test value. Anthropic's `partial_key_hint` shows a key's first 16 and last 4 characters, and the first
 * 16 are the same for every canary: each canary of a process gets last four characters of its own, so
 * two canaries never share a hint by chance (tests match keys to credentials through it).
 */
export function canaryAnthropicKey(kind: 'api03' | 'admin01' = 'api03'): string {
  for (;;) {
    const body = randomBytes(60).toString('base64url').replace(/[-_]/g, 'x');
    const key = `sk-ant-${kind}-test-canary-${body}AA`;
    // 62² tails: after thousands of canaries in one process, sharing one is allowed again.
    if (!tails.has(key.slice(-4)) || tails.size > 3_000) {
      tails.add(key.slice(-4));
      return key;
    }
  }
}

/** Forms of a secret to search for: raw, base64 (every alignment), base64url, hex, URL-encoded. */
export function leakForms(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const forms = new Set<string>([
    secret,
    bytes.toString('hex'),
    bytes.toString('hex').toUpperCase(),
    encodeURIComponent(secret),
  ]);
  for (let offset = 0; offset < 3; offset++) {
    // A substring of base64 that only depends on bytes[offset..]: drop the partial first and last groups.
    const b64 = bytes.subarray(offset).toString('base64');
    forms.add(b64.slice(4, -4));
    forms.add(bytes.subarray(offset).toString('base64url').slice(4, -4));
  }
  return [...forms].filter((f) => f.length >= 12);
}

export function findLeaks(haystack: Buffer | string, secrets: readonly string[]): string[] {
  const text = typeof haystack === 'string' ? haystack : haystack.toString('latin1');
  const found: string[] = [];
  for (const secret of secrets) {
    for (const form of leakForms(secret)) {
      const needle = typeof haystack === 'string' ? form : Buffer.from(form, 'utf8').toString('latin1');
      if (text.includes(needle)) found.push(`${secret.slice(0, 20)}… as ${form.slice(0, 12)}…`);
    }
  }
  return found;
}
