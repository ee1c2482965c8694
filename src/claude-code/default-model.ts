// The model Claude Code is configured with: claude.default_model when tollgate.yml or the environment
// sets it; else the default model remembered by `credential import-secrets` from a .secrets.yml;
// else the built-in default.
import type { Config } from '../config/load.js';
import type { Db } from '../db/connect.js';
import { readMeta } from '../install/meta.repo.js';
import { defaultModelConfigured } from '../vault/import-secrets.js';

export async function effectiveDefaultModel(
  config: Config,
  db: Db,
  env: Readonly<Record<string, string | undefined>>,
): Promise<string> {
  if (await defaultModelConfigured({ env, configFile: config.configFile }))
    return config.claude.default_model;
  return (await readMeta(db, 'default_model')) ?? config.claude.default_model;
}
