// The prompt tokens billed over the samplings of one request: a server-tool loop samples the model again
// after every use, and each sampling is billed for its whole prompt (the rules: input-bound.ts header).

/**
 * Σ over the samplings of a request (see the header): min(W, P) for the first, and for the k-th after it
 * min(W, P + output + the k largest result allowances). `uses` holds (count, allowance) pairs; each
 * group's arithmetic series is summed in closed form, so a huge max_uses costs nothing to bound.
 */
export function samplingsBound(
  prompt: number,
  output: number,
  uses: readonly number[],
  window: number,
): number {
  let total = Math.min(window, prompt);
  if (uses.length === 0) return total;
  const order: number[] = [];
  for (let i = 0; i < uses.length; i += 2) order.push(i);
  order.sort((a, b) => (uses[b + 1] ?? 0) - (uses[a + 1] ?? 0)); // largest results first
  let base = prompt + output;
  for (const i of order) {
    const m = uses[i] ?? 0;
    const r = uses[i + 1] ?? 0;
    // Samplings k = 1..m of this group read base + k·r, below the window while k < (window − base) / r.
    const below =
      r <= 0 ? (base < window ? m : 0) : Math.min(m, Math.max(0, Math.ceil((window - base) / r) - 1));
    total += below * base + (r * below * (below + 1)) / 2;
    if (m > below) total += (m - below) * window;
    base += m * r;
  }
  return total;
}
