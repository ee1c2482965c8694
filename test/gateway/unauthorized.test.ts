// One request cannot take a shared credential out: an upstream 401 fails the request over, and the
// credential is marked invalid only after a validation call of its own (GET /v1/models) confirms it —
// off the request path, one check per secret at a time and per interval, with a timeout — and only the
// secret version that failed (a rotation's previous secret and the fresh one are told apart).
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CONFIRM_INTERVAL_MS } from '../../src/gateway/gateway.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';

const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 20,
  messages: [{ role: 'user' as const, content: 'hi' }],
};
const BETA_401 = { headers: { 'anthropic-beta': 'fake-unauthorized' } };
/** The test clock moves this far between checks: past the gateway's check interval. */
const STEP_MS = 10 * 60_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `done` holds or `ms` passed (no throw: the assertions after it say what went wrong). */
async function until(done: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && !(await done())) await sleep(20);
}

async function statuses(h: Harness): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const c of await h.services.credentials.list()) out[c.name] = c.status;
  return out;
}

const validationCalls = (h: Harness) => h.fake.served.filter((s) => s.path === '/v1/models');
const messageCalls = (h: Harness) => h.fake.served.filter((s) => s.path === '/v1/messages');

describe('an upstream 401 on a shared credential', () => {
  let h: Harness;
  let now = Date.now();
  let a: string;
  let b: string;
  let alice: string;
  let bob: string;

  beforeAll(async () => {
    h = await startHarness({
      clock: () => now,
      env: { TOLLGATE_UPSTREAM_VALIDATE_TIMEOUT_MS: '1500' },
    });
    a = await h.orgCredential('org-a');
    b = await h.orgCredential('org-b');
    alice = await h.key({ user: 'alice' });
    bob = await h.key({ user: 'bob' });
  });
  beforeEach(() => {
    h.fake.reset();
    // Each test starts past the previous one's check interval.
    now += STEP_MS;
  });
  afterAll(() => h.close());

  it('a beta value the upstream answers with 401 fails that request, and both org credentials keep serving everyone', async () => {
    const error = await h
      .client(alice)
      .messages.create(PARAMS, BETA_401)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.AuthenticationError);
    // It failed over (both credentials tried), as before.
    expect(messageCalls(h).map((s) => [s.apiKey, s.status])).toEqual([
      [a, 401],
      [b, 401],
    ]);
    // Each credential's own validation call answers 200: nothing is marked.
    await until(() => validationCalls(h).length >= 2);
    await h.gateway.deps.credentials.settled?.();
    await h.refresh();
    expect(await statuses(h)).toEqual({ 'org-a': 'active', 'org-b': 'active' });
    expect(validationCalls(h).map((s) => [s.apiKey, s.status])).toEqual(
      expect.arrayContaining([
        [a, 200],
        [b, 200],
      ]),
    );
    const audit = await h.services.audit.list({ limit: 1000 });
    expect(audit.filter((e) => e.action === 'credential.invalid')).toEqual([]);

    // Another user (and the same one without the beta) is served by the first org credential.
    const before = messageCalls(h).length;
    expect((await h.client(bob).messages.create(PARAMS)).type).toBe('message');
    expect((await h.client(alice).messages.create(PARAMS)).type).toBe('message');
    expect(
      messageCalls(h)
        .slice(before)
        .map((s) => [s.apiKey, s.status]),
    ).toEqual([
      [a, 200],
      [a, 200],
    ]);
  });

  it('a flood of 401s costs at most one validation call per credential and interval', async () => {
    expect(STEP_MS).toBeGreaterThan(CONFIRM_INTERVAL_MS);
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, () => h.client(alice).messages.create(PARAMS, BETA_401)),
    );
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(messageCalls(h)).toHaveLength(60);
    await until(() => validationCalls(h).length >= 2);
    await h.gateway.deps.credentials.settled?.();
    // Once per credential (they all arrived within one interval)...
    expect(
      validationCalls(h)
        .map((s) => s.apiKey)
        .sort(),
    ).toEqual([a, b].sort());
    // ...and none again within the interval.
    await Promise.allSettled(
      Array.from({ length: 10 }, () => h.client(bob).messages.create(PARAMS, BETA_401)),
    );
    await h.gateway.deps.credentials.settled?.();
    expect(validationCalls(h)).toHaveLength(2);
    // After the interval, the next 401 is checked again.
    now += STEP_MS;
    await h
      .client(bob)
      .messages.create(PARAMS, BETA_401)
      .catch(() => undefined);
    await until(() => validationCalls(h).length >= 4);
    await h.gateway.deps.credentials.settled?.();
    expect(validationCalls(h)).toHaveLength(4);
    expect(await statuses(h)).toEqual({ 'org-a': 'active', 'org-b': 'active' });
  });

  it('the client does not wait for the check, and a check that hangs gives up at its timeout', async () => {
    h.fake.enqueueFault({ kind: 'hang' }, { path: '/v1/models', apiKey: a });
    h.fake.enqueueFault({ kind: 'hang' }, { path: '/v1/models', apiKey: b });
    const started = Date.now();
    await expect(h.client(alice).messages.create(PARAMS, BETA_401)).rejects.toBeInstanceOf(
      Anthropic.AuthenticationError,
    );
    let checksEnded = false;
    const checks = h.gateway.deps.credentials.settled().then(() => {
      checksEnded = true;
    });
    await sleep(20);
    // The answer came while both checks were still hanging (they give up after 1.5 s).
    expect(checksEnded).toBe(false);
    await checks;
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    await h.refresh();
    expect(await statuses(h)).toEqual({ 'org-a': 'active', 'org-b': 'active' });
  });

  it('a key revoked upstream is marked invalid once its validation call confirms it, audited, and skipped from then on (positive control)', async () => {
    h.fake.revokeKey(a);
    const message = await h.client(bob).messages.create(PARAMS);
    expect(message.type).toBe('message');
    expect(messageCalls(h).map((s) => [s.apiKey, s.status])).toEqual([
      [a, 401],
      [b, 200],
    ]);
    await until(async () => (await statuses(h))['org-a'] === 'invalid');
    expect(validationCalls(h).map((s) => [s.apiKey, s.status])).toEqual([[a, 401]]);
    expect(await statuses(h)).toEqual({ 'org-a': 'invalid', 'org-b': 'active' });
    const cred = await h.services.credentials.show('org-a');
    const audit = await h.services.audit.list({ limit: 1000 });
    const entry = audit.find((e) => e.action === 'credential.invalid');
    expect(entry?.targetId).toBe(cred.id);
    expect(JSON.stringify(entry)).toContain('confirmed');
    expect(JSON.stringify(audit)).not.toContain(a);
    await h.refresh();
    const before = messageCalls(h).length;
    await h.client(alice).messages.create(PARAMS);
    expect(
      messageCalls(h)
        .slice(before)
        .map((s) => [s.apiKey, s.status]),
    ).toEqual([[b, 200]]);
  });
});

