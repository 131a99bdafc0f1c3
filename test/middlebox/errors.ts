// Errors raised by the middlebox test infrastructure. One class, a stable
// `code` per kind of failure, so a test (or CI log reader) can tell "squid is
// not installed" from "squid did not come up in time".

export type MiddleboxErrorCode =
  /** A program or helper is missing and could not be installed. */
  | 'MIDDLEBOX_MISSING_PACKAGE'
  /** The operation needs root (or CAP_SYS_ADMIN / CAP_NET_ADMIN). */
  | 'MIDDLEBOX_NOT_PRIVILEGED'
  /** A program did not become ready within its bound. */
  | 'MIDDLEBOX_START_TIMEOUT'
  /** A program exited while starting. */
  | 'MIDDLEBOX_START_FAILED'
  /** A program (or its process group) did not exit within its bound. */
  | 'MIDDLEBOX_STOP_TIMEOUT'
  /** A command run by the infrastructure failed or timed out. */
  | 'MIDDLEBOX_COMMAND_FAILED'
  /** A bounded wait ran out. */
  | 'MIDDLEBOX_WAIT_TIMEOUT'
  /** A config template and the values rendered into it do not agree. */
  | 'MIDDLEBOX_TEMPLATE';

export class MiddleboxError extends Error {
  readonly code: MiddleboxErrorCode;

  constructor(code: MiddleboxErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MiddleboxError';
    this.code = code;
  }
}

/** A command run by the infrastructure exited non-zero, was killed, or timed out. */
export class CommandFailedError extends MiddleboxError {
  readonly command: readonly string[];
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;

  constructor(
    command: readonly string[],
    details: { exitCode: number | null; stdout: string; stderr: string; reason: string },
    options?: { cause?: unknown },
  ) {
    const stderrTail = details.stderr.trim().split('\n').slice(-10).join('\n');
    super(
      'MIDDLEBOX_COMMAND_FAILED',
      `\`${command.join(' ')}\` ${details.reason}` + (stderrTail === '' ? '' : `:\n${stderrTail}`),
      options,
    );
    this.name = 'CommandFailedError';
    this.command = command;
    this.exitCode = details.exitCode;
    this.stdout = details.stdout;
    this.stderr = details.stderr;
  }
}
