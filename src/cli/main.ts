/**
 * `nsm-emulator`: the command table. Each command lives in its own module, loaded on use.
 * @module
 */
import { VERSION } from '../version.js';
import { type CliCommand, type CliIo, UsageError, processIo } from './io.js';

/** Command name -> module (loaded only when that command runs or help is printed). */
const COMMANDS: Record<string, string> = {
  rpc: './rpc.js',
  attest: './attest.js',
  verify: './verify.js',
  ca: './ca.js',
  'describe-eif': './describe-eif.js',
  pcr: './pcr.js',
  'build-eif': './build-eif.js',
  serve: './serve.js',
  shim: './shim.js',
  exec: './exec.js',
  inspect: './inspect.js',
};

async function load(name: string): Promise<CliCommand | null> {
  const path = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (path === undefined) return null;
  return ((await import(path)) as { command: CliCommand }).command;
}

async function usage(): Promise<string> {
  const lines = ['Usage: nsm-emulator <command> [options]', '', 'An emulator of the AWS Nitro Secure Module.', '', 'Commands:'];
  for (const name of Object.keys(COMMANDS)) {
    const c = await load(name);
    if (c) lines.push(`  ${name.padEnd(13)} ${c.summary}`);
  }
  lines.push(
    '',
    'Options:',
    '  -h, --help    this list',
    '  -V, --version print the version',
    '',
    "Run 'nsm-emulator <command> --help' for a command's options.",
  );
  return lines.join('\n') + '\n';
}

export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(await usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    io.stdout.write(`nsm-emulator ${VERSION}\n`);
    return 0;
  }
  const command = await load(name);
  if (!command) {
    io.stderr.write(`nsm-emulator: unknown command '${name}' (see nsm-emulator --help)\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(command.help.endsWith('\n') ? command.help : command.help + '\n');
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(`nsm-emulator ${name}: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
