/**
 * `nsm-emulator exec`: runs an unmodified program against an emulated NSM. Starts a server on
 * a private socket, preloads the /dev/nsm shim into the program, forwards its stdio and
 * signals, returns its exit status, and removes the socket when it is done.
 * @module
 */
import { spawn, type StdioOptions } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isatty } from 'node:tty';
import type { NsmDevice } from '../device/nsm-device.js';
import { NsmServer } from '../node/server.js';
import { ShimBuildError, buildShim } from '../node/shim-build.js';
import { shimEnvironment } from '../node/shim-env.js';
import { BOOT_OPTIONS_HELP, BOOT_OPTION_SPEC, type BootFlags } from './boot-options.js';
import { type CliCommand, type CliIo, UsageError } from './io.js';
import { parseFlags } from './parse.js';
import { deviceFromFlags, eventLogLine, exchangeLogLine } from './serve.js';

const HELP = `Usage: nsm-emulator exec [options] [--] PROGRAM [ARGS...]

Runs PROGRAM with an emulated /dev/nsm: this is how to test an enclave application (Rust with
aws-nitro-enclaves-nsm-api, C/C++ with libnsm, Python, ...) on a laptop or in CI, unmodified.
A server starts on a private Unix socket, the preload shim is built if needed ('nsm-emulator
shim'), and PROGRAM runs with LD_PRELOAD and NSM_EMULATOR_SOCKET set, so every open of /dev/nsm
in it (and in its child processes) reaches one shared emulated NSM. Standard input, output and
error are PROGRAM's; SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 (and SIGINT, SIGQUIT unless they came from
the terminal, which delivers them to PROGRAM itself) are passed on.

Exit status: PROGRAM's own; 128+N if it was killed by signal N; 127 if PROGRAM was not found,
126 if it could not be run, 125 if exec itself failed (no C compiler, bad boot option file).

  $ nsm-emulator exec --pcr 16=$(printf '%096d' 0) -- ./target/debug/my-enclave-app --self-test

Statically linked programs and programs that bypass libc (Go) cannot be intercepted: see
docs/server.md for what to do instead.

Options:
  --log FILE            append every request and response to FILE as JSON lines ('rpc --json' form)
${BOOT_OPTIONS_HELP}
`;

/** Signals passed on to the program. */
const FORWARDED: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGINT', 'SIGQUIT'];
/** Signals a terminal sends to the whole foreground process group (the program gets them anyway). */
const FROM_TERMINAL: ReadonlySet<NodeJS.Signals> = new Set(['SIGINT', 'SIGQUIT']);

const VALUE_OPTIONS = new Set(
  [...Object.entries(BOOT_OPTION_SPEC)].filter(([, spec]) => spec.type === 'string').map(([name]) => `--${name}`).concat('--log'),
);

/** Splits `exec` arguments into its own options and the program's command line. */
export function splitCommandLine(args: readonly string[]): { options: string[]; program: string[] } {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return { options: args.slice(0, i), program: args.slice(i + 1) };
    if (!a.startsWith('-') || a === '-') return { options: args.slice(0, i), program: args.slice(i) };
    if (VALUE_OPTIONS.has(a)) i++; // its value follows
  }
  return { options: [...args], program: [] };
}

async function run(args: string[], io: CliIo): Promise<number> {
  const { options, program } = splitCommandLine(args);
  const { values } = parseFlags({ args: options, options: { ...BOOT_OPTION_SPEC, log: { type: 'string' } }, strict: true, allowPositionals: false });
  const [file, ...fileArgs] = program;
  if (file === undefined || file === '') throw new UsageError('no program given: nsm-emulator exec [options] -- PROGRAM [ARGS...]');
  const { log, ...boot } = values;
  const fail = (message: string): number => {
    io.stderr.write(`nsm-emulator exec: ${message}\n`);
    return 125;
  };

  let device: NsmDevice;
  try {
    device = await deviceFromFlags(boot as BootFlags);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    return fail(`cannot boot the device: ${(e as Error).message}`);
  }
  let shim: string;
  try {
    shim = await buildShim();
  } catch (e) {
    if (e instanceof ShimBuildError) return fail(e.message);
    throw e;
  }
  const writeLog = (line: string) => {
    if (log !== undefined) appendFileSync(log, line);
  };
  if (log !== undefined) {
    try {
      appendFileSync(log, '');
    } catch (e) {
      return fail(`--log ${log}: ${(e as Error).message}`);
    }
  }

  const dir = mkdtempSync(join(tmpdir(), 'nsm-emulator-exec-'));
  const server = new NsmServer(device, {
    onExchange: log !== undefined ? (e) => writeLog(exchangeLogLine(e)) : undefined,
    onEvent: (e) => {
      if (log !== undefined) writeLog(eventLogLine(e));
      else if (e.level === 'warn') io.stderr.write(`nsm-emulator exec: connection ${e.connection}: ${e.message}\n`);
    },
  });
  const handlers = new Map<NodeJS.Signals, () => void>();
  try {
    const address = await server.listen({ path: join(dir, 'nsm.sock') });
    return await runChild(file, fileArgs, shimEnvironment(shim, address), io, handlers);
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function runChild(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  io: CliIo,
  handlers: Map<NodeJS.Signals, () => void>,
): Promise<number> {
  const own = io.stdin === process.stdin && io.stdout === process.stdout && io.stderr === process.stderr;
  const stdio: StdioOptions = own ? 'inherit' : 'pipe';
  return new Promise<number>((resolve) => {
    const child = spawn(file, args, { env, stdio });
    if (!own) {
      child.stdout?.pipe(io.stdout, { end: false });
      child.stderr?.pipe(io.stderr, { end: false });
      if (child.stdin) {
        child.stdin.on('error', () => {}); // the program may exit without reading its input
        io.stdin.pipe(child.stdin);
      }
    }
    const interactive = isatty(0);
    for (const sig of FORWARDED) {
      const h = () => {
        if (!(interactive && FROM_TERMINAL.has(sig))) child.kill(sig);
      };
      handlers.set(sig, h);
      process.on(sig, h);
    }
    child.once('error', (e: NodeJS.ErrnoException) => {
      const notFound = e.code === 'ENOENT';
      io.stderr.write(`nsm-emulator exec: cannot run '${file}': ${notFound ? 'not found' : e.message}\n`);
      resolve(notFound ? 127 : 126);
    });
    child.once('close', (code, signal) => {
      if (!own) io.stdin.unpipe?.(child.stdin!);
      if (code !== null) resolve(code);
      else resolve(128 + (signal ? (osConstants.signals[signal] ?? 0) : 0));
    });
  });
}

export const command: CliCommand = {
  summary: 'run a program with an emulated /dev/nsm (LD_PRELOAD shim + private server)',
  help: HELP,
  run,
};
