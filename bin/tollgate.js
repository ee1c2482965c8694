#!/usr/bin/env node
// Entry point of the `tollgate` CLI: runs the compiled program from dist/.
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
