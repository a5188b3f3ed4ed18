// The vfio-user server without QEMU: a client written from the specification (test/helpers/
// vfio-user-client.ts) negotiates, reads configuration space and BARs, maps guest memory, wires
// MSI-X vectors and pushes NSM requests through the virtqueue, with guest memory reached only
// by DMA_READ / DMA_WRITE messages. Numbers checked are the virtio 1.x and VFIO specifications'.
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NsmDevice } from '../src/device/nsm-device.js';
import { VfioUserServer, buildRelay } from '../src/node/vfio-user-server.js';
import { type VfioUserLink, VfioUserSession } from '../src/vfio-user/session.js';
import { VirtioNsmDevice } from '../src/virtio/virtio-nsm-device.js';
import { hex, unhex, ascii } from './helpers/hex.js';
import { COMMON, CMD, TestVfioClient, le, put } from './helpers/vfio-user-client.js';
import { TestMemory } from './helpers/virtqueue-driver.js';
import { haveTool, runChild, tempDir } from './native/helpers.js';

const RAM = 0x40000;
const DESC = 0x10000;
const AVAIL = 0x10020;
const USED = 0x10040;
const REQ = 0x20004;
const RESP = 0x21008;
const DESCRIBE_PCR0 = unhex('a1' + '6b' + ascii('DescribePCR') + 'a1' + '65' + ascii('index') + '00');
const GET_RANDOM = unhex('69' + ascii('GetRandom'));
const EXTEND_PCR16 = unhex('a1' + '69' + ascii('ExtendPCR') + 'a2' + '65' + ascii('index') + '10' + '64' + ascii('data') + '43' + '616263');
const STATUS = { ACK: 1, DRIVER: 2, DRIVER_OK: 4, FEATURES_OK: 8 };
const seeded = () => new NsmDevice({ seed: '5eed', moduleId: 'i-0123456789abcdef0-enc0123456789abcdef', clock: () => 1_700_000_000_000 });

interface Harness {
  session: VfioUserSession;
  client: TestVfioClient;
  memory: TestMemory;
  dropped: string[];
  closed: number[][];
  signals: number[];
  logs: string[];
  nextSignal(handle: number): Promise<void>;
}

/** A session wired to a test client through an in-memory link (messages delivered asynchronously, as over a socket). */
function harness(existing: VfioUserSession | VirtioNsmDevice = new VirtioNsmDevice(seeded())): Harness {
  const memory = TestMemory.flat(RAM);
  const dropped: string[] = [];
  const closed: number[][] = [];
  const signals: number[] = [];
  const waiters: Array<[number, () => void]> = [];
  const logs: string[] = [];
  const session = existing instanceof VfioUserSession ? existing : new VfioUserSession(existing, { log: (_l, m) => logs.push(m), dmaTimeoutMs: 2000 });
  let client!: TestVfioClient;
  const link: VfioUserLink = {
    send: (m) => queueMicrotask(() => client.deliver(m.slice())),
    signal: (h) => {
      signals.push(h);
      for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]![0] === h) waiters.splice(i, 1)[0]![1]();
    },
    close: (hs) => closed.push([...hs]),
    drop: (why) => dropped.push(why),
  };
  client = new TestVfioClient(memory, (m) => queueMicrotask(() => session.receive(m.slice(), pendingFds.splice(0))));
  const pendingFds: number[] = [];
  (client as unknown as { withFds: (fds: number[]) => void }).withFds = (fds) => pendingFds.push(...fds);
  session.attach(link);
  return {
    session,
    client,
    memory,
    dropped,
    closed,
    signals,
    logs,
    nextSignal: (h) => new Promise((resolve) => waiters.push([h, resolve])),
  };
}

/** Sends the next message with these (fake) descriptors attached. */
function withFds(h: Harness, fds: number[]): void {
  (h.client as unknown as { withFds: (fds: number[]) => void }).withFds(fds);
}

