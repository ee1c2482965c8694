// upstream.proxy_url, upstream.no_proxy (and NO_PROXY / no_proxy) and upstream.ca_file at load.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../lib/errors.js';
import { type LoadConfigInput, loadConfig } from './load.js';

let cwd: string;
let file: string;
let pem: string;

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-ca-'));
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
      ...['-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=config test CA'],
    ],
    { cwd: dir, stdio: 'ignore' },
  );
  pem = await readFile(join(dir, 'ca.pem'), 'utf8');
});

beforeEach(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'tollgate-config-'));
  file = join(cwd, 'tollgate.yml');
});

async function load(yaml: string, env: LoadConfigInput['env'] = {}) {
  await writeFile(file, yaml);
  return loadConfig({ cwd, env: { TOLLGATE_CONFIG: file, ...env } });
}

async function problems(yaml: string, env: LoadConfigInput['env'] = {}): Promise<string> {
  const error = await load(yaml, env).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  expect((error as AppError).code).toBe('invalid_config');
  return (error as AppError).message;
}

describe('upstream.proxy_url', () => {
  it('is off by default and accepts an http:// proxy', async () => {
    expect((await load('')).upstream).toMatchObject({ proxy_url: null, no_proxy: '', ca_file: null });
    const config = await load('upstream: { proxy_url: "http://proxy.corp:3128" }');
    expect(config.upstream.proxy_url).toBe('http://proxy.corp:3128');
  });

  it('refuses other schemes, paths and garbage with the key named', async () => {
    expect(await problems('upstream: { proxy_url: "https://proxy.corp:3128" }')).toContain(
      'upstream.proxy_url: expected an http:// proxy URL',
    );
    expect(await problems('upstream: { proxy_url: "http://proxy.corp:3128/x" }')).toContain(
      'upstream.proxy_url: must not contain a path, query or fragment',
    );
    expect(await problems('upstream: { proxy_url: "proxy.corp:3128" }')).toContain('upstream.proxy_url');
  });

  it('refuses a password inline (env: or file: only), never echoing it; accepts it by reference', async () => {
    const message = await problems('upstream: { proxy_url: "http://u:hunter2@proxy.corp:3128" }');
    expect(message).toContain('upstream.proxy_url: a URL with a password must be given as env:NAME');
    expect(message).not.toContain('hunter2');
    const config = await load('upstream: { proxy_url: "env:PROXY" }', {
      PROXY: 'http://u:hunter2@proxy.corp:3128',
    });
    expect(config.upstream.proxy_url).toBe('http://u:hunter2@proxy.corp:3128');
    const bad = await problems('', { TOLLGATE_UPSTREAM_PROXY_URL: 'https://u:hunter2@proxy.corp' });
    expect(bad).toContain('TOLLGATE_UPSTREAM_PROXY_URL (upstream.proxy_url)');
    expect(bad).not.toContain('hunter2');
  });
});

describe('upstream.no_proxy', () => {
  it('is set by NO_PROXY and no_proxy (lower case wins) under the file and TOLLGATE_UPSTREAM_NO_PROXY', async () => {
    expect((await load('', { NO_PROXY: 'a.example' })).upstream.no_proxy).toBe('a.example');
    expect((await load('', { NO_PROXY: 'a.example', no_proxy: 'b.example' })).upstream.no_proxy).toBe(
      'b.example',
    );
    const both = await load('', { NO_PROXY: 'a.example', TOLLGATE_UPSTREAM_NO_PROXY: 'c.example' });
    expect(both.upstream.no_proxy).toBe('c.example');
    expect((await load('upstream: { no_proxy: "f.example" }')).upstream.no_proxy).toBe('f.example');
  });
});

describe('upstream.ca_file', () => {
  it('takes a PEM file of certificates, made absolute against the working directory', async () => {
    await writeFile(join(cwd, 'corp-ca.pem'), pem);
    const config = await load('upstream: { ca_file: corp-ca.pem }');
    expect(config.upstream.ca_file).toBe(join(cwd, 'corp-ca.pem'));
  });

  it('stops the start naming the file when it is missing', async () => {
    const missing = join(cwd, 'nowhere.pem');
    expect(await problems(`upstream: { ca_file: "${missing}" }`)).toContain(
      `upstream.ca_file: cannot read ${missing} (ENOENT)`,
    );
  });

  it('stops the start naming the file when it holds no certificate or a broken one', async () => {
    const key = join(cwd, 'key.pem');
    await writeFile(key, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    expect(await problems(`upstream: { ca_file: "${key}" }`)).toContain(
      `upstream.ca_file: ${key} holds no PEM certificate`,
    );
    const broken = join(cwd, 'broken.pem');
    await writeFile(broken, `${pem}-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n`);
    expect(await problems(`upstream: { ca_file: "${broken}" }`)).toContain(
      `${broken} certificate 2 of 2 is not a valid X.509 certificate`,
    );
  });

  it('names the variable that set it', async () => {
    expect(await problems('', { TOLLGATE_UPSTREAM_CA_FILE: '/nonexistent/ca.pem' })).toContain(
      'TOLLGATE_UPSTREAM_CA_FILE (upstream.ca_file): cannot read /nonexistent/ca.pem',
    );
  });
});
