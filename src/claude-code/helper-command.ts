// The apiKeyHelper command Claude Code runs through a shell: absolute paths, so it works from any
// directory and with any PATH.

const SAFE_WORD = /^[A-Za-z0-9_./,:@%+=-]+$/;

/** Quotes one word for a POSIX shell; words made only of safe characters stay bare. */
export function shellQuote(word: string): string {
  return SAFE_WORD.test(word) ? word : quote(word);
}

function quote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** `'<node>' '<…/bin/tollgate.js>' claude-code key-helper --profile NAME`; paths are always quoted. */
export function keyHelperCommand(p: { nodePath: string; cliPath: string; profile: string }): string {
  return [
    quote(p.nodePath),
    quote(p.cliPath),
    'claude-code',
    'key-helper',
    '--profile',
    shellQuote(p.profile),
  ].join(' ');
}
