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

/**
 * The process's own streams. Each is looked up when first used: Node makes process.stdin (a
 * pipe or TTY stream) on first access, which costs a command that never reads its input.
 */
export function processIo(): CliIo {
  return {
    get stdin() {
      return process.stdin;
    },
    get stdout() {
      return process.stdout;
    },
    get stderr() {
      return process.stderr;
    },
  };
}
