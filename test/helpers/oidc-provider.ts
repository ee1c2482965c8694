// A real OpenID Provider (oidc-provider) on 127.0.0.1 for single sign-on tests: an in-memory account store
// whose people can be disabled or regrouped, one confidential client (client_secret_post), refresh
// tokens always issued and rotated at every use, and a login step that signs in whoever `?as=` names —
// or, with `forms: true` (browser tests), oidc-provider's own dev login form, where a person types the
// account id (any password).
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type ProviderContext } from 'oidc-provider';

export interface TestAccount {
  email: string;
  email_verified?: boolean;
  preferred_username?: string;
  groups: string[];
  /** Disabled at the provider: cannot sign in, and its refresh tokens stop working. */
  disabled?: boolean;
}

export interface TestProvider {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly accounts: Map<string, TestAccount>;
  /** How many token endpoint calls were made (code and refresh grants). */
  tokenCalls(): number;
  /** Stops answering (an outage); `start` listens again on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startOidcProvider(options: {
  redirectUri: string;
  /** Show oidc-provider's dev login form instead of the `?as=` shortcut. */
  forms?: boolean;
}): Promise<TestProvider> {
  const accounts = new Map<string, TestAccount>();
  const clientId = 'tollgate';
  const clientSecret = randomBytes(24).toString('base64url');
  let server: Server = createServer();
  await listen(server, 0);
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;
  const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  let tokenCalls = 0;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [options.redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    jwks: { keys: [{ ...jwk, use: 'sig', kid: 'test' }] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['preferred_username', 'groups'],
    },
    features: { devInteractions: { enabled: options.forms === true } },
    ttl: {
      Interaction: 600,
      Grant: 3600,
      Session: 3600,
      AccessToken: 600,
      RefreshToken: 86_400,
      IdToken: 600,
    },
    // Refresh tokens for every sign-in (no offline_access consent step), rotated at every use.
    issueRefreshToken: async () => true,
    rotateRefreshToken: true,
    // A first-party client: no consent screen; the grant covers the scopes Tollgate asks for.
    loadExistingGrant: async (ctx: ProviderContext) => {
      const clientId = ctx.oidc.client?.clientId ?? '';
      const existing = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session?.grantIdFor(clientId);
      if (existing) return provider.Grant.find(existing);
      const grant = new provider.Grant({ accountId: ctx.oidc.session?.accountId ?? '', clientId });
      grant.addOIDCScope('openid email profile offline_access');
      await grant.save();
      return grant;
    },
    findAccount: async (_ctx: unknown, sub: string) => {
      const account = accounts.get(sub);
      if (!account || account.disabled) return undefined;
      return {
        accountId: sub,
        claims: async () => ({
          sub,
          email: account.email,
          email_verified: account.email_verified ?? true,
          preferred_username: account.preferred_username ?? sub,
          groups: account.groups,
        }),
      };
    },
  });
  const handle = provider.callback();

  async function interaction(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    await provider.interactionDetails(req, res);
    const as = url.searchParams.get('as') ?? '';
    const account = accounts.get(as);
    const result =
      !account || account.disabled
        ? { error: 'access_denied', error_description: 'account disabled' }
        : { login: { accountId: as } };
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', issuer);
    if (url.pathname === '/token') tokenCalls++;
    if (url.pathname.startsWith('/interaction/') && !options.forms) {
      interaction(req, res, url).catch(() => {
        res.statusCode = 500;
        res.end();
      });
      return;
    }
    handle(req, res);
  };
  server.on('request', listener);

  return {
    issuer,
    clientId,
    clientSecret,
    accounts,
    tokenCalls: () => tokenCalls,
    async stop() {
      await close(server);
    },
    async start() {
      server = createServer(listener);
      await listen(server, port);
    },
    close: () => close(server),
  };
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
}

function close(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
