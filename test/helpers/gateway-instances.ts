// More gateways over one test harness's installation (several instances in one process, each with its
// own gateway state and Redis connection), and one SDK call's status and headers.
import Anthropic from '@anthropic-ai/sdk';
import { createApiDeps } from '../../src/api/api-deps.js';
import type { Config } from '../../src/config/load.js';
import { createGateway } from '../../src/gateway/gateway.js';
import { buildServer } from '../../src/http/server.js';
import { createLogger } from '../../src/observability/logger.js';
import type { Harness } from './gateway.js';

export const SMALL_REQUEST = {
  model: 'claude-haiku-4-5',
  max_tokens: 20,
  messages: [{ role: 'user' as const, content: 'hi' }],
};

export interface Instance {
  url: string;
  close(): Promise<void>;
}

/** Another gateway over the harness's installation, with a gateway (and Redis connection) of its own. */
export async function startInstance(h: Harness, config: Config = h.config): Promise<Instance> {
  const logger = createLogger('silent');
  const clock = Date.now;
  const gateway = createGateway({ installation: h.installation, clock }, config);
  await gateway.start();
  const app = await buildServer({
    installation: h.installation,
    logger,
    bodyLimit: config.server.body_limit_bytes,
    trustProxy: false,
    version: 'test',
    gateway,
    enroll: { installation: h.installation, config, clock },
    api: createApiDeps(h.installation, config, clock, gateway, logger),
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url,
    async close() {
      await app.close();
      await gateway.close();
    },
  };
}

export interface Outcome {
  status: number;
  headers: Headers;
}

/** One Messages call through the SDK (no retries): its status and headers, answered or refused. */
export async function call(url: string, key: string, params = SMALL_REQUEST): Promise<Outcome> {
  const client = new Anthropic({ apiKey: key, baseURL: url, maxRetries: 0, timeout: 20_000 });
  try {
    const { response } = await client.messages.create(params).withResponse();
    return { status: response.status, headers: response.headers };
  } catch (error) {
    if (error instanceof Anthropic.APIError && error.status !== undefined && error.headers) {
      return { status: error.status, headers: error.headers as Headers };
    }
    throw error;
  }
}
