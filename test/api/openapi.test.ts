// The OpenAPI document is generated from the operations, passes a real validator, and lists every admin
// and self-service route the server registers (so nothing is reachable yet undocumented).
import SwaggerParser from '@apidevtools/swagger-parser';
import type { OpenAPIV3_1 } from 'openapi-types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/gateway.js';

describe('the OpenAPI document', () => {
  let h: Harness;
  let doc: OpenAPIV3_1.Document;

  beforeAll(async () => {
    h = await startHarness();
    const response = await fetch(`${h.url}/admin/v1/openapi.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/application\/json/);
    doc = (await response.json()) as OpenAPIV3_1.Document;
  });

  afterAll(async () => {
    await h.close();
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toBe('3.1.0');
    // validate() dereferences and checks the whole document against the OpenAPI 3.1 schema.
    await expect(SwaggerParser.validate(structuredClone(doc))).resolves.toBeTruthy();
  });

  it('fails validation when broken (the validator is not a rubber stamp)', async () => {
    const broken = structuredClone(doc) as unknown as { paths: Record<string, Record<string, unknown>> };
    const first = Object.values(broken.paths)[0] as Record<string, { responses?: unknown }>;
    const op = Object.values(first)[0] as { responses?: unknown };
    op.responses = 'not an object';
    await expect(SwaggerParser.validate(broken as unknown as OpenAPIV3_1.Document)).rejects.toThrow();
  });

  it('documents every admin and self-service route the server registers, and nothing else', () => {
    const documented = new Set<string>();
    for (const [path, methods] of Object.entries(doc.paths ?? {}))
      for (const method of Object.keys(methods ?? {})) documented.add(`${method.toUpperCase()} ${path}`);
    const registered = new Set<string>();
    for (const line of h.routes()) {
      const [method, url] = line.split(' ') as [string, string];
      if (method === 'HEAD' || url === '/admin/v1/openapi.json') continue;
      if (!url.startsWith('/admin/') && !url.startsWith('/api/v1/me')) continue;
      registered.add(`${method} ${url.replace(/:([A-Za-z_]+)/g, '{$1}')}`);
    }
    expect(registered.size).toBeGreaterThan(1);
    expect([...registered].filter((r) => !documented.has(r))).toEqual([]);
    expect([...documented].filter((d) => !registered.has(d))).toEqual([]);
  });

  it('describes request bodies with the schemas the routes validate with (unknown fields refused)', async () => {
    const create = doc.paths?.['/admin/v1/teams']?.post;
    if (!create) throw new Error('POST /admin/v1/teams is not documented');
    const body = (create.requestBody as OpenAPIV3_1.RequestBodyObject).content['application/json']
      ?.schema as OpenAPIV3_1.SchemaObject;
    expect(body.additionalProperties).toBe(false);
    expect(body.required).toContain('name');
    const refused = await h.api('POST', '/admin/v1/teams', { body: { name: 'eng', owner: 'mallory' } });
    expect(refused.status).toBe(400);
    expect(refused.json.error.message).toContain('owner');
    const accepted = await h.api('POST', '/admin/v1/teams', { body: { name: 'eng' } });
    expect(accepted.status).toBe(201);
  });
});
