// Differential test against QEMU 10.0.2's virtio-nsm (vectors/qemu): the same requests in the
// same order. Where QEMU departs from nsm-api and real devices (spec section 13), the expected
// difference is listed and checked; everything else must match byte for byte.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NsmDevice, decodeResponse } from '../src/index.js';
import { recordingAttester } from './helpers/fake-attester.js';
import { hex, unhex } from './helpers/hex.js';

const lines = readFileSync(new URL('../vectors/qemu/qemu-10.0.2-virtio-nsm-raw.tsv', import.meta.url), 'utf8')
  .trim()
  .split('\n')
  .map((l) => l.split('\t') as [string, string]);

/** How our answer may differ from QEMU's on a line, and why. */
type Expectation = 'same-bytes' | 'same-meaning' | { differs: string; check: (ours: string, qemu: string) => void };

const semantic = (h: string) => {
  const r = decodeResponse(unhex(h));
  return r.type === 'DescribeNSM' ? { ...r, moduleId: '(set per device)' } : r;
};

const EXPECT: Expectation[] = [
  {
    // A bare QEMU virtio-nsm-pci device boots with nothing locked; an enclave (ours, nitro-enclave, real) locks 0-15.
    differs: 'PCR 0 is locked at boot on an enclave; QEMU also writes data before lock',
    check: (ours, qemu) => {
      expect(semantic(ours)).toEqual({ ...(semantic(qemu) as object), lock: true });
    },
  },
  'same-bytes', // ExtendPCR 16
  'same-bytes', // LockPCR 16
  'same-bytes', // LockPCRs 32
  'same-meaning', // DescribeNSM: QEMU orders keys digest, max_pcrs, ...; nsm-api declaration order here
  { differs: 'Attestation: QEMU does not sign (alg -1, zero signature)', check: (o) => expect(semantic(o).type).toBe('Attestation') },
  { differs: 'Attestation', check: (o) => expect(semantic(o).type).toBe('Attestation') },
  { differs: 'Attestation', check: (o) => expect(semantic(o).type).toBe('Attestation') },
  { differs: 'Attestation', check: (o) => expect(semantic(o).type).toBe('Attestation') },
  { differs: 'Attestation', check: (o) => expect(semantic(o).type).toBe('Attestation') },
  {
    differs: 'GetRandom: random bytes',
    check: (ours, qemu) => {
      expect(ours.slice(0, 44)).toBe(qemu.slice(0, 44));
      expect(ours.length).toBe(qemu.length);
    },
  },
  'same-bytes', // "DescribePCR" as bare text -> InvalidOperation
  'same-bytes', // index 32 -> InvalidIndex
  {
    differs: 'index 256: QEMU parses uint8 only (InvalidOperation); nsm-api carries u16, so InvalidIndex',
    check: (ours, qemu) => {
      expect(semantic(qemu)).toEqual({ type: 'Error', code: 'InvalidOperation' });
      expect(semantic(ours)).toEqual({ type: 'Error', code: 'InvalidIndex' });
    },
  },
  'same-bytes', // ff -> InvalidOperation
  { differs: 'Attestation with an empty map', check: (o) => expect(semantic(o).type).toBe('Attestation') },
  'same-bytes', // ExtendPCR on locked PCR 0 -> ReadOnlyIndex
  'same-bytes', // LockPCR 16 again -> ReadOnlyIndex
  'same-bytes', // LockPCRs 33 -> InvalidIndex
];

describe('QEMU 10.0.2 differential', () => {
  it('has an expectation for every captured line', () => {
    expect(lines.length).toBe(EXPECT.length);
  });

  it('replays the capture in order', async () => {
    // QEMU's device boots with every PCR zero: our 'bare' boot mode.
    const d = new NsmDevice({ seed: '01', boot: 'bare', moduleId: 'i-0123456789abcdef0-enc0123456789abcdef', attester: recordingAttester() });
    for (const [i, [req, qemu]] of lines.entries()) {
      const ours = hex(await d.handleRaw(unhex(req)));
      const e = EXPECT[i]!;
      if (e === 'same-bytes') expect(ours, `line ${i + 1}`).toBe(qemu);
      else if (e === 'same-meaning') expect(semantic(ours), `line ${i + 1}`).toEqual(semantic(qemu));
      else e.check(ours, qemu);
    }
  });
});
