// `tollgate audit verify --file FILE`: an audit export checked on this machine from the file alone (see
// src/audit/export-verify.ts for what each check proves). No database is opened and no server called;
// the master key is read only with --with-master-key, heads recorded elsewhere with --witness / --head.
// A broken export exits 3 (audit_broken), after its JSON with --json, like `audit verify`.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { exportLines } from '../../audit/export-lines.js';
import { exportProofKey } from '../../audit/export-proof.js';
import { type ExpectedHead, type ExportVerdict, verifyExport } from '../../audit/export-verify.js';
import { readWitness } from '../../audit/witness.js';
import { loadConfig } from '../../config/load.js';
import { loadMasterKey } from '../../crypto/master-key.js';
import { AppError } from '../../lib/errors.js';
import type { Io } from '../io.js';
import { printJson, printLines } from '../output.js';
import { globalsOf } from '../runtime.js';

export interface VerifyFileOptions {
  file?: string;
  witness?: string;
  head?: string;
  withMasterKey?: boolean;
}

export async function verifyFile(
  io: Io,
  command: Command,
  file: string,
  opts: VerifyFileOptions,
): Promise<void> {
  const globals = globalsOf(command);
  if (globals.server !== undefined)
    throw new AppError('invalid_input', '--file checks an export on this machine; drop --server');
  const json = globals.json === true;
  const expected: ExpectedHead[] = [];
  if (opts.head !== undefined) expected.push(parseHead(opts.head));
  if (opts.witness !== undefined) expected.push(...(await witnessHeads(resolve(io.cwd, opts.witness))));
  let proofKey: Buffer | undefined;
  if (opts.withMasterKey) {
    const config = await loadConfig({
      env: io.env,
      cwd: io.cwd,
      overrides: globals.home ? { home: globals.home } : {},
    });
    proofKey = exportProofKey(await loadMasterKey(config.masterKey));
  }
  const path = resolve(io.cwd, file);
  const verdict = await verifyExport(exportLines(path), {
    ...(proofKey ? { proofKey } : {}),
    expected,
  });
  proofKey?.fill(0);
  report(io, json, path, verdict);
}

function report(io: Io, json: boolean, path: string, verdict: ExportVerdict): void {
  if (json) printJson(io, { file: path, ...verdict });
  if (verdict.ok) {
    if (!json) {
      const mac =
        verdict.proof_mac === 'valid'
          ? 'proof MAC valid (master key)'
          : 'proof MAC not checked (add --with-master-key where the master key is)';
      const recorded = verdict.expected_heads > 0 ? `; ${verdict.expected_heads} recorded head(s) found` : '';
      printLines(io, [
        `Audit export intact: ${verdict.entries} entries of ${verdict.installation}, head #${verdict.head.seq} ${verdict.head.hash.slice(0, 16)}…, exported ${verdict.exported_at}; ${mac}${recorded}`,
      ]);
    }
    return;
  }
  const b = verdict.firstBroken;
  const where = b.line === null ? '' : ` (line ${b.line})`;
  throw new AppError(
    'audit_broken',
    `audit export broken at entry #${b.index}${where}: ${b.reason}: ${verdict.detail}`,
    { index: b.index, reason: b.reason, line: b.line },
  );
}

const HEAD = /^(\d{1,15}):([0-9a-f]{64})$/;

function parseHead(text: string): ExpectedHead {
  const m = HEAD.exec(text.trim());
  const seq = Number(m?.[1]);
  if (!m || !Number.isSafeInteger(seq) || seq < 1)
    throw new AppError(
      'invalid_input',
      '--head must be SEQ:HASH, e.g. 42: followed by the 64 hex digits of the hash',
    );
  return { seq, hash: m[2] as string, source: '--head' };
}

async function witnessHeads(path: string): Promise<ExpectedHead[]> {
  const read = await readWitness(path);
  if (read.kind === 'missing') throw new AppError('not_found', `${path} does not exist`);
  if (read.kind === 'unreadable') throw new AppError('invalid_input', `${path}: ${read.detail}`);
  // The witness lines' MACs need the installation's anchor key (master key and the database's pepper):
  // offline, their seq and hash are taken as recorded; keep the file where the log's writers cannot write.
  return read.heads.map((h) => ({ seq: h.seq, hash: h.hash, installation: h.installation, source: path }));
}
