// virtio-nsm transport overhead: DescribePCR round trips through the split virtqueue (a guest
// driver laying out the Linux driver's two chains in guest memory, kick, device model, used
// ring, interrupt, response copied out) beside the same request through the raw API
// (`NsmDevice.handleRaw`) in the same run. Target: ratio >= 0.5.
import { NsmDevice, encodeRequest } from '../dist/index.js';
import { VirtioNsmDevice } from '../dist/virtio/index.js';
import { GuestNsmDriver } from '../examples/guest-driver.js';
import { compare } from './harness.js';

export async function run() {
  const request = encodeRequest({ type: 'DescribePCR', index: 4 });
  const ram = new Uint8Array(1 << 20);
  const device = new VirtioNsmDevice(new NsmDevice({ seed: '01' }));
  const guest = new GuestNsmDriver(ram, {
    deviceId: () => device.deviceType,
    features: () => device.deviceFeatures,
    ackFeatures: (bits) => device.ackFeatures(bits),
    queueMax: () => device.queueMaxSizes[0],
    start: (queue, onInterrupt) => device.activate({ memory: ram, queues: [queue], interrupt: onInterrupt }),
    kick: (queue) => void device.queueNotify(queue),
  });
  guest.probe();
  const raw = new NsmDevice({ seed: '01' });

  const expected = await raw.handleRaw(request);
  const got = await guest.request(request);
  if (got.length !== expected.length || got.some((b, i) => b !== expected[i])) throw new Error('virtqueue answer differs from the raw API');

  return [
    await compare({
      name: 'virtio DescribePCR round trip',
      fn: () => guest.request(request),
      baseline: 'NsmDevice.handleRaw',
      baselineFn: () => raw.handleRaw(request),
      target: 0.5,
    }),
  ];
}
