// Extra CA certificates (upstream.ca_file): a PEM file whose certificates are trusted in addition to
// Node's default roots (a corporate TLS-inspecting proxy, an internal CA). Checked when the config is
// loaded, so a missing, unreadable or non-PEM file stops the start with its name.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { AppError } from '../lib/errors.js';

const BLOCK = /-----BEGIN CERTIFICATE-----\r?\n[\s\S]*?-----END CERTIFICATE-----/g;

/** The certificates of a PEM text, or why it is not one (never quoting the content). */
export function parsePemCertificates(text: string): { certificates: string[] } | { problem: string } {
  const certificates = text.match(BLOCK) ?? [];
  if (certificates.length === 0) return { problem: 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)' };
  for (const [i, pem] of certificates.entries()) {
    try {
      new X509Certificate(pem);
    } catch {
      return { problem: `certificate ${i + 1} of ${certificates.length} is not a valid X.509 certificate` };
    }
  }
  return { certificates };
}

/** Reads and checks the file; the message names the file (its content is not secret, but long). */
export async function checkCaFile(path: string): Promise<string | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    return `cannot read ${path} (${(cause as NodeJS.ErrnoException).code ?? 'unreadable'})`;
  }
  const parsed = parsePemCertificates(text);
  return 'problem' in parsed ? `${path} ${parsed.problem}` : null;
}

/** Node's default roots plus the file's certificates: the `ca` of every outbound TLS connection. */
export function trustedRoots(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new AppError('invalid_config', `upstream.ca_file: cannot read ${path} (${code})`, {}, { cause });
  }
  const parsed = parsePemCertificates(text);
  if ('problem' in parsed)
    throw new AppError('invalid_config', `upstream.ca_file: ${path} ${parsed.problem}`);
  return [...rootCertificates, ...parsed.certificates];
}
