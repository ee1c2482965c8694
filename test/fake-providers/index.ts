// Tiny real HTTP fakes of the GitHub REST API (`GET /user`) and Linear's GraphQL API (`POST /graphql`
// with `{ viewer { id } }`), for the token checks of `credential add` and `PUT /api/v1/me/credentials`.
// Each accepts one good token and refuses everything else as the real services do (GitHub 401;
// Linear 400 with a GraphQL `errors` array). Every request is recorded, so tests can prove a check
// was (or was not) made.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProviderRequest {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | null;
  readonly body: string;
}

export interface FakeProviders {
  /** Base URLs for `integrations.github_api_url` / `integrations.linear_api_url`. */
  readonly githubUrl: string;
  readonly linearUrl: string;
  readonly goodGitHubToken: string;
  readonly goodLinearKey: string;
  readonly github: ProviderRequest[];
  readonly linear: ProviderRequest[];
  /** Environment overrides pointing Tollgate at these fakes. */
  readonly env: Record<string, string>;
  close(): Promise<void>;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export async function startFakeProviders(): Promise<FakeProviders> {
  const goodGitHubToken = `ghp_testgood${'G'.repeat(28)}`;
  const goodLinearKey = `lin_api_testgood${'L'.repeat(24)}`;
  const github: ProviderRequest[] = [];
  const linear: ProviderRequest[] = [];

  const githubServer = createServer(async (request, response) => {
    const body = await readBody(request);
    const authorization = request.headers.authorization ?? null;
    github.push({ method: request.method ?? '', path: request.url ?? '', authorization, body });
    response.setHeader('content-type', 'application/json');
    if (request.method !== 'GET' || request.url !== '/user') {
      response.writeHead(404).end('{"message":"Not Found"}');
      return;
    }
    if (authorization !== `Bearer ${goodGitHubToken}`) {
      response.writeHead(401).end('{"message":"Bad credentials","status":"401"}');
      return;
    }
    response.writeHead(200).end('{"login":"octo-test","id":1}');
  });

  const linearServer = createServer(async (request, response) => {
    const body = await readBody(request);
    const authorization = request.headers.authorization ?? null;
    linear.push({ method: request.method ?? '', path: request.url ?? '', authorization, body });
    response.setHeader('content-type', 'application/json');
    if (request.method !== 'POST' || request.url !== '/graphql') {
      response.writeHead(404).end('{"errors":[{"message":"not found"}]}');
      return;
    }
    let query = '';
    try {
      query = String((JSON.parse(body) as { query?: unknown }).query ?? '');
    } catch {
      // refused below as a bad query
    }
    if (!/viewer\s*\{\s*id\s*\}/.test(query)) {
      response.writeHead(400).end('{"errors":[{"message":"bad query"}]}');
      return;
    }
    if (authorization !== goodLinearKey) {
      response
        .writeHead(400)
        .end(
          '{"errors":[{"message":"Authentication required, not authenticated","extensions":{"code":"AUTHENTICATION_ERROR"}}]}',
        );
      return;
    }
    response.writeHead(200).end('{"data":{"viewer":{"id":"lin-user-1"}}}');
  });

  const githubUrl = await listen(githubServer);
  const linearUrl = await listen(linearServer);
  return {
    githubUrl,
    linearUrl,
    goodGitHubToken,
    goodLinearKey,
    github,
    linear,
    env: { TOLLGATE_GITHUB_API_URL: githubUrl, TOLLGATE_LINEAR_API_URL: linearUrl },
    async close() {
      for (const server of [githubServer, linearServer]) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
  };
}
