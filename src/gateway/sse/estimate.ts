// The conservative output-token estimate used when a stream ends without its final usage.
//
// Real streams report output tokens only in the last `message_delta`. When a stream is cut short (client
// abort, mid-stream `error`, upstream reset) Tollgate bills what it relayed, estimated from above:
//
//   per content_block_delta event:  ceil(payload bytes / 3) + 1
//   stream estimate:                max(last reported output_tokens, sum of the above)
//
// Why 3 bytes: Claude's tokenizer rarely produces a token shorter than 3 bytes of UTF-8 in prose or
// code (English averages ~4 bytes per token; a CJK character is 3 bytes). The +1 per event covers a
// token split across two deltas, so the sum never falls below the true count when tokens are ≥ 3 bytes.
// Payload bytes are counted on the raw JSON string, escapes included (`\n` is 2 bytes, `\u00e9` is 6),
// which only over-estimates. Known blind spot: rare characters (some emoji, unusual scripts) can cost
// more than one token per 3 bytes; reconciliation with Anthropic's usage report corrects those records.

/** Bytes of delta payload assumed per output token (a lower bound on real token length). */
export const BYTES_PER_TOKEN_FLOOR = 3;

/** Upper-bound estimate of the output tokens carried by one content_block_delta of `payloadBytes`. */
export function deltaTokenEstimate(payloadBytes: number): number {
  return Math.ceil(payloadBytes / BYTES_PER_TOKEN_FLOOR) + 1;
}
