// Non-secret hints that let people (and Anthropic's Admin API) recognise a credential.
import type { Provider } from '../db/schema.js';

/**
 * Anthropic keys use Anthropic's own `partial_key_hint` format (first 16 + "..." + last 4, e.g.
 * `sk-ant-api03-R2D...igAA`) so Admin API key listings can be matched to stored credentials.
 * Other tokens show only their last 4 characters, and short secrets show nothing.
 */
export function credentialHint(provider: Provider, secret: string): string {
  if ((provider === 'anthropic' || provider === 'anthropic-admin') && secret.length >= 40) {
    return `${secret.slice(0, 16)}...${secret.slice(-4)}`;
  }
  return secret.length >= 16 ? `...${secret.slice(-4)}` : '...';
}
