/**
 * The boot options shared by `rpc`, `attest`, `serve` and `exec`: how the emulated device is
 * powered on. Turns parsed flags into {@link NsmDeviceOptions}.
 * @module
 */
import type { NsmDeviceOptions } from '../device/nsm-device.js';
import { FaultSyntaxError, type NsmFault, parseFault } from '../device/faults.js';
import { parsePcr, parseTime } from './parse.js';
import { type CliIo, UsageError } from './io.js';
import { ttyProgress } from './progress.js';
import { nodeDeviceSha384 } from '../node/device-hash.js';
import { CHAIN_CACHE_ENV, defaultChainCacheDir, fileChainStore } from '../node/chain-cache.js';
import type { ChainStore } from '../attestation/chain-store.js';
import { defaultCacheDirHomeMissing } from '../node/cache-dir.js';

/** Flag definitions in node:util parseArgs form. */
export const BOOT_OPTION_SPEC = {
  'module-id': { type: 'string' },
  pcr: { type: 'string', multiple: true },
  seed: { type: 'string' },
  ca: { type: 'string' },
  time: { type: 'string' },
  eif: { type: 'string' },
  'parent-id': { type: 'string' },
  'parent-role': { type: 'string' },
  debug: { type: 'boolean' },
  bare: { type: 'boolean' },
  fault: { type: 'string', multiple: true },
} as const;

export const BOOT_OPTIONS_HELP = `Boot options (how the emulated NSM is powered on). By default it boots as a production
enclave: PCR0-2 from a built-in synthetic image, PCR4 from the parent instance id (the
module_id prefix), PCR3 and PCR8 zero, PCRs 0-15 locked.
  --module-id ID        module_id to report (default: i-<17 hex>-enc<16 hex>, random or from --seed,
                        with the device's start time in the part after -enc)
  --pcr N=HEX           value of PCR N at power-on, 48 bytes as 96 hex digits (repeatable);
                        PCRs 0-15 are then locked as on a real enclave, 16-31 stay unlocked
  --seed HEX            make module_id, the synthetic image's PCRs, GetRandom and all keys
                        reproducible
  --ca DIR              sign documents with the test CA in DIR (made by 'nsm-emulator ca init');
                        default: the committed test CA (TEST ONLY; root: 'verify --root test')
  --time T              freeze the device clock at T (ISO 8601 or Unix seconds)
  --eif FILE            boot from an Enclave Image File: PCR0, PCR1, PCR2 and PCR8 as measured
  --parent-id ID        parent instance id: PCR4 and the module_id prefix (default: random,
                        or from --seed)
  --parent-role ARN     parent IAM role ARN: PCR3
  --debug               debug-mode enclave: PCR0, PCR1, PCR2 and PCR8 read as zero; PCR3 and
                        PCR4 are kept
  --bare                every PCR zero at power-on, like QEMU's plain virtio-nsm device
                        (only --pcr values are set; not with --eif, --parent-*, --debug)

Fault injection (for testing how a program copes with a failing NSM; each hit is reported
on standard error):
  --fault REQUEST=EFFECT[:WHEN][@K]   (repeatable; checked in order)
      REQUEST  DescribePCR, ExtendPCR, LockPCR, LockPCRs, DescribeNSM, GetRandom, Attestation,
               or * for every request
      EFFECT   an error code the device sends (InternalError, InvalidIndex, ReadOnlyIndex,
               InvalidOperation, InputTooLarge): answered instead, the request is not executed;
               delay-MS: executed MS milliseconds late (up to 120000);
               disappear: the device is gone from then on (connections close; /dev/nsm
               clients get EIO)
      WHEN     N: the next N such requests (default 1); always; P% or 0.P: each with that
               probability (reproducible with --seed)
      @K       start at the K-th such request (default @1)
      e.g. --fault Attestation=InternalError:1  --fault GetRandom=delay-200:always
           --fault 'ExtendPCR=InternalError:25%'  --fault 'DescribeNSM=disappear@3'`;

export interface BootFlags {
  'module-id'?: string;
  pcr?: string[];
  seed?: string;
  ca?: string;
  time?: string;
  eif?: string;
  'parent-id'?: string;
  'parent-role'?: string;
  debug?: boolean;
  bare?: boolean;
  fault?: string[];
}

/** Reads `--fault` values; a bad one is a UsageError naming it. */
export function faultsFromFlags(values: readonly string[]): NsmFault[] {
  return values.map((v) => {
    try {
      return parseFault(v);
    } catch (e) {
      if (e instanceof FaultSyntaxError) throw new UsageError(`--fault ${e.message}`);
      throw e;
    }
  });
}

/**
 * Builds device options from boot flags (reads the EIF and CA files they name). With `cli`, a
 * line goes to its standard error each time a `--fault` hits a request, and measuring a large
 * EIF shows progress there when it is a terminal.
 */
