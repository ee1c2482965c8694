// A sealed secret as one text value (meta rows hold text): JSON of base64 blobs and the key version.
import type { SealedSecret } from '../crypto/envelope.js';

export function encodeSealed(sealed: SealedSecret): string {
  return JSON.stringify({
    c: sealed.ciphertext.toString('base64'),
    w: sealed.wrappedKey.toString('base64'),
    v: sealed.keyVersion,
  });
}

export function decodeSealed(text: string): SealedSecret {
  const parsed = JSON.parse(text) as { c: string; w: string; v: number };
  return {
    ciphertext: Buffer.from(parsed.c, 'base64'),
    wrappedKey: Buffer.from(parsed.w, 'base64'),
    keyVersion: parsed.v,
  };
}
