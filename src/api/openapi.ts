// The OpenAPI 3.1 document of the admin and self-service APIs, generated from the operations' own zod
// schemas (the ones their input is validated with), never written by hand beside them.
import { z } from 'zod/v4';
import { VERSION } from '../version.js';
import type { Operation } from './operation.js';
import { audienceOf } from './routes.js';

type Schema = Record<string, unknown>;

const ERROR_SCHEMA: Schema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'requestId'],
      properties: {
        code: { type: 'string', description: 'stable error code (see src/lib/errors.ts)' },
        message: { type: 'string' },
        requestId: { type: 'string' },
        fields: { type: 'array', items: { type: 'string' }, description: 'the fields at fault' },
      },
    },
  },
};

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Schema {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Schema;
  return rest;
}

function parameters(op: Operation): Schema[] {
  const out: Schema[] = [];
  for (const [where, schema] of [
    ['path', op.params],
    ['query', op.query],
  ] as const) {
    const doc = jsonSchema(schema, 'output');
    const props = (doc.properties ?? {}) as Record<string, Schema>;
    const required = new Set((doc.required as string[] | undefined) ?? []);
    for (const [name, prop] of Object.entries(props)) {
      const { description, ...rest } = prop;
      out.push({
        name,
        in: where,
        required: where === 'path' || required.has(name),
        ...(typeof description === 'string' ? { description } : {}),
        schema: rest,
      });
    }
  }
  return out;
}

export function openApiDocument(ops: readonly Operation[]): Schema {
  const paths: Record<string, Record<string, Schema>> = {};
  for (const op of ops) {
    const security = audienceOf(op) === 'admin' ? [{ adminToken: [] }] : [{ selfServiceKey: [] }];
    const entry: Schema = {
      operationId: op.id,
      summary: op.summary,
      tags: [op.tag],
      security,
      parameters: parameters(op),
      responses: {
        [String(op.status)]: {
          description: 'success',
          content: { 'application/json': { schema: jsonSchema(op.response, 'output') } },
        },
        default: {
          description: 'an error',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      },
    };
    if (op.body) {
      entry.requestBody = {
        required: true,
        content: { 'application/json': { schema: jsonSchema(op.body, 'input') } },
      };
    }
    const byMethod = paths[op.path] ?? {};
    byMethod[op.method.toLowerCase()] = entry;
    paths[op.path] = byMethod;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Tollgate admin and self-service API',
      version: VERSION,
      description:
        'Admin API (/admin/v1, an admin token) and self-service API (/api/v1/me, a gateway key with the self-service scope). Errors are {error:{code,message,requestId}}.',
    },
    paths,
    components: {
      schemas: { Error: ERROR_SCHEMA },
      securitySchemes: {
        adminToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'tga_… (installation or personal admin token)',
        },
        selfServiceKey: {
          type: 'http',
          scheme: 'bearer',
          description: 'tg_… gateway key with the self-service scope',
        },
      },
    },
  };
}
