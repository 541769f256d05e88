// The command line's shape: a command, positional words and repeatable `--flag value` pairs.

export interface ParsedArgs {
  readonly command: string;
  readonly positional: readonly string[];
  readonly flags: ReadonlyMap<string, readonly string[]>;
}

const booleanFlags = new Set(['local', 'json', 'follow', 'stderr', 'watch', 'help', 'async', 'treat-failure-as-deployment-failure']);

// Splits argv into a command, positional words and `--flag value` pairs (repeatable).
export function parseArgs(argv: readonly string[]): ParsedArgs {
  const [command = 'help', ...rest] = argv;
  const positional: string[] = [];
  const flags = new Map<string, string[]>();
  for (let index = 0; index < rest.length; index += 1) {
    const word = rest[index] ?? '';
    if (!word.startsWith('--')) {
      positional.push(word);
      continue;
    }
    const [key = '', inline] = word.slice(2).split(/=(.*)/s, 2);
    const value = inline ?? (booleanFlags.has(key) ? 'true' : rest[(index += 1)]);
    if (value === undefined) throw new Error(`--${key} needs a value`);
    flags.set(key, [...(flags.get(key) ?? []), value]);
  }
  return { command, positional, flags };
}
