import { describe, expect, it } from 'vitest';
import { claudeCodeRow, parseDay } from './claude-code.service.js';

describe('parseDay', () => {
  it('takes a real UTC day and refuses anything else', () => {
    expect(parseDay('2026-12-01')).toEqual({ day: '2026-12-01', start: Date.UTC(2026, 11, 1) });
    for (const bad of ['2026-02-30', '2026-1-01', '2026-12-01T00:00:00Z', ''])
      expect(() => parseDay(bad)).toThrow('--day must be a UTC day');
  });
});

describe('claudeCodeRow', () => {
  it('sums tool accept/reject over tools and estimated cost over models; names an API actor by key', () => {
    const row = claudeCodeRow(
      {
        date: '2026-12-01T00:00:00Z',
        actor: { type: 'api_actor', api_key_name: 'ci' },
        core_metrics: {
          num_sessions: 1,
          lines_of_code: { added: 2, removed: 3 },
          commits_by_claude_code: 4,
          pull_requests_by_claude_code: 5,
        },
        tool_actions: { edit_tool: { accepted: 1, rejected: 2 }, write_tool: { accepted: 10, rejected: 20 } },
        model_breakdown: [
          { model: 'a', estimated_cost: { currency: 'USD', amount: 12.5 } },
          { model: 'b', estimated_cost: { currency: 'USD', amount: 7.5 } },
        ],
      },
      null,
    );
    expect(row).toMatchObject({
      actor: 'api key ci',
      toolAccepted: 11,
      toolRejected: 22,
      estimatedCostCents: 20,
    });
    expect(row.tollgateUser).toBeNull();
  });
});
