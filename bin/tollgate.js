#!/usr/bin/env -S node --max-semi-space-size=8 --max-old-space-size=1024
// Entry point of the `tollgate` CLI: runs the compiled program from dist/.
// The V8 settings above (also in package.json's `start`, which a test keeps equal) bound the server's
// memory: V8's defaults size the heap for the whole machine (a 32 MB young generation, and an old
// generation allowed to reach four times its live data before a full collection), which would put a
// gateway with 10,000 active keys well past 150 MB. A young generation of 16 MB and an old-generation
// ceiling of 1 GiB (which also caps that factor at ~1.6) take 15–35 MB off the server's peak RSS at
// a CPU cost within measurement noise; see the README's performance section. To give a very large
// installation more heap: `node --max-semi-space-size=8 --max-old-space-size=4096 bin/tollgate.js serve`.
// `claude-code key-helper` takes a fast path: Claude Code runs it often (apiKeyHelper), so it loads only
// the key store instead of the whole CLI.
const args = process.argv.slice(2);
if (args[0] === 'claude-code' && args[1] === 'key-helper') {
  const { keyHelperMain } = await import('../dist/claude-code/key-helper-main.js');
  process.exitCode = await keyHelperMain(args.slice(2));
} else {
  const { main } = await import('../dist/cli/main.js');
  process.exitCode = await main(args);
}
