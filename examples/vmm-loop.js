#!/usr/bin/env node
// A VMM-side loop around the virtio-nsm device model, with a simulated guest driver.
//
//   node examples/vmm-loop.js        (in a project with nsm-emulator installed, or in its clone
//                                      after `npm run build`)
//
// The "VMM" owns guest RAM (an ArrayBuffer) and a miniature virtio-mmio transport. The guest
// driver (examples/guest-driver.js) programs the queue through the transport and kicks; the
// VMM forwards the kick to the device model without waiting, and delivers the device's
// interrupts back to the guest. The guest then asks for DescribeNSM and an attestation.
import { NsmDevice, VirtioNsmDevice, decodeCbor } from 'nsm-emulator';
import { GuestNsmDriver } from './guest-driver.js';

// ---- the VMM ------------------------------------------------------------------------------------
const ram = new Uint8Array(new ArrayBuffer(1 << 20)); // 1 MiB of guest RAM at guest address 0
const device = new VirtioNsmDevice(new NsmDevice());

/** The registers a virtio-mmio transport exposes, reduced to what the example needs. */
const transport = {
  deviceId: () => device.deviceType, // DeviceID register
  features: () => device.deviceFeatures, // DeviceFeatures (both halves)
  ackFeatures: (bits) => device.ackFeatures(bits), // DriverFeatures, then FEATURES_OK
  queueMax: () => device.queueMaxSizes[0], // QueueNumMax
  // QueueDesc/QueueDriver/QueueDevice/QueueNum/QueueReady, then Status = DRIVER_OK:
  start(queue, onInterrupt) {
    device.activate({
      memory: ram,
      queues: [queue],
      // The interrupt line: a real VMM sets InterruptStatus and injects the IRQ into the vCPU.
      interrupt: (kind) => queueMicrotask(() => onInterrupt(kind)),
    });
  },
  // QueueNotify: hand the kick to the device and go back to running vCPUs at once.
  kick(queue) {
    device.queueNotify(queue).catch((e) => console.error('vmm: interrupt delivery failed', e));
  },
};

// ---- the guest ----------------------------------------------------------------------------------
const guest = new GuestNsmDriver(ram, transport);
guest.probe();

const text = (s) => new TextEncoder().encode(s);
const cborText = (s) => new Uint8Array([0x60 | s.length, ...text(s)]);

const describe = decodeCbor(await guest.request(cborText('DescribeNSM')));
console.log('DescribeNSM through the virtqueue:');
for (const [k, v] of describe.entries[0][1].entries) console.log(`  ${k.value}: ${show(v)}`);

// {"Attestation": {"user_data": h'68656c6c6f', "nonce": null, "public_key": null}}
const attestationRequest = new Uint8Array([
  0xa1, ...cborText('Attestation'),
  0xa3, ...cborText('user_data'), 0x45, ...text('hello'), ...cborText('nonce'), 0xf6, ...cborText('public_key'), 0xf6,
]);
const answer = decodeCbor(await guest.request(attestationRequest));
const [name, body] = answer.entries[0];
console.log(`\nAttestation through the virtqueue: ${name.value}`);
if (name.value === 'Attestation') {
  const document = body.entries[0][1].value;
  const [protectedHeader, , payload, signature] = decodeCbor(document).items;
  console.log(`  document: ${document.length} bytes (COSE_Sign1), protected header ${hex(protectedHeader.value)}, signature ${signature.value.length} bytes`);
  for (const [k, v] of decodeCbor(payload.value).entries) console.log(`  ${k.value}: ${show(v)}`);
} else {
  console.log(`  the device answered ${show(body)} (is an attester configured?)`);
}
console.log(`\ndevice status 0x${device.status.toString(16)}, used index ${new DataView(ram.buffer).getUint16(0x2002, true)}`);

function hex(b) {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

function show(v) {
  switch (v.type) {
    case 'text':
      return JSON.stringify(v.value);
    case 'bytes':
      return v.value.length > 48 ? `${v.value.length} bytes` : `h'${hex(v.value)}'`;
    case 'array':
      return `[${v.items.map(show).join(', ')}]`;
    case 'map':
      return `{${v.entries.length} entries}`;
    case 'simple':
      return { 20: 'false', 21: 'true', 22: 'null' }[v.value] ?? `simple(${v.value})`;
    default:
      return String(v.value);
  }
}
