import { describe, expect, it } from 'vitest';
import { type AppError, isAppError } from '../lib/errors.js';
import {
  type BundleEntry,
  MIN_PASSPHRASE_CHARS,
  openBundle,
  readBundleHeader,
  sealBundle,
} from './bundle.js';

// Small scrypt cost for speed; one test below uses the defaults.
const small = { N: 2 ** 10, r: 8, p: 1 };
const passphrase = 'correct horse battery staple';
const secret = 'sk-ant-api03-test-bundle-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVAA';
const entries: BundleEntry[] = [
  {
    name: 'org-key',
    provider: 'anthropic',
    owner: 'org',
    environment: null,
    status: 'active',
    preferred: true,
    hint: 'sk-ant-api03-tes...UVAA',
    secret,
    created_at: '2025-01-02T03:04:05.000Z',
  },
  {
    name: 'gh',
    provider: 'github',
    owner: 'user:alice',
    environment: 'prod',
    status: 'inactive',
    preferred: false,
    hint: '...QQQQ',
    secret: `ghp_test${'Q'.repeat(32)}`,
    created_at: '2025-02-03T04:05:06.000Z',
  },
];

async function refusal(promise: Promise<unknown>): Promise<AppError> {
  try {
    await promise;
  } catch (error) {
    if (isAppError(error)) return error;
    throw error;
  }
  throw new Error('the bundle was opened');
}

/** Decodes a base64 field, lets `edit` change the bytes, and writes it back (a valid, changed file). */
function editBase64(text: string, path: string[], edit: (bytes: Buffer) => void): string {
  const doc = JSON.parse(text) as Record<string, unknown>;
  let holder = doc;
  for (const key of path.slice(0, -1)) holder = holder[key] as Record<string, unknown>;
  const last = path.at(-1)!;
  const bytes = Buffer.from(holder[last] as string, 'base64');
  edit(bytes);
  holder[last] = bytes.toString('base64');
  return JSON.stringify(doc);
}

function editField(text: string, edit: (doc: Record<string, unknown>) => void): string {
  const doc = JSON.parse(text) as Record<string, unknown>;
  edit(doc);
  return JSON.stringify(doc);
}

const expectTampered = async (text: string) => {
  const error = await refusal(openBundle(text, passphrase));
  expect(error.code).toBe('decryption_failed');
  expect(error.message).toBe('the bundle could not be opened: wrong passphrase or the file was modified');
};

