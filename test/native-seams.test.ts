// The native seams the CLI starts with (node:crypto instead of pure JS, for a cheaper cold
// start) give exactly the bytes the pure-JS defaults give: the device's SHA-384 (boot
// measurements, extends) and the chain schedule's HMAC-SHA-384 derivations (keys, serials,
// names, dates of the intermediates). PCR4 is also recomputed here with node:crypto from its
// documented definition, so the comparison cannot pass by both sides being wrong the same way.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { NsmDevice, parseCertificate, testCaFromPem } from '../src/index.js';
import { COMMITTED_CA_PEM } from '../src/attestation/committed-ca.js';
import { chainSchedule } from '../src/attestation/chain-schedule.js';
import { nobleBackend } from '../src/attestation/p384.js';
import { nodeCryptoBackend } from '../src/node/crypto-backend.js';
import { nodeDeviceSha384 } from '../src/node/device-hash.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe("the device's sha384 option", () => {
  it('node:crypto boots and extends to the same PCRs as the pure-JS default', async () => {
    const plain = new NsmDevice({ seed: '07', instanceId: 'i-0123456789abcdef0' });
    const native = new NsmDevice({ seed: '07', instanceId: 'i-0123456789abcdef0', sha384: nodeDeviceSha384 });
    const pcr4 = createHash('sha384').update(Buffer.alloc(48)).update('i-0123456789abcdef0').digest('hex');
    expect(hex((await native.describePcr(4)).data)).toBe(pcr4);
    for (const i of [0, 1, 2, 3, 4, 8]) expect(hex((await native.describePcr(i)).data), `PCR${i}`).toBe(hex((await plain.describePcr(i)).data));
    const data = new Uint8Array([1, 2, 3]);
    expect(hex(await native.extendPcr(16, data))).toBe(hex(await plain.extendPcr(16, data)));
    expect(hex(await native.extendPcr(16, new Uint8Array(300)))).toBe(hex(await plain.extendPcr(16, new Uint8Array(300))));
  });

  it('is checked when given', () => {
    expect(() => new NsmDevice({ sha384: 'sha384' as never })).toThrow(/sha384 must be a function/);
  });
});

describe("the chain schedule through node:crypto's HMAC", () => {
  it('derives intermediates identical, but for the signature, to the pure-JS derivation', async () => {
    const at = Date.parse('2026-03-04T05:06:07Z') / 1000;
    // Two CA objects: each has its own schedule, so nothing is shared between the two runs.
    const viaNode = await chainSchedule(testCaFromPem(COMMITTED_CA_PEM)).instanceAt('i-0abc0abc0abc0abc0', at, nodeCryptoBackend());
    const viaNoble = await chainSchedule(testCaFromPem(COMMITTED_CA_PEM)).instanceAt('i-0abc0abc0abc0abc0', at, nobleBackend);
    for (let a = viaNode, b = viaNoble; a.issuer && b.issuer; a = a.issuer, b = b.issuer) {
      expect(hex(parseCertificate(a.der).tbs), a.level).toBe(hex(parseCertificate(b.der).tbs));
      expect(hex(a.key.privateKey), a.level).toBe(hex(b.key.privateKey));
    }
  });
});

describe("the system random source's fill", () => {
  it('is what systemRandom draws through (in blocks of at most 65536 bytes), and node:crypto is installed by the CLI', async () => {
    const { systemRandom, setSystemRandomFill } = await import('../src/device/random.js');
    const { useNodeSystemRandom } = await import('../src/node/system-random.js');
    const sizes: number[] = [];
    try {
      setSystemRandomFill((out) => {
        sizes.push(out.length);
        out.fill(0xa5);
      });
      expect(hex(systemRandom.bytes(3))).toBe('a5a5a5');
      expect(systemRandom.bytes(70000).every((b) => b === 0xa5)).toBe(true);
      expect(sizes).toEqual([3, 65536, 70000 - 65536]);
      // A device's unseeded draws (its module id) come from it too.
      expect(new NsmDevice().moduleId).toMatch(/^i-0a5a5a5a5a5a5a5a5/);
      useNodeSystemRandom();
      const a = systemRandom.bytes(32);
      const b = systemRandom.bytes(32);
      expect(hex(a)).not.toBe(hex(b));
      expect(a.some((x) => x !== 0xa5)).toBe(true);
    } finally {
      setSystemRandomFill(null);
    }
  });
});