export async function deviceOptionsFromFlags(flags: BootFlags, cli?: { io: CliIo; command: string }): Promise<NsmDeviceOptions> {
  const pcrs = new Map<number, Uint8Array>();
  let instanceId: string | undefined;
  let boot: NsmDeviceOptions['boot'] = flags.bare ? 'bare' : 'enclave';
  if (flags.bare) {
    const clash = (['eif', 'parent-id', 'parent-role', 'debug'] as const).filter((f) => flags[f] !== undefined && flags[f] !== false);
    if (clash.length > 0) throw new UsageError(`--bare boots with every PCR zero; it cannot be combined with ${clash.map((f) => `--${f}`).join(', ')}`);
  }
  if (flags.eif !== undefined || flags['parent-id'] !== undefined || flags['parent-role'] !== undefined || flags.debug) {
    const { eifBootOptions, EifBootError } = await import('../node/eif-boot.js');
    const progress = cli ? ttyProgress(cli.io, cli.command) : null;
    let threadFailure: string | undefined;
    const profile = await eifBootOptions({
      eifPath: flags.eif,
      parentInstanceId: flags['parent-id'],
      parentRoleArn: flags['parent-role'],
      debug: flags.debug === true,
      onProgress: progress ? (done, total) => progress.report(`measuring ${flags.eif}`, done, total) : undefined,
      onThreads: (r) => (threadFailure = r.failure),
    })
      .catch((e: unknown) => {
        throw e instanceof EifBootError ? new UsageError(e.message) : e;
      })
      .finally(() => progress?.finish());
    // Same PCRs either way; say why measuring took one thread's time.
    if (threadFailure !== undefined && cli) cli.io.stderr.write(`nsm-emulator ${cli.command}: --eif ${flags.eif}: measured again on one thread: ${threadFailure}\n`);
    for (const [i, v] of profile.pcrs) pcrs.set(i, v);
    instanceId = profile.instanceId;
    boot = profile.boot;
  }
  for (const p of flags.pcr ?? []) {
    const [i, v] = parsePcr('--pcr', p);
    pcrs.set(i, v);
  }
  let seed: string | undefined;
  if (flags.seed !== undefined) {
    if (!/^(0x)?([0-9a-fA-F]{2})+$/.test(flags.seed)) throw new UsageError(`--seed '${flags.seed}': expected non-empty hex bytes`);
    seed = flags.seed;
  }
  // node:crypto's SHA-384 for the boot measurements and extends: same bytes, cheaper start.
  const options: { -readonly [K in keyof NsmDeviceOptions]: NsmDeviceOptions[K] } = { boot, pcrs, sha384: nodeDeviceSha384 };
  if (seed !== undefined) options.seed = seed;
  if (instanceId !== undefined) options.instanceId = instanceId;
  if (flags['module-id'] !== undefined) {
    if (flags['module-id'] === '') throw new UsageError("--module-id '': expected a non-empty module id");
    options.moduleId = flags['module-id'];
  }
  if (flags.time !== undefined) {
    const t = parseTime('--time', flags.time);
    options.clock = () => t;
  }
  if (flags.fault !== undefined && flags.fault.length > 0) {
    const texts = flags.fault;
    options.faults = faultsFromFlags(texts);
    options.onFault = (e) => cli?.io.stderr.write(`nsm-emulator ${cli.command}: fault injected (--fault ${texts[e.index]}): ${e.message}\n`);
  }
  // The CLI signs through node:crypto (noble when seeded, for RFC 6979 determinism).
  const { attesterFromCaDir, nodeAttester, CaDirError } = await import('../node/ca-dir.js');
  try {
    const chainStore = cliChainStore(cli);
    options.attester = flags.ca !== undefined ? await attesterFromCaDir(flags.ca, { chainStore }) : nodeAttester(undefined, { chainStore });
  } catch (e) {
    if (e instanceof CaDirError) throw new UsageError(`--ca '${flags.ca}': ${e.message}`);
    throw e;
  }
  return options;
}

/**
 * The CLI's cache of derived intermediate certificates (src/node/chain-cache.ts), as
 * NSM_EMULATOR_CHAIN_CACHE says: unset or empty, the default directory
 * (~/.cache/nsm-emulator/chain); `off`, no cache; an absolute path, that directory. A problem
 * with the cache is reported once on standard error and the command goes on without it. With
 * the default directory and a HOME that does not exist (system users' HOME=/nonexistent), there
 * is no cache and nothing is said: the cache never creates a home directory.
 */
export function cliChainStore(cli?: { io: CliIo; command: string }, env: NodeJS.ProcessEnv = process.env): ChainStore | undefined {
  const setting = env[CHAIN_CACHE_ENV] ?? '';
  if (setting === 'off') return undefined;
  if (setting !== '' && !setting.startsWith('/')) {
    throw new UsageError(`${CHAIN_CACHE_ENV}='${setting}': expected 'off' or an absolute directory path`);
  }
  if (setting === '' && defaultCacheDirHomeMissing(env)) return undefined;
  let told = false;
  return fileChainStore(setting || defaultChainCacheDir(env), {
    onError: (e) => {
      if (told || !cli) return;
      told = true;
      cli.io.stderr.write(`nsm-emulator ${cli.command}: certificate cache not used: ${e.message} (${CHAIN_CACHE_ENV}=off turns it off)\n`);
    },
  });
}