describe('an upstream 401 during a rotation grace period', () => {
  let h: Harness;
  let now = Date.now();
  let key: string;
  let original: string;
  /** The secret org-key holds now. */
  let current: string;

  beforeAll(async () => {
    h = await startHarness({ clock: () => now });
    original = await h.orgCredential('org-key');
    current = original;
    key = await h.key();
    await h.client(key).messages.create(PARAMS); // warm: key, budgets and credentials loaded
  });
  beforeEach(() => {
    h.fake.reset();
    now += STEP_MS;
  });
  afterAll(() => h.close());

  it('the previous secret revoked upstream stops being used; the fresh one stays active', async () => {
    const fresh = canaryAnthropicKey();
    await h.services.credentials.rotate(h.admin, 'org-key', fresh, true, 24 * 3600_000);
    await h.refresh();
    h.fake.revokeKey(original);
    // The fresh secret is overloaded once: the request fails over to the previous one (401), then back.
    h.fake.enqueueFault({ kind: 'status', status: 529 }, { apiKey: fresh });
    expect((await h.client(key).messages.create(PARAMS)).type).toBe('message');
    expect(messageCalls(h).map((s) => [s.apiKey, s.status])).toEqual([
      [fresh, 529],
      [original, 401],
      [fresh, 200],
    ]);
    await until(async () => (await statuses(h))['org-key.previous'] === 'invalid');
    expect(await statuses(h)).toEqual({ 'org-key': 'active', 'org-key.previous': 'invalid' });
    await h.refresh();
    h.fake.enqueueFault({ kind: 'status', status: 529 }, { apiKey: fresh });
    await h.client(key).messages.create(PARAMS);
    // The previous secret is no longer a failover: only the fresh one is tried.
    expect(
      new Set(
        messageCalls(h)
          .slice(3)
          .map((s) => s.apiKey),
      ),
    ).toEqual(new Set([fresh]));
    current = fresh;
  });

  it('a 401 of a request still using the pre-rotation secret invalidates that secret, not the fresh one', async () => {
    const before = current;
    // A request leaves with the current secret under the credential's id; the upstream answers it
    // 401 only after the credential was rotated and its old secret revoked.
    const inFlight = h
      .client(key)
      .messages.create(PARAMS, { headers: { 'anthropic-beta': 'fake-unauthorized-after-800' } })
      .catch((e: unknown) => e);
    await until(() => false, 200);
    const fresh = canaryAnthropicKey();
    await h.services.credentials.rotate(h.admin, 'org-key', fresh, true, 24 * 3600_000);
    await h.refresh();
    h.fake.revokeKey(before);
    expect(await inFlight).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(messageCalls(h).map((s) => [s.apiKey, s.status])).toEqual([[before, 401]]);
    // The check validates the secret that failed (revoked: confirmed) and marks the row holding it.
    await until(async () => (await statuses(h))['org-key.previous'] === 'invalid');
    await h.gateway.deps.credentials.settled?.();
    expect(await statuses(h)).toEqual({ 'org-key': 'active', 'org-key.previous': 'invalid' });
    // (The fresh secret's call is the rotation's own validation, before it was stored.)
    expect(validationCalls(h).map((s) => [s.apiKey, s.status])).toEqual([
      [fresh, 200],
      [before, 401],
    ]);
    const previous = (await h.services.credentials.list()).find((c) => c.name === 'org-key.previous');
    const audit = await h.services.audit.list({ limit: 1000 });
    const entries = audit.filter((e) => e.action === 'credential.invalid');
    expect(entries.at(-1)?.targetId).toBe(previous?.id);
    expect(JSON.stringify(entries.at(-1))).toContain('previous');
    await h.refresh();
    await h.client(key).messages.create(PARAMS);
    expect(messageCalls(h).at(-1)).toMatchObject({ apiKey: fresh, status: 200 });
  });
});
