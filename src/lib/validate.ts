// Validation of the names and enumerations users type; every refusal says what to change.
import { AppError } from './errors.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

/** Checks a user/team/credential/key name: 1–64 characters, letters, digits, `.`, `_`, `-`, `@`. */
export function validateName(kind: string, name: string): string {
  if (!NAME.test(name)) {
    throw new AppError(
      'invalid_input',
      `${kind} name ${JSON.stringify(truncate(name))} is not valid: use 1-64 letters, digits, ".", "_", "-" or "@", starting with a letter or digit`,
    );
  }
  return name;
}

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,190}\.[^\s@]{2,63}$/;

export function validateEmail(email: string): string {
  if (!EMAIL.test(email))
    throw new AppError('invalid_input', `email ${JSON.stringify(truncate(email))} is not valid`);
  return email;
}

/** Narrows a string to one of the allowed values or refuses, listing them. */
export function oneOf<T extends string>(what: string, value: string, allowed: readonly T[]): T {
  const found = allowed.find((a) => a === value);
  if (found === undefined) {
    throw new AppError(
      'invalid_input',
      `${what} must be one of ${allowed.join(', ')} (got ${JSON.stringify(truncate(value))})`,
    );
  }
  return found;
}

/** Parses a positive integer option such as --rpm or --max-tokens. */
export function parsePositiveInt(what: string, text: string, max = 1_000_000_000): number {
  if (!/^[0-9]{1,10}$/.test(text.trim())) {
    throw new AppError(
      'invalid_input',
      `${what} must be a positive whole number (got ${JSON.stringify(truncate(text))})`,
    );
  }
  const value = Number(text.trim());
  if (value < 1 || value > max) throw new AppError('invalid_input', `${what} must be between 1 and ${max}`);
  return value;
}

export function truncate(text: string, max = 40): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
