// A guest-side virtio-nsm driver in miniature, for the example VMM loop and the benchmark.
//
// It does what Linux's drivers/misc/nsm.c does on the wire: per request, one device-readable
// descriptor holding the CBOR request and one device-writable descriptor offering 0x3000 bytes,
// both published in the available ring, one kick, then it waits for the interrupt and takes
// two used entries (request first, then the response with its length). It negotiates only
// VIRTIO_F_VERSION_1, so no event-index bookkeeping is needed. Guest memory is one byte array
// at guest address 0; the transport object stands for the virtio-mmio registers.

const VIRTIO_F_VERSION_1 = 1n << 32n;
const F_WRITE = 2;
const RESPONSE_SIZE = 0x3000;
const REQUEST_MAX = 0x1000;

export class GuestNsmDriver {
  /**
   * @param {Uint8Array} ram guest memory (guest physical address 0 = ram[0])
   * @param {{deviceId(): number, features(): bigint, ackFeatures(bits: bigint): boolean,
   *          queueMax(): number, start(queue: object, onInterrupt: (kind: string) => void): void,
   *          kick(queue: number): void}} transport
   */
  constructor(ram, transport, { ringBase = 0x1000, msgBase = 0x8000 } = {}) {
    this.ram = ram;
    this.view = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
    this.transport = transport;
    this.desc = ringBase;
    this.size = 2;
    this.avail = this.desc + 16 * this.size;
    this.used = this.desc + 0x1000; // 4096-aligned, as virtio-mmio lays it out
    this.req = msgBase + 4; // struct nsm_msg { u32 len; u8 data[0x1000]; u32 len; u8 data[0x3000] }
    this.resp = msgBase + 4 + REQUEST_MAX + 4;
    this.availIdx = 0;
    this.lastUsed = 0;
    this.heads = [0, 1];
    this.wake = null;
  }

  /** Finds the NSM, negotiates features and starts queue 0. */
  probe() {
    if (this.transport.deviceId() !== 33) throw new Error('not a virtio-nsm device');
    const features = this.transport.features() & VIRTIO_F_VERSION_1;
    if (!this.transport.ackFeatures(features)) throw new Error('FEATURES_OK refused');
    this.size = Math.min(2, this.transport.queueMax());
    this.ram.fill(0, this.desc, this.used + 6 + 8 * this.size);
    this.transport.start(
      { size: this.size, descTable: BigInt(this.desc), availRing: BigInt(this.avail), usedRing: BigInt(this.used) },
      (kind) => {
        if (kind === 'config') console.error('guest: device reports DEVICE_NEEDS_RESET');
        if (kind === 'vring' && this.wake) this.wake();
      },
    );
  }

  #descriptor(i, addr, len, flags) {
    const at = this.desc + 16 * i;
    this.view.setUint32(at, addr % 0x1_0000_0000, true); // addr is below 2^53: two 32-bit halves
    this.view.setUint32(at + 4, Math.floor(addr / 0x1_0000_0000), true);
    this.view.setUint32(at + 8, len, true);
    this.view.setUint16(at + 12, flags, true);
    this.view.setUint16(at + 14, 0, true);
  }

  #publish(head) {
    this.view.setUint16(this.avail + 4 + 2 * (this.availIdx % this.size), head, true);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.view.setUint16(this.avail + 2, this.availIdx, true);
  }

  #takeUsed() {
    if (this.view.getUint16(this.used + 2, true) === this.lastUsed) throw new Error('guest: used ring is empty');
    const at = this.used + 4 + 8 * (this.lastUsed % this.size);
    this.lastUsed = (this.lastUsed + 1) & 0xffff;
    return { id: this.view.getUint32(at, true), len: this.view.getUint32(at + 4, true) };
  }

  /**
   * One NSM_IOCTL_RAW: request bytes in, a promise of the response out. The response is a view
   * of the driver's response buffer in guest memory (like the kernel's msg->resp.data), valid
   * until the next request: copy it to keep it.
   */
  request(bytes) {
    if (bytes.length > REQUEST_MAX) return Promise.reject(new Error('EMSGSIZE'));
    this.ram.set(bytes, this.req);
    const [reqHead, respHead] = this.heads;
    this.#descriptor(reqHead, this.req, bytes.length, 0);
    this.#descriptor(respHead, this.resp, RESPONSE_SIZE, F_WRITE);
    return new Promise((resolve, reject) => {
      // Runs when the interrupt arrives (Linux: the vq callback completes the waiting ioctl).
      this.wake = () => {
        this.wake = null;
        const first = this.#takeUsed();
        const second = this.#takeUsed();
        if (first.id !== reqHead || second.id !== respHead) return reject(new Error('guest: used entries out of order'));
        this.heads = [respHead, reqHead]; // Linux's free list hands them back in this order
        resolve(this.ram.subarray(this.resp, this.resp + Math.min(second.len, RESPONSE_SIZE)));
      };
      this.#publish(reqHead);
      this.#publish(respHead);
      this.transport.kick(0);
    });
  }
}
