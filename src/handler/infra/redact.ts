// The one redaction layer every log line, status message and event passes through: it masks
// every secret value registered by a run (run-command.md §4, targets.md security).

const mask = '***';

export class Redactor {
  // value → number of runs that registered it
  #secrets = new Map<string, number>();
  #ordered: string[] = [];

  // Registers secret values (ignores empty and trivially short ones that would mask everything).
  add(values: readonly string[]): void {
    for (const value of values) {
      if (value.length < 3) continue;
      this.#secrets.set(value, (this.#secrets.get(value) ?? 0) + 1);
    }
    this.#reorder();
  }

  // Forgets secret values registered by `add` once no run uses them.
  remove(values: readonly string[]): void {
    for (const value of values) {
      const count = this.#secrets.get(value);
      if (count === undefined) continue;
      if (count <= 1) this.#secrets.delete(value);
      else this.#secrets.set(value, count - 1);
    }
    this.#reorder();
  }

  // Masks every registered secret in `text` (longest first, so a secret inside another is masked too).
  redact(text: string): string {
    let result = text;
    for (const secret of this.#ordered) {
      if (result.includes(secret)) result = result.split(secret).join(mask);
    }
    return result;
  }

  #reorder(): void {
    this.#ordered = [...this.#secrets.keys()].sort((a, b) => b.length - a.length);
  }
}

export { toLoggableUrl } from '../../util/loggable-url.js';
