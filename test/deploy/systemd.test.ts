// deploy/tollgate.service passes `systemd-analyze verify` without a warning and keeps its hardening
// (`systemd-analyze security --offline`: exposure at most 2.5 of 10), each beside a copy that must fail.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const ANALYZE = '/usr/bin/systemd-analyze';
const UNIT = join(import.meta.dirname, '../../deploy/tollgate.service');
const unit = readFileSync(UNIT, 'utf8');

function analyze(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(ANALYZE, args, { cwd, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: stdout + stderr });
    });
  });
}

describe.skipIf(!existsSync(ANALYZE))(
  `deploy/tollgate.service${existsSync(ANALYZE) ? '' : ` — skipped: ${ANALYZE} is not installed`}`,
  () => {
    let dir: string;
    /** Writes `text` as DIR/NAME.service and returns its path (verify wants a .service name). */
    const write = async (name: string, text: string) => {
      const path = join(dir, `${name}.service`);
      await writeFile(path, text);
      return path;
    };
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'tollgate-unit-'));
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it('verifies cleanly; a misspelled directive or a missing program in a copy does not', async () => {
      const ok = await analyze(['verify', await write('tollgate', unit)], dir);
      expect(ok).toEqual({ code: 0, out: '' });
      const typo = await analyze(
        ['verify', await write('typo', unit.replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes'))],
        dir,
      );
      expect(typo.out).toMatch(/Unknown key 'NoNewPrivilege'/);
      const missing = await analyze(
        ['verify', await write('missing', unit.replace('/usr/bin/node ', '/usr/bin/no-such-node '))],
        dir,
      );
      expect(missing.code).not.toBe(0);
    });

    it('is hardened: exposure at most 2.5, where the same service without its hardening is refused', async () => {
      const hardened = await analyze(
        ['security', '--offline=yes', '--threshold=25', 'tollgate.service'],
        dir,
      );
      expect(hardened.code, hardened.out).toBe(0);
      expect(hardened.out).toMatch(/Overall exposure level for tollgate\.service: (0\.\d|1\.\d|2\.[0-5])/);
      const bare = unit
        .split('\n')
        .filter(
          (line) =>
            !/^(DynamicUser|NoNewPrivileges|Protect|Private|Restrict|CapabilityBoundingSet|SystemCall)/.test(
              line,
            ),
        )
        .join('\n');
      await write('bare', bare);
      const exposed = await analyze(['security', '--offline=yes', '--threshold=25', 'bare.service'], dir);
      expect(exposed.code).not.toBe(0);
    });

    it('hands the master key over as a systemd credential, which Tollgate reads as TOLLGATE_MASTER_KEY_FILE', async () => {
      expect(unit).toMatch(/^LoadCredential=master\.key:\/etc\/tollgate\/master\.key$/m);
      expect(unit).toMatch(/^Environment=TOLLGATE_MASTER_KEY_FILE=%d\/master\.key$/m);
      expect(unit).not.toMatch(/TOLLGATE_MASTER_KEY=/);
      // What systemd hands over: a read-only (0400) copy in a private directory, `openssl rand -base64 32`
      // output with its newline. Tollgate accepts it (it holds only the file it made itself to 0600).
      const creds = join(dir, 'credentials');
      await mkdir(creds, { mode: 0o700 });
      const keyFile = join(creds, 'master.key');
      await writeFile(keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o400 });
      const env = {
        TOLLGATE_HOME: join(dir, 'home'),
        TOLLGATE_MASTER_KEY_FILE: keyFile,
        TOLLGATE_TEST_CWD: dir,
      };
      expect((await runCli(['init'], env)).code).toBe(0);
      expect((await runCli(['team', 'add', 'platform'], env)).code).toBe(0);
      // Without that credential the installation does not open.
      const wrong = await runCli(['team', 'list'], {
        ...env,
        TOLLGATE_MASTER_KEY_FILE: join(creds, 'missing.key'),
      });
      expect(wrong.code).not.toBe(0);
      expect(wrong.stderr).toContain('TOLLGATE_MASTER_KEY_FILE');
    });
  },
);