describe('credential bundles', () => {
  it('round-trips entries and keeps secrets out of the envelope', async () => {
    const text = await sealBundle(entries, passphrase, { scrypt: small, now: Date.UTC(2025, 5, 1) });
    const doc = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(doc).sort()).toEqual([
      'cipher',
      'ciphertext',
      'created_at',
      'format',
      'kdf',
      'version',
    ]);
    expect(doc).toMatchObject({
      format: 'tollgate-credentials',
      version: 1,
      kdf: { name: 'scrypt', N: 1024, r: 8, p: 1 },
      cipher: { name: 'aes-256-gcm' },
      created_at: '2025-06-01T00:00:00.000Z',
    });
    expect(Buffer.from((doc.kdf as { salt: string }).salt, 'base64')).toHaveLength(16);
    expect(Buffer.from((doc.cipher as { iv: string }).iv, 'base64')).toHaveLength(12);
    for (const form of [secret, Buffer.from(secret).toString('base64').slice(4, -4), 'org-key', 'alice']) {
      expect(text).not.toContain(form);
    }
    const opened = await openBundle(text, passphrase);
    expect(opened.entries).toEqual(entries);
    expect(opened.createdAt).toBe('2025-06-01T00:00:00.000Z');
    expect(readBundleHeader(text).kdf.N).toBe(1024);
  });

  it('writes only the known fields of each entry and uses a fresh salt and IV every time', async () => {
    const extra = [{ ...entries[0]!, id: 'cred_123', note: 'x' }];
    const a = await sealBundle(extra, passphrase, { scrypt: small });
    const b = await sealBundle(extra, passphrase, { scrypt: small });
    expect((await openBundle(a, passphrase)).entries).toEqual([entries[0]]);
    expect(readBundleHeader(a).kdf.salt).not.toBe(readBundleHeader(b).kdf.salt);
    expect(readBundleHeader(a).cipher.iv).not.toBe(readBundleHeader(b).cipher.iv);
  });

  it('round-trips with the default scrypt cost (N=2^17) and records it', async () => {
    const text = await sealBundle(entries, passphrase);
    expect(readBundleHeader(text).kdf).toMatchObject({ N: 131072, r: 8, p: 1 });
    expect((await openBundle(text, passphrase)).entries).toEqual(entries);
  });

  it('refuses a wrong passphrase with the same message as tampering', async () => {
    const text = await sealBundle(entries, passphrase, { scrypt: small });
    const error = await refusal(openBundle(text, `${passphrase}!`));
    expect(error.code).toBe('decryption_failed');
    expect(error.message).toBe('the bundle could not be opened: wrong passphrase or the file was modified');
    expect((await refusal(openBundle(text, ''))).code).toBe('invalid_input');
  });

  it('refuses export passphrases shorter than 12 characters', async () => {
    const error = await refusal(sealBundle(entries, 'x'.repeat(MIN_PASSPHRASE_CHARS - 1), { scrypt: small }));
    expect(error.code).toBe('invalid_input');
    expect(error.message).toMatch(/at least 12 characters/);
    // Twelve characters, counted as characters rather than bytes or UTF-16 units.
    await expect(sealBundle([], '🔑'.repeat(12), { scrypt: small })).resolves.toContain('ciphertext');
  });

  it('normalises passphrases, so composed and decomposed accents open the same bundle', async () => {
    const text = await sealBundle(entries, 'caf\u00e9 au lait!!', { scrypt: small });
    expect((await openBundle(text, 'cafe\u0301 au lait!!')).entries).toEqual(entries);
  });

  it('refuses a flipped byte in the ciphertext, the tag, the IV and the salt', async () => {
    const text = await sealBundle(entries, passphrase, { scrypt: small });
    const flip = (at: (b: Buffer) => number) => (b: Buffer) => {
      const i = at(b);
      b[i] = b[i]! ^ 0x01;
    };
    await expectTampered(
      editBase64(
        text,
        ['ciphertext'],
        flip(() => 0),
      ),
    );
    await expectTampered(
      editBase64(
        text,
        ['ciphertext'],
        flip((b) => b.length - 1),
      ),
    );
    await expectTampered(
      editBase64(
        text,
        ['cipher', 'iv'],
        flip(() => 5),
      ),
    );
    await expectTampered(
      editBase64(
        text,
        ['kdf', 'salt'],
        flip(() => 15),
      ),
    );
  });

  it('authenticates the header: changed created_at or scrypt cost are refused', async () => {
    const text = await sealBundle(entries, passphrase, { scrypt: small });
    await expectTampered(editField(text, (d) => (d.created_at = '2024-06-01T00:00:00.000Z')));
    await expectTampered(editField(text, (d) => ((d.kdf as { N: number }).N = 2048)));
    await expectTampered(editField(text, (d) => ((d.kdf as { r: number }).r = 4)));
  });

  it('refuses every single-character change anywhere in the file', async () => {
    const text = JSON.stringify(JSON.parse(await sealBundle([entries[1]!], passphrase, { scrypt: small })));
    for (let i = 0; i < text.length; i++) {
      const replacement = text[i] === 'A' ? 'B' : 'A';
      const changed = text.slice(0, i) + replacement + text.slice(i + 1);
      const error = await refusal(openBundle(changed, passphrase));
      expect(['decryption_failed', 'invalid_input'], `change at ${i}`).toContain(error.code);
    }
  });

  it('refuses a truncated file', async () => {
    const text = await sealBundle(entries, passphrase, { scrypt: small });
    const cut = await refusal(openBundle(text.slice(0, Math.floor(text.length / 2)), passphrase));
    expect(cut.code).toBe('invalid_input');
    expect(cut.message).toMatch(/not JSON/);
    // A shortened ciphertext in an otherwise valid file fails authentication.
    await expectTampered(editField(text, (d) => (d.ciphertext = (d.ciphertext as string).slice(8))));
    const empty = await refusal(
      openBundle(
        editField(text, (d) => (d.ciphertext = 'AAAA')),
        passphrase,
      ),
    );
    expect(empty.message).toMatch(/too short/);
  });

  it('refuses files that are not bundles, naming what is wrong', async () => {
    const text = await sealBundle(entries, passphrase, { scrypt: small });
    const cases: Array<[string, RegExp]> = [
      ['hello', /not JSON/],
      ['', /not JSON/],
      ['[]', /expected a JSON object/],
      ['{"format":"something-else","version":1}', /"format" is not "tollgate-credentials"/],
      [editField(text, (d) => delete d.version), /"version" is missing/],
      [editField(text, (d) => (d.extra = 1)), /unexpected field "extra"/],
      [editField(text, (d) => ((d.kdf as { name: string }).name = 'pbkdf2')), /"kdf.name" is not "scrypt"/],
      [editField(text, (d) => ((d.cipher as { name: string }).name = 'aes-128-gcm')), /"cipher.name"/],
      [editField(text, (d) => ((d.cipher as { iv: string }).iv = 'AAAA')), /"cipher.iv" is not 12 bytes/],
      [
        editField(text, (d) => ((d.kdf as { salt: string }).salt = 'not base64!')),
        /"kdf.salt" is not base64/,
      ],
      [editField(text, (d) => (d.created_at = 'yesterday')), /"created_at" is not a date/],
      // A crafted cost must not make the importer allocate gigabytes before the passphrase is checked.
      [editField(text, (d) => Object.assign(d.kdf as object, { N: 2 ** 20, r: 32 })), /more than 1 GiB/],
    ];
    for (const [file, message] of cases) {
      const error = await refusal(openBundle(file, passphrase));
      expect(error.code, file.slice(0, 60)).toBe('invalid_input');
      expect(error.message).toMatch(message);
    }
  });

  it('refuses non-canonical base64 that would decode to the same bytes', async () => {
    const text = await sealBundle(entries, passphrase, { scrypt: small });
    const salt = readBundleHeader(text).kdf.salt; // 16 bytes: 22 characters and "=="; the last has spare bits
    const sibling = String.fromCharCode(salt.charCodeAt(21) + 1); // A→B, Q→R, g→h, w→x: same bytes
    const changed = editField(
      text,
      (d) => ((d.kdf as { salt: string }).salt = `${salt.slice(0, 21)}${sibling}==`),
    );
    expect(
      Buffer.from(`${salt.slice(0, 21)}${sibling}==`, 'base64').equals(Buffer.from(salt, 'base64')),
    ).toBe(true);
    const error = await refusal(openBundle(changed, passphrase));
    expect(error.code).toBe('invalid_input');
    expect(error.message).toMatch(/"kdf.salt" is not canonical base64/);
  });

  it('refuses a bundle from a future version with an upgrade hint', async () => {
    const text = await sealBundle(entries, passphrase, { scrypt: small });
    const error = await refusal(
      openBundle(
        editField(text, (d) => (d.version = 2)),
        passphrase,
      ),
    );
    expect(error.code).toBe('invalid_input');
    expect(error.message).toMatch(/bundle version 2 is not supported.*newer Tollgate/);
    expect(() => readBundleHeader(editField(text, (d) => (d.version = 0)))).toThrow(/version 0/);
  });
});
