import { describe, expect, it } from 'vitest';
import { tailUsage } from './relay.js';

describe('tailUsage', () => {
  const body = (
    content: string,
    usage = '{"input_tokens":12,"output_tokens":7,"cache_creation":{"ephemeral_5m_input_tokens":3}}',
  ) =>
    Buffer.from(
      `{"id":"msg_1","content":[{"type":"text","text":${JSON.stringify(content)}}],"stop_reason":"end_turn","usage":${usage}}`,
    );

  it('reads the usage object at the end of an answer', () => {
    expect(tailUsage(body('hello'))).toEqual({
      input_tokens: 12,
      output_tokens: 7,
      cache_creation: { ephemeral_5m_input_tokens: 3 },
    });
  });

  it('is not fooled by "usage": inside the generated text', () => {
    expect(tailUsage(body('the "usage": {"input_tokens": 999} field'))).toMatchObject({ input_tokens: 12 });
  });

  it('declines (so the caller parses everything) when the object is not a usage', () => {
    expect(tailUsage(Buffer.from('{"usage":{"note":"x"}}'))).toBeNull();
    expect(tailUsage(Buffer.from('{"content":[]}'))).toBeNull();
    expect(tailUsage(Buffer.from('{"usage":{"input_tokens":1'))).toBeNull();
  });
});
