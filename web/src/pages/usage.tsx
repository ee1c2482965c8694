// Placeholder until this page is built (issue 14, same session).
import type { SignedInProps } from '../routes.js';
import { Page } from '../ui/kit.js';

export function UsagePage(_props: SignedInProps) {
  return <Page title="Usage">{null}</Page>;
}
