/**
 * Running one command: its --help, its exit code, and what a person is told when it fails. Shared
 * by the command table (main.ts) and the single-command bundles scripts/build-cli.js makes for
 * the commands people start most often, so both behave the same.
 * @module
 */
import { type CliCommand, type CliIo, UsageError } from './io.js';
import { fileProblem } from './files.js';
import { useNodeSystemRandom } from '../node/system-random.js';

/** Runs `command` (named `name`) with the arguments after its name; resolves to the exit code. */
export async function runCommand(name: string, command: CliCommand, rest: string[], io: CliIo): Promise<number> {
  useNodeSystemRandom();
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(command.help.endsWith('\n') ? command.help : command.help + '\n');
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (e) {
    io.stderr.write(`nsm-emulator ${name}: ${oneLine(e)}\n`);
    if (!(e instanceof UsageError) && process.env.NSM_EMULATOR_DEBUG) io.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    return 2;
  }
}

/**
 * What a person is told when a command fails: the UsageError's message; for a file-system error
 * no command anticipated, the path and the problem; for anything else, the error's own message
 * (set NSM_EMULATOR_DEBUG=1 for the stack). Never more than one line.
 */
function oneLine(e: unknown): string {
  if (e instanceof UsageError) return e.message.split('\n')[0]!;
  const errno = e as NodeJS.ErrnoException;
  if (typeof errno?.code === 'string' && typeof errno.path === 'string') {
    return `${errno.path}: ${fileProblem(errno, errno.path, errno.syscall === 'open' || errno.syscall === 'mkdir' || errno.syscall === 'write')}`;
  }
  const message = e instanceof Error ? e.message : String(e);
  return `unexpected error: ${message.split('\n')[0]} (NSM_EMULATOR_DEBUG=1 shows where)`;
}