/** Walks the capability list: [{id, at, bytes}] (bytes from configuration space). */
async function capabilities(c: TestVfioClient): Promise<Array<{ id: number; at: number; cfgType: number; bar: number; offset: number; length: number }>> {
  const config = await c.regionRead(7, 0, 256);
  const out = [];
  for (let at = config[0x34]!, n = 0; at !== 0 && n < 48; at = config[at + 1]!, n++) {
    out.push({ id: config[at]!, at, cfgType: config[at + 3]!, bar: config[at + 4]!, offset: le(config, at + 8, 4), length: le(config, at + 12, 4) });
  }
  return out;
}

/** Linux virtio_pci_modern's probe and setup of one queue, through BAR 4; MSI-X handles 501/502. */
async function bringUp(h: Harness, features = (1n << 32n) | (1n << 29n) | (1n << 28n), driverOk = true): Promise<void> {
  const c = h.client;
  expect((await c.version()).flags & 0x20).toBe(0);
  expect((await c.dmaMap(0, RAM)).flags & 0x20).toBe(0);
  await c.bar4Write(COMMON.deviceStatus, 1, 0);
  expect(await c.bar4Read(COMMON.deviceStatus, 1)).toBe(0);
  await c.bar4Write(COMMON.deviceStatus, 1, STATUS.ACK);
  await c.bar4Write(COMMON.deviceStatus, 1, STATUS.ACK | STATUS.DRIVER);
  await c.bar4Write(COMMON.driverFeatureSelect, 4, 0);
  await c.bar4Write(COMMON.driverFeature, 4, Number(features & 0xffffffffn));
  await c.bar4Write(COMMON.driverFeatureSelect, 4, 1);
  await c.bar4Write(COMMON.driverFeature, 4, Number(features >> 32n));
  await c.bar4Write(COMMON.deviceStatus, 1, STATUS.ACK | STATUS.DRIVER | STATUS.FEATURES_OK);
  expect(await c.bar4Read(COMMON.deviceStatus, 1)).toBe(STATUS.ACK | STATUS.DRIVER | STATUS.FEATURES_OK);
  await c.bar4Write(COMMON.queueSelect, 2, 0);
  expect(await c.bar4Read(COMMON.queueSize, 2)).toBe(2);
  await c.bar4Write(COMMON.queueMsixVector, 2, 1);
  expect(await c.bar4Read(COMMON.queueMsixVector, 2)).toBe(1);
  for (const [reg, addr] of [[COMMON.queueDesc, DESC], [COMMON.queueDriver, AVAIL], [COMMON.queueDevice, USED]] as const) {
    await c.bar4Write(reg, 4, addr);
    await c.bar4Write(reg + 4, 4, 0);
  }
  await c.bar4Write(COMMON.queueEnable, 2, 1);
  await c.bar4Write(COMMON.msixConfig, 2, 0);
  expect(await c.bar4Read(COMMON.msixConfig, 2)).toBe(0);
  withFds(h, [501, 502]);
  expect((await c.setIrqs(0x4 | 0x20, 2, 0, 2)).flags & 0x20).toBe(0);
  if (driverOk) await c.bar4Write(COMMON.deviceStatus, 1, STATUS.ACK | STATUS.DRIVER | STATUS.FEATURES_OK | STATUS.DRIVER_OK);
}

/** One nsm.c transaction: request (readable) and 0x3000 response (writable) chains, kick, wait for MSI-X vector 1. */
/** Writes `request` as the driver's descriptor pair (request, then a 0x3000-byte response buffer) and makes it available (round-th pair). */
function postRequest(h: Harness, request: Uint8Array, round: number): void {
  const m = h.memory;
  m.write(REQ, request);
  const put16 = (a: number, v: number) => m.setLe(a, 2, v);
  m.setLe(DESC, 8, REQ);
  m.setLe(DESC + 8, 4, request.length);
  m.setLe(DESC + 12, 2, 0);
  m.setLe(DESC + 16, 8, RESP);
  m.setLe(DESC + 24, 4, 0x3000);
  m.setLe(DESC + 28, 2, 2);
  put16(AVAIL + 4, 0);
  put16(AVAIL + 6, 1);
  put16(AVAIL + 2, 2 * (round + 1));
}

