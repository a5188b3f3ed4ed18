/**
 * The seccomp supervisor (native/nsm-supervisor.c): its build recipe, built on demand and cached
 * by ./native-build.ts, a probe that tells whether this kernel lets it work, and the command line
 * that runs a program under it. It reaches every program (static, musl, Go, raw system calls),
 * where the preload shim reaches only dynamically linked programs that call libc.
 * @module
 */
import { type NativeBuildOptions, type NativeProgram, buildNative } from './native-build.js';

export const SUPERVISOR_PROGRAM: NativeProgram = {
  name: 'nsm-supervisor',
  title: 'the seccomp supervisor',
  file: 'nsm-supervisor.c',
  suffix: '',
  cflags: ['-O2', '-Wall'],
  libs: [],
};

/** Path of the built supervisor for these options, building it first when it is not cached. */
export function buildSupervisor(options: NativeBuildOptions = {}): Promise<string> {
  return buildNative(SUPERVISOR_PROGRAM, options);
}

/** Whether the supervisor works on this kernel, and if not, why. */
export interface SupervisorProbe {
  readonly ok: boolean;
  /** Empty when ok; else the supervisor's own explanation (e.g. the kernel refusing the filter). */
  readonly reason: string;
}

const probes = new Map<string, Promise<SupervisorProbe>>();

/**
 * Runs `supervisor --probe` once per path: a child under the filter opens /dev/nsm, reads,
 * issues good and bad ioctls and a dup, all answered by the supervisor without a server, so
 * every kernel facility the route needs (user notification, descriptor injection, reading and
 * writing the child's memory, /proc fdinfo) is checked before a real program relies on it.
 */
export function probeSupervisor(supervisor: string): Promise<SupervisorProbe> {
  let p = probes.get(supervisor);
  if (p === undefined) {
    p = new Promise<SupervisorProbe>((resolve) => {
      process.getBuiltinModule('node:child_process').execFile(supervisor, ['--probe'], { timeout: 10_000 }, (err, _stdout, stderr) => {
        if (!err) return resolve({ ok: true, reason: '' });
        const said = String(stderr)
          .trim()
          .split('\n')
          .map((l) => l.replace(/^nsm-supervisor: /, ''))
          .join('; ');
        resolve({ ok: false, reason: said || `the probe failed (${err.message})` });
      });
    });
    probes.set(supervisor, p);
  }
  return p;
}

/** The command that runs `program` under the supervisor; `name` prefixes its messages. */
export function supervisorCommand(supervisor: string, program: readonly string[], name = 'nsm-supervisor'): string[] {
  return [supervisor, '--name', name, '--', ...program];
}
