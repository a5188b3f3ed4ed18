/**
 * A boot profile: what a Nitro hypervisor puts in the PCR bank when it starts an enclave, as
 * {@link NsmDeviceOptions} fields (`boot`, `pcrs` and `instanceId`).
 *
 * - PCR0, PCR1, PCR2 and (signed images) PCR8 from the EIF's measurements; without an EIF the
 *   device's built-in synthetic image gives PCR0-2 (see src/device/enclave-boot.ts);
 * - PCR3: one extend of the parent's IAM role ARN (raw UTF-8), zero without a role;
 * - PCR4: one extend of the parent instance id (raw UTF-8), which is also the module_id prefix
 *   (without one the device draws an instance id and measures it the same way);
 * - debug mode (`boot: 'debug'`): PCR0, PCR1, PCR2 and PCR8 read as zero, PCR3 and PCR4 are kept.
 *
 * The device locks PCRs 0-15 after setting these values, as the hypervisor does.
 * @module
 */
import type { BootMode } from '../device/enclave-boot.js';
import type { NsmDeviceOptions } from '../device/nsm-device.js';
import { type Sha384Factory, extendFromZero } from './hash.js';
import type { EifPcrs } from './measure.js';

export interface EifBootParent {
  /** ARN of the IAM role attached to the parent instance (PCR3). */
  readonly parentRoleArn?: string | undefined;
  /** Parent EC2 instance id, `i-...` (PCR4 and the module_id prefix). */
  readonly parentInstanceId?: string | undefined;
  /** A debug-mode enclave (`nitro-cli run-enclave --debug-mode`). */
  readonly debug?: boolean | undefined;
}

/** The `boot`, `pcrs` and `instanceId` fields of {@link NsmDeviceOptions}. */
export interface EifBootProfile {
  /** `debug` for a debug-mode enclave, else `enclave`. */
  readonly boot: Extract<BootMode, 'enclave' | 'debug'>;
  readonly pcrs: Map<number, Uint8Array>;
  readonly instanceId?: string;
}

/** PCR3 for a parent IAM role ARN. */
export function parentRolePcr(arn: string, sha384?: Sha384Factory): Uint8Array {
  return extendFromZero(new TextEncoder().encode(arn), sha384);
}

/** PCR4 for a parent instance id. */
export function parentInstancePcr(instanceId: string, sha384?: Sha384Factory): Uint8Array {
  return extendFromZero(new TextEncoder().encode(instanceId), sha384);
}

/**
 * The device options for booting from measured PCRs (`null`: no EIF; the device's synthetic
 * image then gives PCR0-2 unless in debug mode).
 * Pass the result's fields to `new NsmDevice({...profile, ...other options})`.
 */
export function eifBootProfile(pcrs: EifPcrs | null, parent: EifBootParent = {}): EifBootProfile {
  const out = new Map<number, Uint8Array>();
  const boot = parent.debug ? 'debug' : 'enclave';
  if (pcrs && !parent.debug) {
    out.set(0, pcrs.pcr0.slice());
    out.set(1, pcrs.pcr1.slice());
    out.set(2, pcrs.pcr2.slice());
    if (pcrs.pcr8) out.set(8, pcrs.pcr8.slice());
  }
  if (parent.parentRoleArn !== undefined) {
    if (parent.parentRoleArn === '') throw new RangeError('parentRoleArn must not be empty');
    out.set(3, parentRolePcr(parent.parentRoleArn));
  }
  if (parent.parentInstanceId !== undefined) {
    if (parent.parentInstanceId === '') throw new RangeError('parentInstanceId must not be empty');
    out.set(4, parentInstancePcr(parent.parentInstanceId));
    return { boot, pcrs: out, instanceId: parent.parentInstanceId };
  }
  return { boot, pcrs: out };
}
