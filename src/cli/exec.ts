/**
 * `nsm-emulator exec`: runs an unmodified program against an emulated NSM. Starts a server on
 * a private socket, runs the program under the seccomp supervisor (any program) or with the
 * /dev/nsm preload shim (dynamically linked programs), forwards its stdio and signals, returns
 * its exit status, and removes the socket when it is done.
 * @module
 */
import { spawn, type StdioOptions } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isatty } from 'node:tty';
import type { NsmDevice } from '../device/nsm-device.js';
import { NsmServer } from '../node/server.js';
import { NativeBuildError } from '../node/native-build.js';
import { SHIM_ENV, buildShim } from '../node/shim-build.js';
import { shimEnvironment } from '../node/shim-env.js';
import { buildSupervisor, probeSupervisor, supervisorCommand } from '../node/supervisor.js';
import { BOOT_OPTIONS_HELP, BOOT_OPTION_SPEC, type BootFlags } from './boot-options.js';
import { type CliCommand, type CliIo, UsageError } from './io.js';
import { parseFlags } from './parse.js';
import { fileProblem } from './files.js';
import { deviceFromFlags, eventLogLine, exchangeLogLine, internalErrorLine, parseIo } from './serve.js';

const HELP = `Usage: nsm-emulator exec [options] [--] PROGRAM [ARGS...]

Runs PROGRAM with an emulated /dev/nsm: this is how to test an enclave application (Rust with
aws-nitro-enclaves-nsm-api, C/C++ with libnsm, Go, Python, ...) on a laptop or in CI, unmodified.
A server starts on a private Unix socket and every open of /dev/nsm in PROGRAM (and in its
threads and child processes) reaches one shared emulated NSM, by one of two routes:

  supervisor  a small seccomp supervisor (built from C on first use) answers PROGRAM's open and
              NSM ioctl system calls from outside: works for any program, static, musl or Go
  shim        an LD_PRELOAD library replaces libc's open/ioctl: dynamically linked programs only

--route auto (the default) uses the supervisor when this kernel allows seccomp user notification
(checked once per run), and otherwise says why on stderr and uses the shim. Standard input, output
and error are PROGRAM's; SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 (and SIGINT, SIGQUIT unless they came
from the terminal, which delivers them to PROGRAM itself) are passed on. If PROGRAM never reached
the emulated NSM, a warning says so on stderr.

Exit status: 2 for a usage error, found before anything starts (a bad option, an option file
that cannot be read or is invalid: --eif, --ca, --log into a missing directory); 125 if exec
itself failed after that (cannot build the supervisor or shim, e.g. no C compiler; cannot start
the server; --route supervisor on a kernel that refuses it); 127 if PROGRAM was not found, 126
if it could not be run; otherwise PROGRAM's own status, 128+N if it was killed by signal N.

  $ nsm-emulator exec --pcr 16=$(printf '%096d' 0) -- ./target/debug/my-enclave-app --self-test

Options:
  --route ROUTE         auto (default), supervisor or shim; see docs/server.md
  --log FILE            append every request and response to FILE as JSON lines ('rpc --json' form)
  --io MODE             how connections are read and written: auto (default) uses the native
                        socket path (a small addon built from C on first use, faster per request)
                        when it can be built, and otherwise says why on standard error and uses
                        Node's sockets; native fails when it cannot be built; node never builds it
${BOOT_OPTIONS_HELP}
`;

/** Signals passed on to the program. */
const FORWARDED: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGINT', 'SIGQUIT'];
/** Signals a terminal sends to the whole foreground process group (the program gets them anyway). */
const FROM_TERMINAL: ReadonlySet<NodeJS.Signals> = new Set(['SIGINT', 'SIGQUIT']);

