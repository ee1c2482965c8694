// Option values shared by several commands, checked before anything is sent or stored.
import { parseUsd } from '../lib/money.js';
import { oneOf } from '../lib/validate.js';

/** `--byok preferred|required` */
export function byokOption(text: string): 'preferred' | 'required' {
  return oneOf('--byok', text, ['preferred', 'required'] as const);
}

/** A USD amount option, checked here so the message names the option; sent on as typed. */
export function usdOption(text: string, what: string): string {
  parseUsd(text, what);
  return text;
}

/** A USD amount option that also accepts `none` (→ null: remove the limit). */
export function usdOrNoneOption(text: string, what: string): string | null {
  return text.trim().toLowerCase() === 'none' ? null : usdOption(text, what);
}
