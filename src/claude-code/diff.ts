// A unified diff of two small texts (settings files), for --dry-run. Pure.

type Op = { kind: ' ' | '-' | '+'; line: string };

// Settings files are small; past this many cells the diff shows one hunk replacing everything.
const MAX_CELLS = 4_000_000;

function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** The edit script from a longest common subsequence table. */
function editScript(a: readonly string[], b: readonly string[]): Op[] {
  if (a.length * b.length > MAX_CELLS) {
    return [...a.map((line): Op => ({ kind: '-', line })), ...b.map((line): Op => ({ kind: '+', line }))];
  }
  const width = b.length + 1;
  const lcs = new Uint32Array((a.length + 1) * width);
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i * width + j] =
        a[i] === b[j]
          ? (lcs[(i + 1) * width + j + 1] ?? 0) + 1
          : Math.max(lcs[(i + 1) * width + j] ?? 0, lcs[i * width + j + 1] ?? 0);
    }
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      ops.push({ kind: ' ', line: a[i] ?? '' });
      i++;
      j++;
    } else if (
      j < b.length &&
      (i === a.length || (lcs[i * width + j + 1] ?? 0) > (lcs[(i + 1) * width + j] ?? 0))
    ) {
      ops.push({ kind: '+', line: b[j] ?? '' });
      j++;
    } else {
      ops.push({ kind: '-', line: a[i] ?? '' });
      i++;
    }
  }
  return ops;
}

const range = (start: number, count: number) =>
  count === 1 ? `${start}` : `${count === 0 ? start - 1 : start},${count}`;

/** `--- from` / `+++ to` and @@ hunks with `context` lines around each change; '' when the texts are equal. */
export function unifiedDiff(
  before: string,
  after: string,
  labels: { from: string; to: string },
  context = 3,
): string {
  if (before === after) return '';
  const ops = editScript(splitLines(before), splitLines(after));
  // Changes separated by at most 2 × context unchanged lines share a hunk.
  const groups: Array<{ first: number; last: number }> = [];
  ops.forEach((op, index) => {
    if (op.kind === ' ') return;
    const group = groups[groups.length - 1];
    if (group && index - group.last <= 2 * context + 1) group.last = index;
    else groups.push({ first: index, last: index });
  });
  const out = [`--- ${labels.from}`, `+++ ${labels.to}`];
  for (const { first, last } of groups) {
    out.push(...hunk(ops, Math.max(0, first - context), Math.min(ops.length, last + context + 1)));
  }
  return `${out.join('\n')}\n`;
}

function hunk(ops: readonly Op[], from: number, to: number): string[] {
  let oldLine = 1;
  let newLine = 1;
  for (const op of ops.slice(0, from)) {
    if (op.kind !== '+') oldLine++;
    if (op.kind !== '-') newLine++;
  }
  const body = ops.slice(from, to);
  const oldCount = body.filter((op) => op.kind !== '+').length;
  const newCount = body.filter((op) => op.kind !== '-').length;
  return [
    `@@ -${range(oldLine, oldCount)} +${range(newLine, newCount)} @@`,
    ...body.map((op) => `${op.kind}${op.line}`),
  ];
}
