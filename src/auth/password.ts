// Passwords: argon2id (OWASP's parameters), hashed off the event loop. A sign-in for someone who does not
// exist, or has no password, verifies against a dummy hash of the same cost, so the answer takes as long.
import { AppError } from '../lib/errors.js';

/** `Algorithm.Argon2id` (an ambient const enum, which isolated modules cannot read). */
const ARGON2ID = 2;
const OPTIONS = { algorithm: ARGON2ID, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export const PASSWORD_MIN_LENGTH = 12;
/** Bounds the work one request can ask for, and the body it needs. */
export const PASSWORD_MAX_LENGTH = 256;

/** Refuses a password too short, too long, or equal to the person's own name or email. */
export function checkNewPassword(password: string, person: { name: string; email: string | null }): void {
  if (password.length < PASSWORD_MIN_LENGTH)
    throw new AppError(
      'invalid_input',
      `the password must be at least ${PASSWORD_MIN_LENGTH} characters long`,
      { fields: ['password'] },
    );
  if (password.length > PASSWORD_MAX_LENGTH)
    throw new AppError(
      'invalid_input',
      `the password must be at most ${PASSWORD_MAX_LENGTH} characters long`,
      {
        fields: ['password'],
      },
    );
  const lower = password.toLowerCase();
  if (lower === person.name.toLowerCase() || (person.email !== null && lower === person.email.toLowerCase()))
    throw new AppError('invalid_input', 'the password must not be your name or email', {
      fields: ['password'],
    });
}

// The native module is loaded at the first password, not at start (several MB most servers never need).
let argon2: Promise<typeof import('@node-rs/argon2')> | null = null;
const load = () => {
  argon2 ??= import('@node-rs/argon2');
  return argon2;
};

export async function hashPassword(password: string): Promise<string> {
  return (await load()).hash(password, OPTIONS);
}

let dummy: Promise<string> | null = null;

/** True when the password matches; false for a wrong one, a null hash or an over-long input. */
export async function verifyPassword(stored: string | null, password: string): Promise<boolean> {
  // Over-long inputs still pay the cost, on a bounded prefix, so length does not show in the timing.
  const candidate = password.slice(0, PASSWORD_MAX_LENGTH + 1);
  dummy ??= hashPassword('tollgate: nobody has this password');
  const target = stored ?? (await dummy);
  try {
    const ok = await (await load()).verify(target, candidate);
    return ok && stored !== null && password.length <= PASSWORD_MAX_LENGTH;
  } catch {
    return false;
  }
}
