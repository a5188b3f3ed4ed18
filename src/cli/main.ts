/**
 * `nsm-emulator`: the command table. Each command lives in its own module, loaded on use.
 * @module
 */
import { VERSION } from '../version.js';
import { type CliCommand, type CliIo, processIo } from './io.js';
import { runCommand } from './run-command.js';

type Loader = () => Promise<{ command: CliCommand }>;

/**
 * Command name -> its module, loaded only when that command runs or help is printed. The
 * specifiers are literal so the CLI bundle (scripts/build-cli.js) can follow them.
 */
const COMMANDS: Record<string, Loader> = {
  rpc: () => import('./rpc.js'),
  attest: () => import('./attest.js'),
  verify: () => import('./verify.js'),
  ca: () => import('./ca.js'),
  'describe-eif': () => import('./describe-eif.js'),
  pcr: () => import('./pcr.js'),
  'build-eif': () => import('./build-eif.js'),
  serve: () => import('./serve.js'),
  shim: () => import('./shim.js'),
  exec: () => import('./exec.js'),
  inspect: () => import('./inspect.js'),
  'vfio-user': () => import('./vfio-user.js'),
  kms: () => import('./kms.js'),
};

async function load(name: string): Promise<CliCommand | null> {
  const loader = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (loader === undefined) return null;
  return (await loader()).command;
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
  return runCommand(name, command, rest, io);
}
