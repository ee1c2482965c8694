// `tollgate init`: create the home directory, master key and database; print the admin token once.
import { Command } from 'commander';
import { initInstallation } from '../../install/installation.js';
import { systemClock } from '../../lib/clock.js';
import type { Io } from '../io.js';
import { printJson, printLines } from '../output.js';
import { commandEnv } from '../runtime.js';

export function initCommand(io: Io): Command {
  return new Command('init')
    .description('create the home directory, master key and database; print the admin token once')
    .action(async (_opts: unknown, command: Command) => {
      const { config, json, actor } = await commandEnv(io, command);
      const { installation, adminToken } = await initInstallation(config, systemClock, actor.actor);
      await installation.close();
      const masterKeyFile =
        config.masterKey.inline || config.masterKey.file ? null : config.masterKey.defaultFile;
      if (json) {
        return printJson(io, {
          home: config.home,
          database: config.database.kind === 'sqlite' ? config.database.path : 'postgres',
          master_key_file: masterKeyFile,
          org_id: installation.orgId,
          admin_token: adminToken,
        });
      }
      printLines(io, [
        `Initialised Tollgate in ${config.home}`,
        masterKeyFile
          ? `Master key: ${masterKeyFile} (mode 0600) — back it up; without it the vault cannot be opened.`
          : 'Master key: from the environment.',
        '',
        'Admin token (shown only this once; store it in a password manager):',
        '',
        `  ${adminToken}`,
        '',
        'Next: `tollgate credential add org-key --provider anthropic` (the key is read from stdin), then `tollgate serve`.',
      ]);
    });
}