async function transact(h: Harness, request: Uint8Array, round: number): Promise<{ response: Uint8Array; used: number[][] }> {
  const m = h.memory;
  const put16 = (a: number, v: number) => m.setLe(a, 2, v);
  postRequest(h, request, round);
  const signalled = h.nextSignal(502);
  await h.client.bar4Write(0x3000, 2, 0, true); // the kick: a posted write to the notify area
  await signalled;
  expect(m.le(USED + 2, 2)).toBe(2 * (round + 1));
  const used = [0, 1].map((i) => [m.le(USED + 4 + 8 * i, 4), m.le(USED + 8 + 8 * i, 4)]);
  put16(AVAIL + 8, 2 * (round + 1)); // used_event, as virtqueue_get_buf writes it
  return { response: m.read(RESP, used[1]![1]!), used };
}

describe('vfio-user server (in-memory link)', () => {
  it('negotiates version 0.0 and answers with a NUL-terminated JSON capability object', async () => {
    const h = harness();
    const r = await h.client.version();
    expect(r.flags).toBe(1);
    expect(le(r.payload, 0, 2)).toBe(0);
    expect(le(r.payload, 2, 2)).toBe(0);
    expect(r.payload[r.payload.length - 1]).toBe(0);
    const caps = JSON.parse(new TextDecoder().decode(r.payload.subarray(4, r.payload.length - 1))) as { capabilities: Record<string, number> };
    expect(Object.keys(caps.capabilities).sort()).toEqual(['max_data_xfer_size', 'max_dma_maps', 'max_msg_fds', 'pgsizes']);
    expect(caps.capabilities['pgsizes']).toBe(4096);
    expect(caps.capabilities['max_data_xfer_size']).toBeGreaterThanOrEqual(0x3000);
    // A second VERSION is refused without ending the session.
    expect((await h.client.version()).flags & 0x20).toBe(0x20);
    expect(h.dropped).toEqual([]);
  });

  it('closes a connection whose first message is not VERSION, or that speaks another major version', async () => {
    const h = harness();
    void h.client.request(CMD.GET_INFO, new Uint8Array(16));
    await new Promise((r) => setTimeout(r, 10));
    expect(h.dropped[0]).toMatch(/before VERSION/);
    const h2 = harness();
    const p = new Uint8Array(5);
    put(p, 0, 2, 1);
    void h2.client.request(CMD.VERSION, p);
    await new Promise((r) => setTimeout(r, 10));
    expect(h2.dropped[0]).toMatch(/speaks vfio-user 1\.0/);
  });

  it('describes a resettable PCI device: 9 regions (BAR 1 4 KiB, BAR 4 16 KiB, 256-byte config), 5 interrupt types, 2 MSI-X vectors', async () => {
    const h = harness();
    await h.client.version();
    const info = await h.client.request(CMD.GET_INFO, (() => { const p = new Uint8Array(16); put(p, 0, 4, 16); return p; })());
    expect([le(info.payload, 0, 4), le(info.payload, 4, 4), le(info.payload, 8, 4), le(info.payload, 12, 4)]).toEqual([16, 3, 9, 5]);
    const sizes: number[] = [];
    for (let i = 0; i < 9; i++) {
      const p = new Uint8Array(32);
      put(p, 0, 4, 32);
      put(p, 8, 4, i);
      const r = await h.client.request(CMD.GET_REGION_INFO, p);
      expect(le(r.payload, 8, 4)).toBe(i);
      sizes.push(le(r.payload, 16, 8));
      expect(le(r.payload, 4, 4)).toBe(sizes[i] ? 3 : 0);
    }
    expect(sizes).toEqual([0, 0x1000, 0, 0, 0x4000, 0, 0, 256, 0]);
    const counts: number[] = [];
    for (let i = 0; i < 5; i++) {
      const p = new Uint8Array(16);
      put(p, 0, 4, 16);
      put(p, 8, 4, i);
      counts.push(le((await h.client.request(CMD.GET_IRQ_INFO, p)).payload, 12, 4));
    }
    expect(counts).toEqual([0, 0, 2, 0, 0]);
    const bad = new Uint8Array(32);
    put(bad, 0, 4, 32);
    put(bad, 8, 4, 9);
    expect((await h.client.request(CMD.GET_REGION_INFO, bad)).error).toBe(22);
  });

  it('presents a modern virtio-pci function in configuration space', async () => {
    const h = harness();
    const c = h.client;
    await c.version();
    expect(await c.configRead(0x00, 2)).toBe(0x1af4);
    expect(await c.configRead(0x02, 2)).toBe(0x1040 + 33);
    expect(await c.configRead(0x08, 1)).toBe(1); // revision 1: a modern-only device
    expect(await c.configRead(0x09, 3)).toBe(0xff0000);
    expect(await c.configRead(0x2c, 2)).toBe(0x1af4);
    expect((await c.configRead(0x06, 2)) & 0x10).toBe(0x10);
    expect(await c.configRead(0x3d, 1)).toBe(0); // no INTx pin
    const caps = await capabilities(c);
    const msix = caps.find((x) => x.id === 0x11)!;
    expect((await c.configRead(msix.at + 2, 2)) & 0x7ff).toBe(1); // table size 2
    expect(await c.configRead(msix.at + 4, 4)).toBe(0x0000_0001); // table in BAR 1 at 0
    expect(await c.configRead(msix.at + 8, 4)).toBe(0x0000_0801); // PBA in BAR 1 at 0x800
    const vendor = caps.filter((x) => x.id === 0x09).map(({ cfgType, bar, offset, length }) => [cfgType, bar, offset, length]);
    expect(vendor).toEqual([
      [1, 4, 0x0000, 0x1000],
      [3, 4, 0x1000, 0x1000],
      [4, 4, 0x2000, 0x1000],
      [2, 4, 0x3000, 0x1000],
      [5, 0, 0, 0],
    ]);
    const notify = caps.find((x) => x.cfgType === 2)!;
    expect(await c.configRead(notify.at + 16, 4)).toBe(4); // notify_off_multiplier
    // BAR sizing: all ones reads back the size mask with the type bits.
    await c.regionWrite(7, 0x20, unhex('ffffffff'));
    await c.regionWrite(7, 0x24, unhex('ffffffff'));
    expect(await c.configRead(0x20, 4)).toBe(0xffffc00c); // 16 KiB, 64-bit, prefetchable
    expect(await c.configRead(0x24, 4)).toBe(0xffffffff);
    await c.regionWrite(7, 0x14, unhex('ffffffff'));
    expect(await c.configRead(0x14, 4)).toBe(0xfffff000); // 4 KiB, 32-bit
    await c.regionWrite(7, 0x10, unhex('ffffffff'));
    expect(await c.configRead(0x10, 4)).toBe(0); // no BAR 0
    // Read-only identity survives a write.
    await c.regionWrite(7, 0x00, unhex('ffffffff'));
    expect(await c.configRead(0x00, 4)).toBe(0x10611af4);
  });

  it('keeps DMA map bookkeeping by the specification: EEXIST on overlap, exact unmap, unmap-all', async () => {
    const h = harness();
    const c = h.client;
    await c.version();
    expect((await c.dmaMap(0, 0x10000)).flags).toBe(1);
    expect((await c.dmaMap(0x8000, 0x10000)).error).toBe(17);
    expect((await c.dmaMap(0x20000, 0)).error).toBe(22);
    expect((await c.dmaMap(2 ** 44, 2 ** 41)).error).toBe(12); // more than 1 TiB of mirrors: ENOMEM, nothing allocated
    expect((await c.dmaMap(0x10000, 0x1000, 1)).flags).toBe(1);
    const unmapped = await c.dmaUnmap(0, 0x8000);
    expect(unmapped.error).toBe(2);
    const ok = await c.dmaUnmap(0, 0x10000);
    expect(ok.flags).toBe(1);
    expect(hex(ok.payload)).toBe(hex((() => { const p = new Uint8Array(24); put(p, 0, 4, 24); put(p, 16, 8, 0x10000); return p; })()));
    expect(h.session.dmaMappings).toBe(1);
    expect((await c.dmaUnmap(0, 0, 2)).flags).toBe(1);
    expect(h.session.dmaMappings).toBe(0);
  });

  it('refuses region accesses outside a region and over the transfer size', async () => {
    const h = harness();
    await h.client.version();
    await expect(h.client.regionRead(4, 0x3ffe, 4)).rejects.toThrow(/errno 22/);
    await expect(h.client.regionRead(0, 0, 4)).rejects.toThrow(/errno 22/);
    await expect(h.client.regionRead(7, 0, 1 << 20)).rejects.toThrow(/errno 7/);
  });

  it('serves NSM requests through the virtqueue with guest memory reached only by DMA messages, byte for byte as the in-process device', async () => {
    const h = harness();
    await bringUp(h);
    const reference = seeded();
    for (const [round, request] of [DESCRIBE_PCR0, EXTEND_PCR16, GET_RANDOM, GET_RANDOM].entries()) {
      const { response, used } = await transact(h, request, round);
      const expected = await reference.handleRaw(request);
      expect(hex(response)).toBe(hex(expected));
      expect(used).toEqual([[0, 0], [1, expected.length]]);
    }
    // Every DMA stayed inside the rings and the two buffers, and reads never touched the response buffer.
    for (const d of h.client.dmaLog) {
      const inRings = d.addr >= DESC && d.addr + d.len <= USED + 6 + 16;
      const inReq = d.addr >= REQ && d.addr + d.len <= REQ + 0x1000;
      const inResp = d.addr >= RESP && d.addr + d.len <= RESP + 0x3000;
      expect(inRings || inReq || (d.command === CMD.DMA_WRITE && inResp)).toBe(true);
    }
    expect(h.signals.every((s) => s === 502)).toBe(true);
    await h.session.idle();
  });

  it('serves the queue once it is enabled, before DRIVER_OK (Linux nsm reads its hwrng inside probe), without reporting DRIVER_OK early', async () => {
    const h = harness();
    await bringUp(h, undefined, false);
    expect(await h.client.bar4Read(COMMON.deviceStatus, 1)).toBe(STATUS.ACK | STATUS.DRIVER | STATUS.FEATURES_OK);
    const { response } = await transact(h, GET_RANDOM, 0);
    expect(hex(response)).toBe(hex(await seeded().handleRaw(GET_RANDOM)));
    expect(await h.client.bar4Read(COMMON.deviceStatus, 1)).toBe(STATUS.ACK | STATUS.DRIVER | STATUS.FEATURES_OK);
    await h.client.bar4Write(COMMON.deviceStatus, 1, 15);
    expect(await h.client.bar4Read(COMMON.deviceStatus, 1)).toBe(15);
    expect(hex((await transact(h, GET_RANDOM, 1)).response)).toBe(hex(await (async () => { const d = seeded(); await d.handleRaw(GET_RANDOM); return d.handleRaw(GET_RANDOM); })()));
  });

  it('writes the response before the used ring, and the used ring before the interrupt', async () => {
    const h = harness();
    await bringUp(h);
    const order: string[] = [];
    const deliver = h.client.deliver.bind(h.client);
    h.client.deliver = (m) => {
      if (le(m, 2, 2) === CMD.DMA_WRITE && (le(m, 8, 4) & 0xf) === 0) {
        const addr = le(m, 16, 8);
        order.push(addr >= RESP ? 'response' : addr === USED + 2 ? 'used.idx' : addr >= USED ? 'used' : 'other');
      }
      deliver(m);
    };
    const signalled = h.nextSignal(502).then(() => order.push('interrupt'));
    await transact(h, DESCRIBE_PCR0, 0);
    await signalled;
    const firstUsed = order.indexOf('used');
    expect(order.indexOf('response')).toBeLessThan(firstUsed === -1 ? order.indexOf('used.idx') : firstUsed);
    expect(order.indexOf('used.idx')).toBeLessThan(order.indexOf('interrupt'));
  });

  it('answers register reads while guest-memory traffic is outstanding (a vCPU is never blocked behind DMA)', async () => {
    const h = harness();
    await bringUp(h);
    // Hold back every DMA reply until a register read has been answered.
    const held: Uint8Array[] = [];
    let holding = true;
    const deliver = h.client.deliver.bind(h.client);
    h.client.deliver = (m) => (holding && (le(m, 8, 4) & 0xf) === 0 ? void held.push(m) : deliver(m));
    postRequest(h, DESCRIBE_PCR0, 0);
    const signalled = h.nextSignal(502);
    await h.client.bar4Write(0x3000, 2, 0, true);
    await new Promise((r) => setTimeout(r, 5));
    expect(held.length).toBeGreaterThan(0);
    expect(await h.client.bar4Read(COMMON.deviceStatus, 1)).toBe(15);
    holding = false;
    for (const m of held.splice(0)) deliver(m);
    await signalled;
    expect(h.memory.le(USED + 2, 2)).toBe(2);
  });

  it('resets on DEVICE_RESET, and on disconnect drops mappings and closes the eventfds but keeps the device state', async () => {
    const h = harness();
    await bringUp(h);
    await transact(h, EXTEND_PCR16, 0);
    h.session.detach();
    expect(h.closed.flat().sort()).toEqual([501, 502]);
    expect(h.session.dmaMappings).toBe(0);
    expect(h.session.device.status).toBe(15);
    // A new client sees the same device, then resets it: the NSM is back at boot state.
    const again = harness(h.session);
    await again.client.version();
    expect(await again.client.bar4Read(COMMON.deviceStatus, 1)).toBe(15);
    const r = await again.client.request(CMD.RESET, new Uint8Array(0));
    expect(r.flags).toBe(1);
    expect(await again.client.bar4Read(COMMON.deviceStatus, 1)).toBe(0);
    expect(await again.client.bar4Read(COMMON.queueMsixVector, 2)).toBe(0xffff);
    expect(hex((await again.session.device.nsm.handleRaw(DESCRIBE_PCR0)))).toBe(hex(await seeded().handleRaw(DESCRIBE_PCR0)));
  });

  it('reports a DMA the client refuses, keeps answering, and serves the next kick once DMA works again', async () => {
    const h = harness();
    await bringUp(h);
    h.client.dmaError = 14;
    postRequest(h, DESCRIBE_PCR0, 0);
    await h.client.bar4Write(0x3000, 2, 0, true);
    await h.session.idle();
    expect(h.logs.some((l) => /queue service stopped: DMA_READ failed in the client \(errno 14\)/.test(l))).toBe(true);
    expect(h.memory.le(USED + 2, 2)).toBe(0);
    expect(await h.client.bar4Read(COMMON.deviceStatus, 1)).toBe(15);
    h.client.dmaError = 0;
    const signalled = h.nextSignal(502);
    await h.client.bar4Write(0x3000, 2, 0, true);
    await signalled;
    expect(hex(h.memory.read(RESP, h.memory.le(USED + 16, 4)))).toBe(hex(await seeded().handleRaw(DESCRIBE_PCR0)));
  });

  it('reads and writes BAR 4 through the VIRTIO_PCI_CAP_PCI_CFG window in configuration space', async () => {
    const h = harness();
    await bringUp(h);
    const cap = (await capabilities(h.client)).find((x) => x.id === 0x09 && x.cfgType === 5)!;
    await h.client.regionWrite(7, cap.at + 4, unhex('04')); // bar 4
    await h.client.regionWrite(7, cap.at + 8, unhex('14000000')); // device_status
    await h.client.regionWrite(7, cap.at + 12, unhex('01000000')); // 1 byte
    expect(await h.client.configRead(cap.at + 16, 1)).toBe(15);
    await h.client.regionWrite(7, cap.at + 8, unhex('10000000')); // config_msix_vector
    await h.client.regionWrite(7, cap.at + 12, unhex('02000000'));
    await h.client.regionWrite(7, cap.at + 16, unhex('0100'));
    expect(await h.client.bar4Read(COMMON.msixConfig, 2)).toBe(1);
  });

  it('refuses SET_IRQS it cannot honour', async () => {
    const h = harness();
    await bringUp(h);
    withFds(h, [7]);
    expect((await h.client.setIrqs(0x4 | 0x20, 2, 0, 2)).error).toBe(22); // 1 descriptor for 2 vectors
    expect(h.closed.flat()).toContain(7);
    expect((await h.client.setIrqs(0x4 | 0x20, 2, 1, 2)).error).toBe(22); // past the table
    expect((await h.client.setIrqs(0x1 | 0x8, 2, 0, 1)).error).toBe(22); // MSI-X mask
    // Trigger from the client: DATA_NONE|TRIGGER signals the vector's eventfd.
    expect((await h.client.setIrqs(0x1 | 0x20, 2, 0, 1)).flags).toBe(1);
    expect(h.signals).toContain(501);
  });
});

