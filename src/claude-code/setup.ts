// `claude-code setup` on a coder's own machine: exchange the enrollment code for a gateway key over
// HTTPS, keep the key in the person's key store and write the project's Claude Code settings.
import { z } from 'zod';
import { AppError } from '../lib/errors.js';
import { validateName } from '../lib/validate.js';
import { normalizeEnrollmentCode } from './enrollment-code.js';
import type { KeyStore, SaveResult } from './key-store.js';
import {
  planFrom,
  projectSettingsFile,
  readSettings,
  type SettingsPlan,
  settingsFor,
  writeSettings,
} from './settings-file.js';

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);
const TIMEOUT_MS = 15_000;

/**
 * Accepts https, and plain http only to this machine: the answer carries the gateway key, which
 * anyone on the network path of a plain-http exchange could read (and the code would be theirs too).
 */
export function checkServerUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new AppError('invalid_input', `--server must be a URL such as https://tollgate.example.com`);
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && LOCAL_HOSTS.has(url.hostname)) return url;
  if (url.protocol === 'http:') {
    throw new AppError(
      'invalid_input',
      `refusing plain http:// to ${url.hostname}: the server answers with your gateway key, which anyone on the network path could read; use the https:// URL (plain http is accepted only for localhost)`,
    );
  }
  throw new AppError('invalid_input', '--server must be an https:// URL');
}

const answerSchema = z.object({
  key: z.string().startsWith('tg_'),
  base_url: z.string().url(),
  model: z.string().min(1),
  deny: z.array(z.string()),
  profile: z.string().min(1),
});
export type EnrollAnswer = z.infer<typeof answerSchema>;

// Node's fetch reports network failures as TypeError('fetch failed') with the socket error as cause.
const TLS_CODES = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_(VERIFY|GET)|ERR_TLS/;

function networkError(error: unknown, server: URL): AppError {
  const cause = (error as { cause?: { code?: unknown } }).cause;
  const code = typeof cause?.code === 'string' ? cause.code : '';
  const name = (error as { name?: unknown }).name;
  let message: string;
  if (name === 'TimeoutError' || code === 'UND_ERR_CONNECT_TIMEOUT')
    message = `${server.origin} did not answer within ${TIMEOUT_MS / 1000} s`;
  else if (TLS_CODES.test(code))
    message = `TLS problem with ${server.origin} (${code}): the certificate is not trusted; check the URL, or ask your admin whether the server uses a private CA (then set NODE_EXTRA_CA_CERTS)`;
  else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    message = `cannot resolve ${server.hostname} (${code})`;
  else message = `cannot reach ${server.origin}${code ? ` (${code})` : ''}; is Tollgate running there?`;
  return new AppError('upstream_unreachable', message, {}, { cause: error });
}

/** POSTs the code to /api/v1/enroll; every failure becomes a one-line AppError. */
export async function redeemCode(
  server: URL,
  code: string,
  fetchImpl: typeof fetch = fetch,
): Promise<EnrollAnswer> {
  const canonical = normalizeEnrollmentCode(code);
  if (canonical === null)
    throw new AppError(
      'invalid_input',
      '--code must look like ENR-XXXX-XXXX-XXXX-XXXX (as printed by coder bootstrap --enroll)',
    );
  let response: Response;
  try {
    response = await fetchImpl(new URL('/api/v1/enroll', server), {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ code: canonical }),
      redirect: 'error',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (error) {
    throw networkError(error, server);
  }
  const body: unknown = await response.json().catch(() => null);
  if (response.status === 400)
    throw new AppError(
      'unauthenticated',
      'the enrollment code is invalid, expired or already used; ask your admin for a new one',
    );
  if (response.status === 429) {
    const wait = response.headers.get('retry-after');
    throw new AppError(
      'forbidden',
      `too many enrollment attempts from this address; try again in ${wait ?? 'a minute'} s`,
    );
  }
  if (response.status === 404)
    throw new AppError(
      'upstream_error',
      `${server.origin} is not a Tollgate server with enrollment (404 on /api/v1/enroll)`,
    );
  if (!response.ok) throw new AppError('upstream_error', `${server.origin} answered ${response.status}`);
  const parsed = answerSchema.safeParse(body);
  if (!parsed.success)
    throw new AppError('upstream_error', `${server.origin} sent an unexpected enrollment answer`);
  return parsed.data;
}

export interface SetupResult {
  readonly profile: string;
  readonly model: string;
  readonly baseUrl: string;
  readonly stored: SaveResult;
  readonly settings: SettingsPlan;
  readonly notes: readonly string[];
}

/** Redeems the code, stores the key and merges the settings of `projectDir`. */
export async function setupClaudeCode(
  deps: { store: KeyStore; nodePath: string; fetch?: typeof fetch },
  input: { server: string; code: string; projectDir: string; profile?: string },
): Promise<SetupResult> {
  const server = checkServerUrl(input.server);
  if (input.profile !== undefined) validateName('profile', input.profile);
  // The settings file is read before the code is spent, so a broken file costs no code.
  const source = await readSettings(projectSettingsFile(input.projectDir));
  const answer = await redeemCode(server, input.code, deps.fetch);
  const profile = validateName('profile', input.profile ?? answer.profile);
  const plan = planFrom(
    source,
    settingsFor({
      baseUrl: answer.base_url,
      profile,
      model: answer.model,
      deny: answer.deny,
      nodePath: deps.nodePath,
    }),
  );
  const stored = await deps.store.save(profile, answer.key, input.projectDir);
  await writeSettings(plan);
  const notes = [...plan.warnings];
  if (new URL(answer.base_url).origin !== server.origin) {
    notes.push(
      `the server's public URL is ${answer.base_url}, not ${server.origin}; Claude Code will use ${answer.base_url} (server.public_url on the server)`,
    );
  }
  return { profile, model: answer.model, baseUrl: answer.base_url, stored, settings: plan, notes };
}
