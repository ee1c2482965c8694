// Prompt caching `auto`: a request without any cache_control whose system prompt and tools are long
// enough to be cached gets one 5-minute breakpoint at the end of that shared prefix.

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether the client already placed a breakpoint anywhere (then Tollgate leaves the request alone). */
export function hasCacheControl(body: Json): boolean {
  if (body.cache_control !== undefined) return true;
  const blocks = (list: unknown) =>
    Array.isArray(list) && list.some((b) => isObject(b) && b.cache_control !== undefined);
  if (blocks(body.tools) || blocks(body.system)) return true;
  if (Array.isArray(body.messages)) {
    for (const m of body.messages) if (isObject(m) && blocks(m.content)) return true;
  }
  return false;
}

/**
 * A cheap estimate of the tokens in tools + system: about four UTF-8 bytes per token. Tools and system are
 * each serialised once (linear in the body; for small, many-stringed values native JSON.stringify is
 * faster than measuring without it, see jsonByteLength).
 */
export function prefixTokenEstimate(body: Json): number {
  let bytes = 0;
  if (Array.isArray(body.tools)) bytes += Buffer.byteLength(JSON.stringify(body.tools));
  if (typeof body.system === 'string') bytes += Buffer.byteLength(body.system);
  else if (Array.isArray(body.system)) bytes += Buffer.byteLength(JSON.stringify(body.system));
  return Math.floor(bytes / 4);
}

/**
 * Returns the body with a breakpoint added (a new object; the input is not changed), or null when
 * none applies: the client set its own, or the prefix is shorter than the model's minimum.
 */
export function withAutoCache(body: Json, minCacheableTokens: number): Json | null {
  if (hasCacheControl(body) || prefixTokenEstimate(body) < minCacheableTokens) return null;
  const mark = { type: 'ephemeral' };
  if (typeof body.system === 'string' && body.system.length > 0) {
    return { ...body, system: [{ type: 'text', text: body.system, cache_control: mark }] };
  }
  if (Array.isArray(body.system) && body.system.length > 0) {
    const system = [...body.system];
    const last = system[system.length - 1];
    if (isObject(last)) {
      system[system.length - 1] = { ...last, cache_control: mark };
      return { ...body, system };
    }
  }
  if (Array.isArray(body.tools) && body.tools.length > 0) {
    const tools = [...body.tools];
    const last = tools[tools.length - 1];
    if (isObject(last)) {
      tools[tools.length - 1] = { ...last, cache_control: mark };
      return { ...body, tools };
    }
  }
  return null;
}
