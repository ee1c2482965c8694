// A throwaway certificate authority made with the openssl CLI in a temp directory, and a server
// certificate it signed for the given names: what an internal CA or a TLS-inspecting proxy looks like.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  readonly dir: string;
  /** PEM file of the CA certificate (what upstream.ca_file names). */
  readonly caFile: string;
  /** The server's key and certificate (PEM text), valid for `names`. */
  readonly key: string;
  readonly cert: string;
  remove(): Promise<void>;
}

const openssl = (dir: string, args: string[]) =>
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });

/** `names` are DNS names, or IP addresses when they look like one. */
export async function createTestCa(names: readonly string[]): Promise<TestCa> {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-ca-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(dir, [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=Tollgate throwaway test CA',
  ]);
  openssl(dir, ['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${names[0]}`]);
  const alt = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  await writeFile(join(dir, 'server.ext'), `subjectAltName=${alt}\nbasicConstraints=CA:FALSE\n`);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'server.ext',
  ]);
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    key: await readFile(join(dir, 'server.key'), 'utf8'),
    cert: await readFile(join(dir, 'server.pem'), 'utf8'),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
