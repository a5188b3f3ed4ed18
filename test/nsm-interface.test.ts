// The `Nsm` interface: NsmDevice implements it, and a plain object fake satisfies it. The
// type-level half is checked by `npm run typecheck` (this file is in its program): each
// expect-error directive below fails the type check if the line it marks stops being an error.
import { describe, expect, it } from 'vitest';
import { NsmDevice, NsmError, type Nsm, type NsmDescription, type PcrDescription } from '../src/index.js';

/** An "application" that depends on the NSM only through the interface. */
async function measureAndAttest(nsm: Nsm, secret: Uint8Array): Promise<{ pcr16: Uint8Array; doc: Uint8Array }> {
  const pcr16 = await nsm.extendPcr(16, secret);
  await nsm.lockPcr(16);
  return { pcr16, doc: await nsm.attestation({ nonce: new Uint8Array([1]) }) };
}

/** A hand-made fake: a plain object literal, no class, no private members. */
function fakeNsm(): Nsm & { calls: string[] } {
  const calls: string[] = [];
  const description: NsmDescription = {
    versionMajor: 1, versionMinor: 0, versionPatch: 0, moduleId: 'i-0fake-enc01',
    maxPcrs: 32, lockedPcrs: [], digest: 'SHA384',
  };
  return {
    calls,
    describePcr: async (index): Promise<PcrDescription> => (calls.push(`describePcr ${index}`), { lock: false, data: new Uint8Array(48) }),
    extendPcr: async (index, data) => (calls.push(`extendPcr ${index} ${data.length}`), new Uint8Array(48).fill(7)),
    lockPcr: async (index) => void calls.push(`lockPcr ${index}`),
    lockPcrs: async (range) => void calls.push(`lockPcrs ${range}`),
    describeNsm: async () => description,
    getRandom: async () => new Uint8Array(256),
    attestation: async (options) => (calls.push(`attestation ${options?.nonce?.length}`), new Uint8Array([0x84])),
  };
}

// ---- type level (checked by tsc) ----
const asInterface: Nsm = new NsmDevice({ seed: '01' });
void asInterface;
// @ts-expect-error a fake missing a method is not an Nsm
const incomplete: Nsm = { describePcr: async () => ({ lock: false, data: new Uint8Array(48) }) };
void incomplete;
const wrongReturn: Nsm = {
  ...fakeNsm(),
  // @ts-expect-error extendPcr must resolve to the new value's bytes
  extendPcr: async () => 'not bytes',
};
void wrongReturn;

describe('Nsm interface', () => {
  it('the same application code runs against the emulator and against a plain fake', async () => {
    const real = await measureAndAttest(new NsmDevice({ seed: '01' }), new Uint8Array([1, 2, 3]));
    expect(real.pcr16).toHaveLength(48);
    expect(real.doc[0]).toBe(0x84); // untagged COSE_Sign1
    const fake = fakeNsm();
    const faked = await measureAndAttest(fake, new Uint8Array([1, 2, 3]));
    expect(faked.pcr16).toEqual(new Uint8Array(48).fill(7));
    expect(fake.calls).toEqual(['extendPcr 16 3', 'lockPcr 16', 'attestation 1']);
  });

  it('through the interface, device errors still reject with NsmError', async () => {
    const nsm: Nsm = new NsmDevice();
    await expect(nsm.extendPcr(0, new Uint8Array(1))).rejects.toEqual(new NsmError('ReadOnlyIndex'));
    await expect(nsm.describePcr(32)).rejects.toMatchObject({ code: 'InvalidIndex' });
  });
});
