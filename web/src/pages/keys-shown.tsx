// A gateway key just issued or rotated, shown this once: the key, the one-line Claude Code command and
// an SDK snippet that reads it from the environment. "Done" drops it from the page and from memory.
import { CopyField } from '../ui/kit.js';

export interface Key {
  id: string;
  name: string | null;
  user: string;
  user_id: string;
  hint: string;
  status: 'active' | 'revoked' | 'expired';
  scopes: string[];
  models: string[] | null;
  max_tokens: number | null;
  monthly_budget_usd: string | null;
  daily_budget_usd: string | null;
  max_cost_per_request_usd: string | null;
  rpm: number | null;
  input_tpm: number | null;
  output_tpm: number | null;
  concurrency: number | null;
  environment: string | null;
  expires_at: string | null;
  created_at: string;
  revoked_at: string | null;
  rotated_to: string | null;
  last_used_at: string | null;
}

export interface IssuedKey extends Key {
  key: string;
  replaces?: string;
}

export function ShownKey(props: { issued: IssuedKey; onDone: () => void }) {
  const { issued } = props;
  const base = location.origin;
  const sdk = `new Anthropic({ baseURL: '${base}', apiKey: process.env.TOLLGATE_KEY })`;
  return (
    <section class="card shown-once" aria-labelledby="shown-key-heading">
      <h2 id="shown-key-heading">
        {issued.replaces ? 'Replacement key' : 'New key'} for {issued.user}
      </h2>
      <p>
        Copy it now: Tollgate keeps only a hash and cannot show it again.
        {issued.replaces ? ` It replaces ${issued.replaces}.` : ''}
      </p>
      <CopyField id="shown-key" label="Gateway key" value={issued.key} />
      <CopyField
        id="shown-claude"
        label="Claude Code (one line)"
        value={`ANTHROPIC_BASE_URL=${base} ANTHROPIC_API_KEY=${issued.key} claude`}
      />
      <CopyField id="shown-sdk" label="Anthropic SDK (key in TOLLGATE_KEY)" value={sdk} />
      <button type="button" class="primary" onClick={props.onDone}>
        Done
      </button>
    </section>
  );
}