describe('vfio-user server over its Unix socket relay', () => {
  const HAVE_CC = haveTool('cc', 'the vfio-user relay tests');
  const tmp = tempDir('nsm-vfio-');
  let relay = '';
  beforeAll(async () => {
    if (HAVE_CC) relay = await buildRelay({ cacheDir: join(tmp.path, 'cache') });
  });
  afterAll(() => tmp.remove());

  it.skipIf(!HAVE_CC)('negotiates, reads config space and serves a request with DMA through the relay', async () => {
    const path = join(tmp.path, 'nsm.sock');
    const events: string[] = [];
    const server = await VfioUserServer.listen(new VirtioNsmDevice(seeded()), path, { relay, log: (_l, m) => events.push(m) });
    try {
      const socket = connect(path);
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      const memory = TestMemory.flat(RAM);
      const client = new TestVfioClient(memory, (m) => socket.write(m));
      let buf = Buffer.alloc(0);
      socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 16 && buf.length >= buf.readUInt32LE(4)) {
          const n = buf.readUInt32LE(4);
          client.deliver(new Uint8Array(buf.subarray(0, n)));
          buf = buf.subarray(n);
        }
      });
      expect((await client.version()).flags).toBe(1);
      expect(await client.configRead(0, 4)).toBe(0x10611af4);
      // No descriptors can travel from Node: wire up everything but the eventfds and watch used.idx instead.
      await bringUpWithoutIrqs(client);
      memory.write(REQ, DESCRIBE_PCR0);
      memory.setLe(DESC, 8, REQ);
      memory.setLe(DESC + 8, 4, DESCRIBE_PCR0.length);
      memory.setLe(DESC + 16, 8, RESP);
      memory.setLe(DESC + 24, 4, 0x3000);
      memory.setLe(DESC + 28, 2, 2);
      memory.setLe(AVAIL + 6, 2, 1);
      memory.setLe(AVAIL + 2, 2, 2);
      await client.bar4Write(0x3000, 2, 0, true);
      for (let i = 0; i < 200 && memory.le(USED + 2, 2) !== 2; i++) await new Promise((r) => setTimeout(r, 10));
      expect(memory.le(USED + 2, 2)).toBe(2);
      expect(hex(memory.read(RESP, memory.le(USED + 16, 4)))).toBe(hex(await seeded().handleRaw(DESCRIBE_PCR0)));
      socket.destroy();
      for (let i = 0; i < 100 && !events.some((e) => /disconnected/.test(e)); i++) await new Promise((r) => setTimeout(r, 10));
      expect(events.some((e) => /client 1 disconnected/.test(e))).toBe(true);
      expect(server.session.dmaMappings).toBe(0);
    } finally {
      await server.close();
    }
  });

  const PY = '/usr/bin/python3';
  const HAVE_PY = spawnSync(PY, ['-c', 'import os, socket; os.eventfd; socket.send_fds'], { stdio: 'ignore' }).status === 0;
  if (!HAVE_PY) console.warn('\n*** SKIPPED: the eventfd test needs /usr/bin/python3 >= 3.10 (os.eventfd, socket.send_fds). ***\n');

  it.skipIf(!HAVE_CC || !HAVE_PY)('receives interrupt eventfds by SCM_RIGHTS and signals the one asked for (a real kernel eventfd, sent from Python)', async () => {
    const path = join(tmp.path, 'fd.sock');
    const server = await VfioUserServer.listen(new VirtioNsmDevice(seeded()), path, { relay });
    try {
      const script = `
import os, socket, struct, json, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
def msg(i, cmd, payload, fds=()):
    data = struct.pack('<HHIII', i, cmd, 16 + len(payload), 0, 0) + payload
    if fds: socket.send_fds(s, [data], list(fds))
    else: s.sendall(data)
    head = b''
    while len(head) < 16: head += s.recv(16 - len(head))
    _, c, size, flags, err = struct.unpack('<HHIII', head)
    body = b''
    while len(body) < size - 16: body += s.recv(size - 16 - len(body))
    return flags, err, body
caps = json.dumps({"capabilities": {"max_msg_fds": 16}}).encode() + b'\\0'
print('version', msg(1, 1, struct.pack('<HH', 0, 0) + caps)[0])
a, b = os.eventfd(0, os.EFD_NONBLOCK), os.eventfd(0, os.EFD_NONBLOCK)
print('set', msg(2, 8, struct.pack('<IIIII', 20, 0x4 | 0x20, 2, 0, 2), (a, b))[0])
print('trigger', msg(3, 8, struct.pack('<IIIII', 20, 0x1 | 0x20, 2, 1, 1))[0])
def take(fd):
    try: return os.eventfd_read(fd)
    except BlockingIOError: return 0
print('counts', take(a), take(b))
`;
      const r = await runChild(PY, ['-c', script, path], { timeoutMs: 20_000 });
      expect(r.stderr).toBe('');
      expect(r.stdout.trim().split('\n')).toEqual(['version 1', 'set 1', 'trigger 1', 'counts 0 1']);
    } finally {
      await server.close();
    }
  });
});

async function bringUpWithoutIrqs(c: TestVfioClient): Promise<void> {
  expect((await c.dmaMap(0, RAM)).flags).toBe(1);
  await c.bar4Write(COMMON.deviceStatus, 1, 0);
  await c.bar4Write(COMMON.deviceStatus, 1, STATUS.ACK | STATUS.DRIVER);
  await c.bar4Write(COMMON.driverFeatureSelect, 4, 1);
  await c.bar4Write(COMMON.driverFeature, 4, 1);
  await c.bar4Write(COMMON.deviceStatus, 1, STATUS.ACK | STATUS.DRIVER | STATUS.FEATURES_OK);
  await c.bar4Write(COMMON.queueSelect, 2, 0);
  for (const [reg, addr] of [[COMMON.queueDesc, DESC], [COMMON.queueDriver, AVAIL], [COMMON.queueDevice, USED]] as const) {
    await c.bar4Write(reg, 4, addr);
  }
  await c.bar4Write(COMMON.queueMsixVector, 2, 1);
  await c.bar4Write(COMMON.queueEnable, 2, 1);
  await c.bar4Write(COMMON.deviceStatus, 1, 15);
}
