// URLs as logs and messages show them: the query, where a SAS lives, never appears.

// A URL for logs: scheme, host and path only; the query (where a SAS lives) is dropped.
export function toLoggableUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return '<invalid URL>';
  }
}
