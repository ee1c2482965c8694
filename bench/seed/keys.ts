// `node dist/bench/bench/seed/keys.js COUNT OUT_FILE` (environment: TOLLGATE_HOME etc., server stopped):
// issues COUNT gateway keys to user `bench` through the compiled services in dist/ — each one in its own
// audited write transaction, exactly as `tollgate key issue` does, only without a process per key — and
// writes the keys to OUT_FILE, one per line. Every key gets the policy of the bench's CLI-issued key
// (monthly budget, rpm, tpm, concurrency), so 1 key and 10,000 keys are governed alike.
//
// The program's modules are loaded from dist/ at run time (the bench does not compile src/), so their
// shapes are declared here and checked before use.
import { writeFileSync } from 'node:fs';
import { distFunction } from '../lib/dist.js';
import { log, ROOT } from '../lib/util.js';

interface Installation {
  close(): Promise<void>;
}
interface KeyService {
  issue(
    by: { actor: string },
    input: { user: string; policy: Record<string, number | null> },
  ): Promise<{ id: string; key: string }>;
}
type LoadConfig = (input: {
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}) => Promise<object>;
type OpenInstallation = (config: object) => Promise<Installation>;
type CreateServices = (
  installation: Installation,
  config: object,
  clock: () => number,
) => { keys: KeyService };

const count = Number(process.argv[2]);
const outFile = process.argv[3];
if (!Number.isSafeInteger(count) || count < 1 || !outFile) {
  log('usage: keys.js COUNT OUT_FILE');
  process.exit(2);
}

const loadConfig = await distFunction<LoadConfig>('config/load.js', 'loadConfig');
const openInstallation = await distFunction<OpenInstallation>('install/installation.js', 'openInstallation');
const createServices = await distFunction<CreateServices>('services.js', 'createServices');

const config = await loadConfig({ env: process.env, cwd: ROOT });
const installation = await openInstallation(config);
const services = createServices(installation, config, () => Date.now());
const policy = {
  monthlyBudgetMicro: 1_000_000 * 1_000_000,
  rpm: 100_000_000,
  inputTpm: 1_000_000_000,
  concurrency: 100_000,
};
const keys: string[] = [];
const started = Date.now();
try {
  for (let i = 0; i < count; i++) {
    const issued = await services.keys.issue({ actor: 'bench' }, { user: 'bench', policy });
    keys.push(issued.key);
    if ((i + 1) % 2_000 === 0) log(`  … ${i + 1} keys (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }
} finally {
  await installation.close();
}
writeFileSync(outFile, `${keys.join('\n')}\n`);
