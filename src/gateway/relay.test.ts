import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { collect, tailUsage } from './relay.js';

describe('collect', () => {
  it('returns the whole body, one chunk or many', async () => {
    expect((await collect(Readable.from([Buffer.from('{"a":1}')]), 100)).toString()).toBe('{"a":1}');
    const many = Readable.from(['{"a"', ':', '1}'].map((t) => Buffer.from(t)));
    expect((await collect(many, 100)).toString()).toBe('{"a":1}');
    expect((await collect(Readable.from([]), 100)).length).toBe(0);
  });

  it('rejects a body over the limit, a broken one, and one destroyed before its end', async () => {
    const big = Readable.from([Buffer.alloc(60), Buffer.alloc(60)]);
    await expect(collect(big, 100)).rejects.toThrow('too large');
    const broken = new PassThrough();
    const reading = collect(broken, 100);
    broken.write('{"a"');
    broken.destroy(new Error('socket hang up'));
    await expect(reading).rejects.toThrow('socket hang up');
    const dropped = new PassThrough();
    const waiting = collect(dropped, 100);
    dropped.write('{"a"');
    dropped.destroy();
    await expect(waiting).rejects.toThrow('closed before its end');
  });
});

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
