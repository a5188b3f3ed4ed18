/**
 * What a CLI command talks to: its streams and an exit code. Tests pass their own.
 * @module
 */
export interface CliIo {
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

export interface CliCommand {
  /** One line for the command list. */
  readonly summary: string;
  /** Full --help text. */
  readonly help: string;
  /** Runs with the arguments after the command name; resolves to the exit code. */
  run(args: string[], io: CliIo): Promise<number>;
}

/** An error meant for a person: printed as `nsm-emulator <cmd>: <message>`, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function processIo(): CliIo {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
}
