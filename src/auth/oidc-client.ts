// The identity provider as Tollgate talks to it (openid-client): discovery on first use (cached, and
// tried again after a failure, so the server starts whether or not the provider is reachable), the
// authorization URL, the code exchange, and the refresh that rechecks a session. Every call is bounded
// by a 10 s timeout. Tokens never leave this module except the refresh token, which the caller seals.
import type * as Oidc from 'openid-client';
import type { Config } from '../config/load.js';
import { AppError } from '../lib/errors.js';
import type { Outbound } from '../outbound/outbound.js';
import type { PendingSignIn } from './oidc-pending.js';

const TIMEOUT_S = 10;

// Loaded at the first sign-in, not at start: most servers never use single sign-on, and the library
// (with jose) is several megabytes of resident memory.
let library: Promise<typeof Oidc> | null = null;
const load = (): Promise<typeof Oidc> => {
  library ??= import('openid-client');
  return library;
};

export interface ProviderAnswer {
  /** ID token claims merged with userinfo (the ID token's `sub` wins). */
  readonly claims: Record<string, unknown>;
  readonly refreshToken: string | null;
}

/** A refresh's outcome: the provider answered, said no (invalid_grant), or could not be asked. */
export type RefreshOutcome =
  | { readonly kind: 'ok'; readonly answer: ProviderAnswer }
  | { readonly kind: 'refused' }
  | { readonly kind: 'unavailable'; readonly why: string };

export const PROVIDER_UNREACHABLE = 'the identity provider cannot be reached right now; try again later';

/** auth.oidc of the loaded (frozen) config. */
export type OidcSettings = NonNullable<Config['auth']['oidc']>;

/** A fetch for every call to the provider (discovery, tokens, keys, userinfo): the outbound one. */
export type ProviderFetch = Outbound['fetch'];

export function createOidcClient(config: OidcSettings, redirectUri: string, fetch?: ProviderFetch) {
  let discovered: Promise<Oidc.Configuration> | null = null;

  async function configuration(): Promise<Oidc.Configuration> {
    const oidc = await load();
    if (!discovered) {
      const issuer = new URL(config.issuer);
      const auth = config.client_secret === '' ? oidc.None() : oidc.ClientSecretPost(config.client_secret);
      discovered = oidc.discovery(issuer, config.client_id, undefined, auth, {
        timeout: TIMEOUT_S,
        // Through upstream.proxy_url / ca_file when set (outbound/outbound.ts); kept for later calls too.
        // undici's Response is the same class as the global one in another package's types (checked loosely).
        ...(fetch ? { [oidc.customFetch]: fetch as unknown as Oidc.CustomFetch } : {}),
        // An http issuer is the admin's explicit choice (a test or an internal provider).
        ...(issuer.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {}),
      });
      // A failed discovery is forgotten, so the next sign-in asks again.
      discovered.catch(() => {
        discovered = null;
      });
    }
    return discovered;
  }

  /** Where to send the browser; PKCE S256, state and nonce from the pending sign-in. */
  async function authorizationUrl(pending: PendingSignIn): Promise<URL> {
    const oidc = await load();
    const server = await configuration().catch((cause: unknown) => {
      throw new AppError('upstream_unreachable', PROVIDER_UNREACHABLE, {}, { cause });
    });
    return oidc.buildAuthorizationUrl(server, {
      redirect_uri: redirectUri,
      scope: config.scopes.join(' '),
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
    });
  }

  /**
   * Exchanges the code of the callback (its query string) for tokens and claims. A refusal by the
   * provider or a failed check is `forbidden`; a provider that cannot be reached, `upstream_unreachable`.
   */
  async function exchange(query: string, pending: PendingSignIn): Promise<ProviderAnswer> {
    const oidc = await load();
    try {
      const server = await configuration();
      const tokens = await oidc.authorizationCodeGrant(server, new URL(`${redirectUri}${query}`), {
        pkceCodeVerifier: pending.verifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
      return await answerOf(oidc, server, tokens, null);
    } catch (error) {
      if (error instanceof AppError) throw error;
      if (isProviderRefusal(oidc, error))
        throw new AppError('forbidden', 'the identity provider did not confirm the sign-in; try again');
      throw new AppError('upstream_unreachable', PROVIDER_UNREACHABLE, {}, { cause: error });
    }
  }

  /** Asks the provider again with the refresh token (it may rotate). */
  async function refresh(refreshToken: string, sub: string): Promise<RefreshOutcome> {
    const oidc = await load();
    try {
      const server = await configuration();
      const tokens = await oidc.refreshTokenGrant(server, refreshToken);
      const answer = await answerOf(oidc, server, tokens, sub, refreshToken);
      // A provider that answers for someone else is not trusted with this session.
      if (answer.claims.sub !== sub)
        return { kind: 'unavailable', why: 'provider answered for another subject' };
      return { kind: 'ok', answer };
    } catch (error) {
      // Only the provider saying the grant is gone de-provisions; anything else is an outage.
      if (error instanceof oidc.ResponseBodyError && error.error === 'invalid_grant')
        return { kind: 'refused' };
      return { kind: 'unavailable', why: describe(oidc, error) };
    }
  }

  return { authorizationUrl, exchange, refresh };
}

async function answerOf(
  oidc: typeof Oidc,
  server: Oidc.Configuration,
  tokens: Oidc.TokenEndpointResponse & Oidc.TokenEndpointResponseHelpers,
  knownSub: string | null,
  previousRefresh: string | null = null,
): Promise<ProviderAnswer> {
  // A refresh may come without an ID token; the subject is then the one the session was opened for.
  const idClaims: Record<string, unknown> = { ...(tokens.claims() ?? (knownSub ? { sub: knownSub } : {})) };
  let claims = idClaims;
  // Many providers put email and groups in userinfo only (not in the ID token of a code flow).
  if (server.serverMetadata().userinfo_endpoint && tokens.access_token) {
    const expected = typeof idClaims.sub === 'string' ? idClaims.sub : oidc.skipSubjectCheck;
    const info = await oidc.fetchUserInfo(server, tokens.access_token, expected);
    claims = { ...info, ...idClaims };
  }
  return { claims, refreshToken: tokens.refresh_token ?? previousRefresh };
}

/** The provider answered and said no (an OAuth error or a check that failed), as opposed to an outage. */
function isProviderRefusal(oidc: typeof Oidc, error: unknown): boolean {
  if (error instanceof oidc.AuthorizationResponseError) return true;
  if (error instanceof oidc.ResponseBodyError) return error.status < 500;
  // A proxy's error page in place of the provider's JSON is an outage, not a refusal.
  if (error instanceof oidc.ClientError) return !OUTAGE_CODES.has(error.code ?? '');
  return false;
}

const OUTAGE_CODES = new Set(['OAUTH_RESPONSE_IS_NOT_CONFORM', 'OAUTH_RESPONSE_IS_NOT_JSON']);

/** A short description for the log: never the token, never the provider's body. */
function describe(oidc: typeof Oidc, error: unknown): string {
  if (error instanceof oidc.ResponseBodyError) return `provider answered ${error.status} ${error.error}`;
  if (error instanceof Error) return `${error.name}${'code' in error ? ` ${String(error.code)}` : ''}`;
  return 'unknown error';
}

export type OidcClient = ReturnType<typeof createOidcClient>;
