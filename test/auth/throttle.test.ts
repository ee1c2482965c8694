// Sign-in throttling and account enumeration. Failed password sign-ins are counted per account and per
// address over a minute; the admin-token login and invite links per address. Every failed password
// sign-in — unknown person, wrong password, no password yet — answers alike, in about the same time.
// The server's clock is a test clock, so a window can pass without waiting for it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../src/lib/errors.js';
import { type SessionClient, signIn } from '../helpers/browser-session.js';
import { type ApiJson, type Harness, startHarness } from '../helpers/gateway.js';

let h: Harness;
let offset = 0;
const clock = () => Date.now() + offset;
/** Moves the clock past every throttle window (all HTTP calls come from one address, 127.0.0.1). */
const nextWindow = () => {
  offset += 61_000;
};

const DAN = 'dan correct password';
const ERIN = 'erin correct password';
const FRANK = 'frank correct password';

async function setPassword(name: string, password: string): Promise<void> {
  const invite = await h.services.invites.issue(h.admin, name);
  await h.services.invites.accept(invite.url.split('/invite/')[1] ?? '', password, {
    ip: '192.0.2.1',
    userAgent: null,
  });
}

beforeAll(async () => {
  h = await startHarness({ clock });
  for (const name of ['dan', 'erin', 'frank', 'gail'])
    await h.services.users.add(h.admin, { name, email: `${name}@example.com`, role: 'member' });
  await setPassword('dan', DAN);
  await setPassword('erin', ERIN);
  await setPassword('frank', FRANK);
  // gail has no password yet.
}, 60_000);
afterAll(() => h?.close());

