// Ciphertexts are bound to their record: swapping two credentials' sealed secrets makes both unreadable.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { openInstallation } from '../../src/install/installation.js';
import { systemClock } from '../../src/lib/clock.js';
import { createServices } from '../../src/services.js';
import { type CliHome, tempHome } from '../helpers/cli.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';

describe('swapping ciphertexts between credentials', () => {
  let cli: CliHome;
  const a = canaryAnthropicKey();
  const b = canaryAnthropicKey();

  beforeAll(async () => {
    cli = await tempHome();
    await cli.run(['init']);
    expect(
      (await cli.run(['credential', 'add', 'a', '--provider', 'anthropic', '--no-validate'], { stdin: a }))
        .code,
    ).toBe(0);
    expect(
      (await cli.run(['credential', 'add', 'b', '--provider', 'anthropic', '--no-validate'], { stdin: b }))
        .code,
    ).toBe(0);
  });
  afterAll(() => cli.cleanup());

  async function open() {
    const config = await loadConfig({ env: cli.env, cwd: join(cli.home, '..') });
    const installation = await openInstallation(config);
    return { installation, services: createServices(installation, config, systemClock) };
  }

  it('decrypts both before the swap (positive control)', async () => {
    const { installation, services } = await open();
    expect(await services.credentials.reveal('a')).toBe(a);
    expect(await services.credentials.reveal('b')).toBe(b);
    await installation.close();
  });

  it('fails for both after swapping ciphertext and wrapped key', async () => {
    const { installation, services } = await open();
    const db = installation.db.kysely;
    const rows = await db
      .selectFrom('credentials')
      .select(['id', 'name', 'ciphertext', 'wrapped_key'])
      .orderBy('name')
      .execute();
    const [ra, rb] = rows;
    const setSealed = (id: string, ciphertext: Buffer, wrappedKey: Buffer) =>
      db
        .updateTable('credentials')
        .set({ ciphertext, wrapped_key: wrappedKey })
        .where('id', '=', id)
        .execute();
    if (!ra || !rb) throw new Error('expected two credentials');
    await setSealed(ra.id, rb.ciphertext, rb.wrapped_key);
    await setSealed(rb.id, ra.ciphertext, ra.wrapped_key);
    await expect(services.credentials.reveal('a')).rejects.toMatchObject({ code: 'decryption_failed' });
    await expect(services.credentials.reveal('b')).rejects.toMatchObject({ code: 'decryption_failed' });

    // Swapping only the ciphertexts (keeping each record's wrapped key) fails too.
    await setSealed(ra.id, rb.ciphertext, ra.wrapped_key);
    await setSealed(rb.id, ra.ciphertext, rb.wrapped_key);
    await expect(services.credentials.reveal('a')).rejects.toMatchObject({ code: 'decryption_failed' });
    await expect(services.credentials.reveal('b')).rejects.toMatchObject({ code: 'decryption_failed' });

    // Restoring the originals makes them readable again: the failure was the binding, nothing else.
    await setSealed(ra.id, ra.ciphertext, ra.wrapped_key);
    expect(await services.credentials.reveal('a')).toBe(a);
    await installation.close();
  });
});