const VALUE_OPTIONS = new Set(
  [...Object.entries(BOOT_OPTION_SPEC)].filter(([, spec]) => spec.type === 'string').map(([name]) => `--${name}`).concat('--log', '--route', '--io'),
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
  const { values } = parseFlags({ args: options, options: { ...BOOT_OPTION_SPEC, log: { type: 'string' }, route: { type: 'string' }, io: { type: 'string' } }, strict: true, allowPositionals: false });
  const [file, ...fileArgs] = program;
  if (file === undefined || file === '') throw new UsageError('no program given: nsm-emulator exec [options] -- PROGRAM [ARGS...]');
  const { log, route = 'auto', io: ioMode, ...boot } = values;
  const serveIo = parseIo(ioMode);
  if (route !== 'auto' && route !== 'supervisor' && route !== 'shim') {
    throw new UsageError(`--route ${route}: expected auto, supervisor or shim`);
  }
  const fail = (message: string): number => {
    io.stderr.write(`nsm-emulator exec: ${message}\n`);
    return 125;
  };

  // Usage errors (exit 2) are all found here, before anything is built or started; from here on a
  // failure of exec itself is 125.
  if (log !== undefined) {
    try {
      appendFileSync(log, '');
    } catch (e) {
      throw new UsageError(`--log ${log}: ${fileProblem(e, log, true)}`);
    }
  }
  let device: NsmDevice;
  try {
    // Why an InternalError was answered: into the --log file, else on stderr.
    device = await deviceFromFlags(
      boot as BootFlags,
      { io, command: 'exec' },
      (e) => {
        if (log !== undefined) appendFileSync(log, internalErrorLine(e, true, 'exec'));
        else io.stderr.write(internalErrorLine(e, false, 'exec'));
      },
    );
  } catch (e) {
    if (e instanceof UsageError) throw e;
    return fail(`cannot boot the device: ${(e as Error).message}`);
  }
  let chosen: Route | string;
  try {
    chosen = await chooseRoute(route, io);
  } catch (e) {
    chosen = `cannot prepare the ${route === 'shim' ? 'shim' : 'supervisor'}: ${(e as Error).message}`;
  }
  if (typeof chosen === 'string') return fail(chosen);
  const writeLog = (line: string) => {
    if (log !== undefined) appendFileSync(log, line);
  };

  let dir: string;
  try {
    dir = mkdtempSync(join(tmpdir(), 'nsm-emulator-exec-'));
  } catch (e) {
    return fail(`cannot make the server's socket directory: ${fileProblem(e, join(tmpdir(), 'nsm-emulator-exec-XXXXXX'), true)}`);
  }
  let connected = 0;
  const server = new NsmServer(device, {
    io: serveIo,
    onExchange: log !== undefined ? (e) => writeLog(exchangeLogLine(e)) : undefined,
    onEvent: (e) => {
      if (e.level === 'info' && e.message === 'connected') connected++;
      if (log !== undefined) writeLog(eventLogLine(e));
      else if (e.level === 'warn') io.stderr.write(`nsm-emulator exec: ${e.connection === 0 ? '' : `connection ${e.connection}: `}${e.message}\n`);
    },
  });
  const handlers = new Map<NodeJS.Signals, () => void>();
  try {
    let address: string;
    try {
      address = await server.listen({ path: join(dir, 'nsm.sock') });
    } catch (e) {
      if (e instanceof NativeBuildError) return fail(`--io native: ${e.message}`);
      return fail(`cannot start the server on ${join(dir, 'nsm.sock')}: ${(e as Error).message}`);
    }
    let code: number;
    if (chosen.route === 'supervisor') {
      const [cmd, ...cmdArgs] = supervisorCommand(chosen.path, [file, ...fileArgs], 'nsm-emulator exec') as [string, ...string[]];
      code = await runChild(cmd, cmdArgs, { ...process.env, [SHIM_ENV.socket]: address }, io, handlers, file);
    } else {
      code = await runChild(file, fileArgs, shimEnvironment(chosen.path, address), io, handlers, file);
    }
    if (connected === 0 && code !== 126 && code !== 127) { // 126/127: it never ran, already said
      io.stderr.write(
        chosen.route === 'supervisor'
          ? `nsm-emulator exec: '${file}' never opened /dev/nsm: no client connected to the emulated NSM\n`
          : `nsm-emulator exec: no client connected to the emulated NSM: if '${file}' opens /dev/nsm, the LD_PRELOAD shim did not see it ` +
              `(statically linked, Go, or raw system calls); the supervisor route reaches those (docs/server.md)\n`,
      );
    }
    return code;
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

type Route = { route: 'supervisor' | 'shim'; path: string };

/** The route to use, with its built helper, or a message saying why exec cannot run. */
async function chooseRoute(route: string, io: CliIo): Promise<Route | string> {
  let why = '';
  if (route !== 'shim') {
    try {
      const path = await buildSupervisor();
      const probe = await probeSupervisor(path);
      if (probe.ok) return { route: 'supervisor', path };
      why = probe.reason;
    } catch (e) {
      if (!(e instanceof NativeBuildError)) throw e;
      why = e.message;
    }
    if (route === 'supervisor') return `--route supervisor: ${why}`;
    io.stderr.write(
      `nsm-emulator exec: the seccomp supervisor cannot run here (${why}); falling back to the LD_PRELOAD shim, ` +
        `which reaches only dynamically linked programs that open /dev/nsm through libc\n`,
    );
  }
  try {
    return { route: 'shim', path: await buildShim() };
  } catch (e) {
    if (e instanceof NativeBuildError) return e.message;
    throw e;
  }
}

function runChild(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  io: CliIo,
  handlers: Map<NodeJS.Signals, () => void>,
  shown: string,
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
      io.stderr.write(`nsm-emulator exec: cannot run '${shown}': ${notFound ? 'not found' : e.message}\n`);
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
  summary: 'run a program with an emulated /dev/nsm (seccomp supervisor or LD_PRELOAD shim + private server)',
  help: HELP,
  run,
};
