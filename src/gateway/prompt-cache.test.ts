import { describe, expect, it } from 'vitest';
import { hasCacheControl, withAutoCache } from './prompt-cache.js';

const long = 'x'.repeat(4 * 2000);

describe('prompt caching auto', () => {
  it('adds a 5-minute breakpoint at the end of a long system prompt', () => {
    const body = { model: 'm', system: long, messages: [{ role: 'user', content: 'hi' }] };
    const patched = withAutoCache(body, 1024);
    expect(patched?.system).toEqual([{ type: 'text', text: long, cache_control: { type: 'ephemeral' } }]);
    expect(body.system).toBe(long);
  });

  it('marks the last system block, or else the last tool', () => {
    const blocks = withAutoCache(
      {
        system: [
          { type: 'text', text: 'a' },
          { type: 'text', text: long },
        ],
        messages: [],
      },
      1024,
    );
    expect((blocks?.system as unknown[] | undefined)?.[1]).toMatchObject({
      cache_control: { type: 'ephemeral' },
    });
    const tools = withAutoCache(
      { tools: [{ name: 't', input_schema: { description: long } }], messages: [] },
      1024,
    );
    expect((tools?.tools as unknown[] | undefined)?.[0]).toMatchObject({
      cache_control: { type: 'ephemeral' },
    });
  });

  it('leaves short prefixes and client breakpoints alone', () => {
    expect(withAutoCache({ system: 'short', messages: [] }, 1024)).toBeNull();
    const own = {
      system: long,
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'q', cache_control: { type: 'ephemeral' } }] },
      ],
    };
    expect(hasCacheControl(own)).toBe(true);
    expect(withAutoCache(own, 1024)).toBeNull();
    expect(
      withAutoCache({ system: long, cache_control: { type: 'ephemeral' }, messages: [] }, 1024),
    ).toBeNull();
  });
});
