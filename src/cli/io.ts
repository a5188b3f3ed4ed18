/**
 * What a CLI command talks to: its streams and an exit code. Tests pass their own.
 * @module
 */
import { fstatSync, writeSync } from 'node:fs';
import { Writable } from 'node:stream';
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
 * pipe or TTY stream) on first access, which costs a command that never reads its input; and
 * standard output is written directly (see {@link directStdout}) when it is a pipe or a file.
 */
export function processIo(): CliIo {
  let stdout: NodeJS.WritableStream | null = null;
  return {
    get stdin() {
      return process.stdin;
    },
    get stdout() {
      stdout ??= directStdout();
      return stdout;
    },
    get stderr() {
      return process.stderr;
    },
  };
}

/**
 * Standard output as a Writable that writes file descriptor 1 synchronously when it is a pipe
 * or a regular file (what process.stdout does there too on Linux), without making
 * process.stdout: for a pipe Node would build a net.Socket, loading its network stack, which
 * costs a short command a noticeable part of its run. Partial writes are continued; if the
 * descriptor is non-blocking and full (EAGAIN), the rest and everything after goes through
 * process.stdout. Anything else (a TTY, a socket, Windows) is process.stdout itself.
 */
function directStdout(): NodeJS.WritableStream {
  let st;
  try {
    st = process.platform === 'win32' ? null : fstatSync(1);
  } catch {
    st = null;
  }
  if (!st || !(st.isFIFO() || st.isFile())) return process.stdout;
  let fallback = false;
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (fallback) return void process.stdout.write(chunk, callback);
      let off = 0;
      try {
        while (off < chunk.length) off += writeSync(1, chunk, off, chunk.length - off);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return void callback(e as Error);
        fallback = true;
        return void process.stdout.write(chunk.subarray(off), callback);
      }
      callback();
    },
  });
}