async function login(body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${h.url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const json: ApiJson = await response.json();
  return { status: response.status, headers: response.headers, json };
}

/** The AppError a service call refused with (fails the test when it succeeded). */
async function refusal(promise: Promise<unknown>): Promise<AppError> {
  const outcome = await promise.then(
    () => null,
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(AppError);
  return outcome as AppError;
}

const at = (ip: string) => ({ ip, userAgent: null });

describe('password sign-in over HTTP', () => {
  it('after 10 wrong passwords in a minute, the 11th attempt is 429 even with the right one; later it works', async () => {
    nextWindow();
    // Positive control: the right password works before any failure.
    expect((await login({ login: 'dan', password: DAN })).status).toBe(200);
    for (let i = 0; i < 10; i++) {
      const wrong = await login({ login: 'dan', password: `wrong password ${i}` });
      expect(wrong.status, `attempt ${i + 1}`).toBe(401);
      offset += 1_000;
    }
    const throttled = await login({ login: 'dan', password: DAN });
    expect(throttled.status).toBe(429);
    expect(throttled.json.error.code).toBe('rate_limited');
    expect(throttled.headers.get('set-cookie')).toBeNull();
    const retry = Number(throttled.headers.get('retry-after'));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
    // A second before the retry-after time it is still refused; a second after, the right password works.
    offset += (retry - 2) * 1000;
    expect((await login({ login: 'dan', password: DAN })).status).toBe(429);
    offset += 2000;
    expect((await login({ login: 'dan', password: DAN })).status).toBe(200);
  });
});

describe('password sign-in throttle, per account and per address (service level, addresses varied)', () => {
  it('an account under attack from many addresses is throttled; others, elsewhere, still sign in', async () => {
    nextWindow();
    const signIn = h.services.signIn;
    for (let i = 0; i < 10; i++)
      await refusal(signIn.withPassword('erin', `guess ${i}`, at(`198.51.100.${i + 1}`)));
    // Even the right password from a fresh address: the account is throttled.
    const refused = await refusal(signIn.withPassword('erin', ERIN, at('198.51.100.99')));
    expect(refused.code).toBe('rate_limited');
    expect(refused.details.retry_after_s).toEqual(expect.any(Number));
    // Another account from another address is untouched.
    await signIn.withPassword('frank', FRANK, at('198.51.100.200'));
    // The account key is the identifier as typed, case-insensitively: ERIN is erin.
    expect((await refusal(signIn.withPassword('ERIN', ERIN, at('198.51.100.98')))).code).toBe('rate_limited');
    nextWindow();
    await signIn.withPassword('erin', ERIN, at('198.51.100.99'));
  });

  it('an address trying many accounts is throttled across accounts; other addresses are not', async () => {
    nextWindow();
    const signIn = h.services.signIn;
    for (let i = 0; i < 10; i++)
      await refusal(signIn.withPassword(`nobody-${i}`, 'some password', at('203.0.113.7')));
    const refused = await refusal(signIn.withPassword('frank', FRANK, at('203.0.113.7')));
    expect(refused.code).toBe('rate_limited');
    await signIn.withPassword('frank', FRANK, at('203.0.113.8'));
    nextWindow();
    await signIn.withPassword('frank', FRANK, at('203.0.113.7'));
  });

  it('a success clears the account count but not the address count', async () => {
    nextWindow();
    const signIn = h.services.signIn;
    const x = '192.0.2.10';
    for (let i = 0; i < 9; i++) await refusal(signIn.withPassword('frank', `guess ${i}`, at(x)));
    await signIn.withPassword('frank', FRANK, at(x));
    // The 10th failure of the address: the address is throttled now, the account (count restarted) is not.
    await refusal(signIn.withPassword('frank', 'guess again', at(x)));
    expect((await refusal(signIn.withPassword('frank', FRANK, at(x)))).code).toBe('rate_limited');
    await signIn.withPassword('frank', FRANK, at('192.0.2.11'));
  });
});

describe('enumeration', () => {
  const kinds = {
    unknown: { login: 'nobody-at-all', password: 'a password of some length' },
    'wrong password': { login: 'erin', password: 'a password of some length' },
    'no password yet': { login: 'gail', password: 'a password of some length' },
  } as const;
  type Kind = keyof typeof kinds;

  /** One attempt, in a fresh throttle window so none is refused for being one too many. */
  async function attempt(kind: Kind) {
    nextWindow();
    const started = performance.now();
    const answer = await login(kinds[kind]);
    const ms = performance.now() - started;
    const headers = [...answer.headers.entries()].filter(
      ([name]) => name !== 'request-id' && name !== 'date',
    );
    const { requestId: _id, ...error } = answer.json.error;
    return { status: answer.status, error, headers, ms };
  }

  it('unknown person, wrong password and no password get the same status, code, message and headers', async () => {
    const answers = [];
    for (const kind of Object.keys(kinds) as Kind[]) answers.push(await attempt(kind));
    const [first, ...rest] = answers.map(({ ms: _ms, ...a }) => a);
    expect(first?.status).toBe(401);
    expect(first?.error).toEqual({ code: 'unauthenticated', message: 'wrong name or password' });
    for (const other of rest) expect(other).toEqual(first);
    // Positive control: the right password for the same person signs in.
    nextWindow();
    expect((await login({ login: 'erin', password: ERIN })).status).toBe(200);
  });

  it('and take about as long (medians of 15 within a factor 2)', async () => {
    const times: Record<Kind, number[]> = { unknown: [], 'wrong password': [], 'no password yet': [] };
    const order = Object.keys(kinds) as Kind[];
    for (const kind of order) await attempt(kind); // warm-up (the dummy hash is made on first use)
    for (let round = 0; round < 15; round++)
      for (const kind of order) {
        const { status, ms } = await attempt(kind);
        expect(status).toBe(401);
        times[kind].push(ms);
      }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    const medians = order.map((k) => median(times[k]));
    const ratio = Math.max(...medians) / Math.min(...medians);
    console.log(
      `sign-in failure medians (ms): ${order.map((k, i) => `${k} ${medians[i]?.toFixed(1)}`).join(', ')}; ratio ${ratio.toFixed(2)}`,
    );
    expect(ratio).toBeLessThan(2);
  }, 60_000);
});

describe('the admin-token login', () => {
  it('is throttled per address after 10 wrong tokens; the right one works after the window', async () => {
    nextWindow();
    const right = await login({ token: h.adminToken });
    expect(right.status).toBe(200);
    for (let i = 0; i < 10; i++) expect((await login({ token: `tga_wrong${i}` })).status).toBe(401);
    const throttled = await login({ token: h.adminToken });
    expect(throttled.status).toBe(429);
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another address is not throttled (service level: the address is the only key).
    await h.services.signIn.withAdminToken(h.adminToken, at('198.51.100.10'));
    nextWindow();
    expect((await login({ token: h.adminToken })).status).toBe(200);
  });
});

describe('invite links', () => {
  it('10 unusable links from an address throttle it, for using and for looking up a link', async () => {
    nextWindow();
    await h.services.users.add(h.admin, { name: 'hank', role: 'member' });
    const invite = await h.services.invites.issue(h.admin, 'hank');
    const token = invite.url.split('/invite/')[1] ?? '';
    // Positive control: the link is good before any failure.
    expect((await fetch(`${h.url}/auth/invite/${token}`)).status).toBe(200);
    for (let i = 0; i < 5; i++) {
      const bad = `tgi_${String(i).repeat(49)}`;
      expect((await fetch(`${h.url}/auth/invite/${bad}`)).status).toBe(404);
      const post = await fetch(`${h.url}/invite/${bad}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ password: 'hank chosen password' }),
      });
      expect(post.status).toBe(404);
    }
    const lookup = await fetch(`${h.url}/auth/invite/${token}`);
    expect(lookup.status).toBe(429);
    expect(Number(lookup.headers.get('retry-after'))).toBeGreaterThan(0);
    // The page itself is the dashboard shell (no lookup of its own): the lookup it makes is refused.
    const page = await fetch(`${h.url}/invite/${token}`);
    expect(page.status).toBe(200);
    expect(await page.text()).not.toContain(token);
    expect((await fetch(`${h.url}/auth/invite/${token}`)).status).toBe(429);
    await expect(signIn(h.url, `/invite/${token}`, { password: 'hank chosen password' })).rejects.toThrow(
      /429/,
    );
    // The refusals used nothing up: after the window the same link works.
    nextWindow();
    const s: SessionClient = await signIn(h.url, `/invite/${token}`, { password: 'hank chosen password' });
    expect(s.json).toMatchObject({ user: { name: 'hank' } });
  });

  it('another address can still use its link while one is throttled (service level)', async () => {
    nextWindow();
    await h.services.users.add(h.admin, { name: 'ivy', role: 'member' });
    const token = (await h.services.invites.issue(h.admin, 'ivy')).url.split('/invite/')[1] ?? '';
    for (let i = 0; i < 10; i++)
      await refusal(h.services.invites.inspect(`tgi_${String(i).repeat(49)}`, at('203.0.113.50')));
    expect((await refusal(h.services.invites.inspect(token, at('203.0.113.50')))).code).toBe('rate_limited');
    expect((await h.services.invites.inspect(token, at('203.0.113.51'))).user).toBe('ivy');
    await h.services.invites.accept(token, 'ivy chosen password!', at('203.0.113.51'));
  });
});
