// Handler error codes and the typed error that carries them (run-command.md §7).
// Codes are grouped by blame: -1xx are the user's (bad input, unreachable URLs),
// -2xx are the handler's or the platform's.

export const errorCodes = {
  general: -1,
  scriptDownload: -100,
  blobCreate: -101,
  runAsLookup: -102,
  createDataDir: -200,
  invalidSettings: -202,
  saveScript: -203,
  startExecution: -204,
  artifactDownload: -215,
} as const;

export type ErrorCode = (typeof errorCodes)[keyof typeof errorCodes];
export type Blame = 'user' | 'service';

// An infrastructure fault whose code lands in the run's instance view as exitCode.
export class HandlerError extends Error {
  readonly code: ErrorCode;
  readonly blame: Blame;

  constructor(code: ErrorCode, message: string, options: { blame?: Blame; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HandlerError';
    this.code = code;
    this.blame = options.blame ?? (code <= -200 ? 'service' : 'user');
  }
}

// Invalid settings: names the offending field and the rule it breaks.
export class SettingsError extends HandlerError {
  readonly field: string;
  readonly rule: string;

  constructor(field: string, rule: string, options: { cause?: unknown } = {}) {
    super(errorCodes.invalidSettings, field ? `${field}: ${rule}` : rule, { blame: 'user', ...options });
    this.name = 'SettingsError';
    this.field = field;
    this.rule = rule;
  }
}

// Message of any thrown value, for logs and status messages (callers redact it).
export function toErrorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
