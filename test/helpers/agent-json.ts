// JSON as the Linux agent writes it: Python's json.dumps defaults — one line, ", " and ": "
// separators, every non-ASCII UTF-16 unit escaped as \uXXXX (ensure_ascii, protocol.md §5).

// A number Python holds as a float: written with a fractional part (`1.0`, as in the agent's
// HandlerEnvironment.json), where JavaScript would write `1`.
export class PythonFloat {
  constructor(readonly value: number) {}
}

function escapeNonAscii(json: string): string {
  return json.replace(/[\u007f-\uffff]/g, (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// Serializes a JSON value like Python's json.dumps(value).
export function toAgentJson(value: unknown): string {
  if (value instanceof PythonFloat) {
    return Number.isInteger(value.value) ? value.value.toFixed(1) : String(value.value);
  }
  if (Array.isArray(value)) return `[${value.map(toAgentJson).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    const members = Object.entries(value)
      .filter(([, member]) => member !== undefined)
      .map(([key, member]) => `${escapeNonAscii(JSON.stringify(key))}: ${toAgentJson(member)}`);
    return `{${members.join(', ')}}`;
  }
  return escapeNonAscii(JSON.stringify(value) ?? 'null');
}
