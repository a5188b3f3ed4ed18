/**
 * `nsm-emulator shim`: builds (if needed) the /dev/nsm preload shim, or with --supervisor the
 * seccomp supervisor, and prints where it is.
 * @module
 */
import { join } from 'node:path';
import { ShimBuildError, buildShim, defaultShimCacheDir, shimSourcePath } from '../node/shim-build.js';
import { nativeDir } from '../node/native-build.js';
import { SUPERVISOR_PROGRAM, buildSupervisor } from '../node/supervisor.js';
import { type CliCommand, type CliIo, UsageError } from './io.js';
import { parseFlags } from './parse.js';

const HELP = `Usage: nsm-emulator shim [--supervisor] [--print-path] [--rebuild] [--print-source]

Builds the /dev/nsm preload shim (a small shared library, from the C source shipped in this
package's native/ directory) with the system C compiler ($CC, else cc), caches it per user, and
prints its path. Later calls print the cached path at once; a changed source or compiler gets a
new build. With the shim preloaded, a dynamically linked program's open("/dev/nsm") connects to
the server named by NSM_EMULATOR_SOCKET and its NSM ioctls behave as the Linux driver's:

  $ nsm-emulator serve --socket /tmp/nsm.sock &
  $ LD_PRELOAD=$(nsm-emulator shim --print-path) NSM_EMULATOR_SOCKET=/tmp/nsm.sock ./my-enclave-app

'nsm-emulator exec -- ./my-enclave-app' does all of this in one step. Statically linked programs
and programs that make system calls without libc (Go) cannot be intercepted by the shim: run them
under the seccomp supervisor instead ('exec' does so by default; docs/server.md):

  $ NSM_EMULATOR_SOCKET=/tmp/nsm.sock $(nsm-emulator shim --supervisor) -- ./my-static-app

Environment read by the shim:
  NSM_EMULATOR_SOCKET      server: a Unix socket path, unix:PATH, or tcp:HOST:PORT (unset: the
                           shim passes everything through untouched)
  NSM_EMULATOR_DEVICE      path to intercept (default /dev/nsm)
  NSM_EMULATOR_TIMEOUT_MS  per-ioctl timeout, then ETIMEDOUT (default 120000, the driver's)

Options:
  --supervisor          build and print the seccomp supervisor instead of the shim
  --print-path          build if needed and print the library path (the default)
  --rebuild             build even if a cached library exists
  --print-source        print the path of the C source instead
Cache: ${'$'}XDG_CACHE_HOME/nsm-emulator, else ~/.cache/nsm-emulator (here: ${defaultShimCacheDir()}).
`;

async function run(args: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags({
    args,
    options: { 'print-path': { type: 'boolean' }, rebuild: { type: 'boolean' }, 'print-source': { type: 'boolean' }, supervisor: { type: 'boolean' } },
    strict: true,
    allowPositionals: false,
  });
  const supervisor = values.supervisor === true;
  if (values['print-source']) {
    io.stdout.write((supervisor ? join(nativeDir(), SUPERVISOR_PROGRAM.file) : shimSourcePath()) + '\n');
    return 0;
  }
  try {
    const build = supervisor ? buildSupervisor : buildShim;
    io.stdout.write((await build({ rebuild: values.rebuild === true })) + '\n');
    return 0;
  } catch (e) {
    if (!(e instanceof ShimBuildError)) throw e;
    io.stderr.write(`nsm-emulator shim: ${e.message}\n`);
    return 1;
  }
}

export const command: CliCommand = {
  summary: 'build the /dev/nsm LD_PRELOAD shim or the seccomp supervisor (with cc) and print its path',
  help: HELP,
  run,
};
