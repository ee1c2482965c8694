// A usage record for the in-process benches (micro.ts, micro-ledger.ts): a small successful request.
import type { UsageRecordTable } from '../../src/db/schema.js';

export function benchRecord(id: string, over: Partial<UsageRecordTable> = {}): UsageRecordTable {
  return {
    id,
    at: Date.now(),
    endpoint: 'messages',
    key_id: 'key_micro',
    user_id: 'usr_micro',
    team_id: null,
    service_user_id: null,
    credential_id: null,
    model: 'claude-haiku-4-5',
    input_tokens: 9,
    output_tokens: 20,
    cache_write_5m_tokens: 0,
    cache_write_1h_tokens: 0,
    cache_read_tokens: 0,
    web_search_requests: 0,
    cost_micro: 110,
    saved_micro: 0,
    latency_ms: 3,
    status: 200,
    outcome: 'ok',
    upstream_request_id: null,
    stream: 0,
    partial: 0,
    estimated: 0,
    attempts: 1,
    ...over,
  };
}
