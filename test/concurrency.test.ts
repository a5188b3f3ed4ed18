// Requests issued concurrently take effect one at a time, in the order they were issued.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { NsmDevice, decodeResponse, encodeRequest, type AttesterFactory } from '../src/index.js';

const fold = (start: Uint8Array, parts: Uint8Array[]) =>
  parts.reduce((acc, p) => new Uint8Array(createHash('sha384').update(acc).update(p).digest()), start);

/** An attester that takes a while, so that later requests queue up behind it. */
const slowAttester: AttesterFactory = () => ({
  attest: (input) => new Promise((resolve) => setTimeout(() => resolve(new Uint8Array(input.pcrs.at(-1)!.data)), 5)),
});

describe('concurrency', () => {
  it('1000 concurrent ExtendPCR calls equal folding them in issue order; none is lost', async () => {
    const d = new NsmDevice({ seed: '01', attester: slowAttester });
    const parts = Array.from({ length: 1000 }, (_, i) => new TextEncoder().encode(`part-${i}`));
    const results = await Promise.all(parts.map((p, i) => (i % 2 ? d.extendPcr(16, p) : d.handleRaw(encodeRequest({ type: 'ExtendPCR', index: 16, data: p })))));
    const expected = fold(new Uint8Array(48), parts);
    expect((await d.describePcr(16)).data).toEqual(expected);
    // Each answer is the value after exactly its own extend.
    let acc: Uint8Array = new Uint8Array(48);
    results.forEach((r, i) => {
      acc = fold(acc, [parts[i]!]);
      const value = r instanceof Uint8Array && r.length === 48 ? r : (decodeResponse(r as Uint8Array) as { data: Uint8Array }).data;
      expect(value).toEqual(acc);
    });
  });

  it('requests issued while an attestation is being signed wait for it, then run in order', async () => {
    const d = new NsmDevice({ seed: '01', attester: slowAttester });
    await d.lockPcr(17);
    const data = new Uint8Array([9]);
    // The document captures PCR 17 as it is when the request arrives; the lock and extend after
    // it must not overtake it, and the DescribePCR must see both.
    const doc = d.attestation();
    const ext = d.extendPcr(18, data);
    const lock = d.lockPcr(18);
    const desc = d.describePcr(18);
    const doc2 = d.attestation();
    const order: string[] = [];
    await Promise.all([doc, ext, lock, desc, doc2].map((p, i) => p.then(() => order.push(String(i)))));
    expect(order).toEqual(['0', '1', '2', '3', '4']);
    expect(await doc).toEqual(new Uint8Array(48)); // PCR 17, the last locked one, at request time
    expect(await doc2).toEqual(fold(new Uint8Array(48), [data])); // PCR 18, locked before doc2
    expect(await desc).toEqual({ lock: true, data: fold(new Uint8Array(48), [data]) });
  });
});

describe('reset while requests wait', () => {
  it('drops requests queued behind a signing attestation: InternalError, no effect; later requests see the boot state', async () => {
    const d = new NsmDevice({ seed: '01', attester: slowAttester });
    const doc = d.attestation();
    const queuedExtend = d.request({ type: 'ExtendPCR', index: 16, data: new Uint8Array([1]) });
    const queuedRaw = d.handleRaw(encodeRequest({ type: 'LockPCR', index: 17 }));
    d.reset();
    const after = d.describePcr(16);
    expect(await queuedExtend).toEqual({ type: 'Error', code: 'InternalError' });
    expect(decodeResponse(await queuedRaw)).toEqual({ type: 'Error', code: 'InternalError' });
    expect(await after).toEqual({ lock: false, data: new Uint8Array(48) });
    expect((await d.describePcr(17)).lock).toBe(false);
    expect((await doc).length).toBe(48); // the one already being signed completes
  });
});
