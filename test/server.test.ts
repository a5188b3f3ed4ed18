// The socket server and its framing, spoken to by a client written here with Buffer (not with
// src/node/framing.ts), and the `serve` command run in-process.
import { connect, type Socket } from 'node:net';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { NsmDevice } from '../src/device/nsm-device.js';
import { encodeRequest } from '../src/wire/encode-request.js';
import { FrameReader, encodeFrame, type FrameEvent } from '../src/node/framing.js';
import { AddressInUseError, NsmServer, type NsmExchange, type NsmServerEvent, type NsmServerOptions } from '../src/node/server.js';
import { main } from '../src/cli/main.js';
import { liveIo } from './helpers/cli.js';
import { parseListen } from '../src/cli/serve.js';
import { hex, serverIoModes, startServer, tempDir, twinOptions, type RunningServer } from './native/helpers.js';

// {"Error":"InputTooLarge"}, spelled out from the wire rules (a one-entry map, text value).
const INPUT_TOO_LARGE = 'a1654572726f726d496e707574546f6f4c61726765';

function frame(body: Uint8Array | Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

/** A framing client: send raw bytes, read whole response frames. */
class Client {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;
  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }
  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }
  static open(target: string | { host: string; port: number }): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = typeof target === 'string' ? connect(target) : connect(target.port, target.host);
      s.once('connect', () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }
  write(bytes: Uint8Array) {
    this.socket.write(bytes);
  }
  async read(): Promise<Buffer | null> {
    for (;;) {
      if (this.buf.length >= 4 && this.buf.length >= 4 + this.buf.readUInt32BE(0)) {
        const n = this.buf.readUInt32BE(0);
        const body = this.buf.subarray(4, 4 + n);
        this.buf = this.buf.subarray(4 + n);
        return body;
      }
      if (this.closed) return null;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
  async call(req: Uint8Array): Promise<Buffer> {
    this.write(frame(req));
    const r = await this.read();
    if (!r) throw new Error('connection closed');
    return r;
  }
  close() {
    this.socket.destroy();
  }
}

describe('FrameReader', () => {
  const stream = Buffer.concat([frame(Buffer.from('abc')), frame(Buffer.alloc(0)), frame(Buffer.alloc(5000, 7)), frame(Buffer.from([1, 2]))]);
  const summary = (evs: FrameEvent[]) => evs.map((e) => (e.kind === 'frame' ? `frame:${hex(e.body)}` : `${e.kind}:${e.length}`));
  const want = ['frame:616263', 'frame:', 'oversized:5000', 'frame:0102'];

  it('cuts fed bytes one frame at a time (feed/next), keeping bytes rather than an object per frame', () => {
    const r = new FrameReader();
    const chunk = Buffer.concat([stream, Buffer.alloc(4 * 16_384)]); // then 16,384 empty frames
    r.feed(chunk);
    const first = [r.next(), r.next(), r.next(), r.next()];
    expect(summary(first as FrameEvent[])).toEqual(want);
    expect(r.buffered).toBe(true);
    r.retain(); // a copy of the rest: the caller may now reuse the chunk's memory
    chunk.fill(0xff);
    let empties = 0;
    for (let ev = r.next(); ev !== null; ev = r.next()) if (ev.kind === 'frame' && ev.body.length === 0) empties++;
    expect(empties).toBe(16_384);
    expect(r.buffered).toBe(false);
    expect(r.idle).toBe(true);
    // Feeding more while bytes wait appends them.
    r.feed(stream.subarray(0, 10));
    r.feed(stream.subarray(10));
    const evs: FrameEvent[] = [];
    for (let ev = r.next(); ev !== null; ev = r.next()) evs.push(ev);
    expect(summary(evs)).toEqual(want);
  });

  it('cuts a stream into frames whatever the chunk boundaries', () => {
    for (const size of [1, 2, 3, 4, 5, 7, 4096, stream.length]) {
      const r = new FrameReader();
      const evs: FrameEvent[] = [];
      for (let i = 0; i < stream.length; i += size) evs.push(...r.push(stream.subarray(i, i + size)));
      expect(summary(evs), `chunk ${size}`).toEqual(want);
      expect(r.idle).toBe(true);
    }
  });

  it('accepts 4096 bytes, skips 4097 without storing them, and stops at the cap', () => {
    const r = new FrameReader(10_000);
    expect(summary(r.push(frame(Buffer.alloc(4096))))).toEqual([`frame:${'00'.repeat(4096)}`]);
    expect(summary(r.push(frame(Buffer.alloc(4097))))).toEqual(['oversized:4097']);
    const head = Buffer.from([0x7f, 0xff, 0xff, 0xff]);
    expect(summary(r.push(Buffer.concat([head, Buffer.alloc(10)])))).toEqual(['overCap:2147483647']);
    expect(r.push(frame(Buffer.from('x')))).toEqual([]); // nothing after a broken stream
  });

  it('reports a partial frame', () => {
    const r = new FrameReader();
    r.push(frame(Buffer.alloc(10)).subarray(0, 7));
    expect(r.idle).toBe(false);
    expect(r.partial).toEqual({ received: 7, declared: 10 });
  });

  it('encodeFrame writes a big-endian length', () => {
    expect(hex(encodeFrame(new Uint8Array(0x0102)).subarray(0, 4))).toBe('00000102');
  });
});

// Every server behaviour holds for both ways of serving a connection: Node's net.Socket streams
// and the native socket path (native/nsm-sockets.c).
describe.each(serverIoModes('the server tests'))('NsmServer (io: %s)', (io) => {
  const tmp = tempDir();
  const running: RunningServer[] = [];
  const clients: Client[] = [];
  const start = async (device?: NsmDevice, options: NsmServerOptions = {}) => {
    const s = await startServer(tmp.path, device, { io, ...options }, `s${running.length}-${Date.now()}.sock`);
    expect(s.server.io).toBe(io);
    running.push(s);
    return s;
  };
  const open = async (t: string | { host: string; port: number }) => {
    const c = await Client.open(t);
    clients.push(c);
    return c;
  };
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const s of running.splice(0)) await s.stop();
  });
  afterAll(() => tmp.remove());

  it('answers like the raw API, on a Unix socket and on loopback TCP', async () => {
    const s = await start();
    const tcp = await s.server.listen({ port: 0 });
    const m = /^tcp:127\.0\.0\.1:(\d+)$/.exec(tcp);
    expect(m).not.toBeNull();
    const twin = new NsmDevice(twinOptions());
    const req = encodeRequest({ type: 'DescribeNSM' });
    const want = hex(await twin.handleRaw(req));
    expect(hex(await (await open(s.path)).call(req))).toBe(want);
    expect(hex(await (await open({ host: '127.0.0.1', port: Number(m![1]) })).call(req))).toBe(want);
  });

  it('answers pipelined requests in order, with a slow attestation first', async () => {
    const s = await start();
    const c = await open(s.path);
    const reqs = [
      encodeRequest({ type: 'Attestation', userData: new Uint8Array([1]), nonce: null, publicKey: null }),
      encodeRequest({ type: 'ExtendPCR', index: 16, data: new Uint8Array([1]) }),
      encodeRequest({ type: 'DescribePCR', index: 16 }),
      encodeRequest({ type: 'LockPCR', index: 16 }),
      encodeRequest({ type: 'ExtendPCR', index: 16, data: new Uint8Array([2]) }),
    ];
    c.write(Buffer.concat(reqs.map(frame)));
    const twin = new NsmDevice(twinOptions());
    for (const r of reqs) expect(hex((await c.read())!)).toBe(hex(await twin.handleRaw(r)));
  });

  it('shares one device among many concurrent clients', async () => {
    const s = await start();
    const twin = new NsmDevice(twinOptions());
    const cs = await Promise.all(Array.from({ length: 12 }, () => open(s.path)));
    // Client k extends PCR 16 + k ten times: the final values do not depend on interleaving.
    await Promise.all(
      cs.map(async (c, k) => {
        for (let i = 0; i < 10; i++) await c.call(encodeRequest({ type: 'ExtendPCR', index: 16 + k, data: new Uint8Array([k, i]) }));
      }),
    );
    for (let k = 0; k < 12; k++) {
      for (let i = 0; i < 10; i++) await twin.extendPcr(16 + k, new Uint8Array([k, i]));
      expect(await s.device.describePcr(16 + k)).toEqual(await twin.describePcr(16 + k));
    }
  });

  it('answers a request over 4096 bytes InputTooLarge, as the device does, and keeps the connection', async () => {
    const exchanges: NsmExchange[] = [];
    const s = await start(undefined, { onExchange: (e) => exchanges.push(e) });
    const c = await open(s.path);
    expect(hex(await c.call(new Uint8Array(5000)))).toBe(INPUT_TOO_LARGE);
    expect(hex(await new NsmDevice(twinOptions()).handleRaw(new Uint8Array(4097)))).toBe(INPUT_TOO_LARGE);
    expect(exchanges[0]).toMatchObject({ connection: 1, request: null, requestLength: 5000 });
    expect(hex(await c.call(encodeRequest({ type: 'DescribePCR', index: 99 })))).toBe(hex(await new NsmDevice(twinOptions()).handleRaw(encodeRequest({ type: 'DescribePCR', index: 99 }))));
  });

  it('closes a connection that declares an absurd length, says so, and keeps serving others', async () => {
    const events: NsmServerEvent[] = [];
    const s = await start(undefined, { onEvent: (e) => events.push(e) });
    const bad = await open(s.path);
    const good = await open(s.path);
    bad.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    expect(await bad.read()).toBeNull();
    expect(events.some((e) => e.level === 'warn' && e.connection === 1 && /over the cap/.test(e.message))).toBe(true);
    expect((await good.call(encodeRequest({ type: 'GetRandom' }))).length).toBeGreaterThan(256);
  });

  it('drops a connection closed mid-frame without disturbing the others', async () => {
    const events: NsmServerEvent[] = [];
    const s = await start(undefined, { onEvent: (e) => events.push(e) });
    const good = await open(s.path);
    const half = await open(s.path);
    const extend = encodeRequest({ type: 'ExtendPCR', index: 16, data: new Uint8Array(50) });
    half.write(frame(extend).subarray(0, 20));
    half.socket.end();
    await new Promise<void>((r) => half.socket.once('close', () => r()));
    while (!events.some((e) => /mid-frame/.test(e.message))) await new Promise((r) => setTimeout(r, 5));
    expect(events.find((e) => /mid-frame/.test(e.message))?.message).toContain(`20 bytes of a ${extend.length}-byte frame`);
    // The partial extend never happened.
    expect(await s.device.describePcr(16)).toEqual(await new NsmDevice(twinOptions()).describePcr(16));
    expect((await good.call(encodeRequest({ type: 'DescribePCR', index: 16 }))).length).toBeGreaterThan(48);
  });

  it('still answers requests sent before the client half-closed', async () => {
    const s = await start();
    const c = await open(s.path);
    c.write(Buffer.concat([frame(encodeRequest({ type: 'DescribeNSM' })), frame(encodeRequest({ type: 'GetRandom' }))]));
    c.socket.end();
    expect(await c.read()).not.toBeNull();
    expect(await c.read()).not.toBeNull();
    expect(await c.read()).toBeNull();
  });

  it('refuses a socket path a live server owns or that is not a socket; replaces a stale one', async () => {
    const s = await start();
    const other = new NsmServer(new NsmDevice(twinOptions()));
    await expect(other.listen({ path: s.path })).rejects.toThrow(AddressInUseError);
    const file = join(tmp.path, 'plain-file');
    writeFileSync(file, 'x');
    await expect(other.listen({ path: file })).rejects.toThrow(/exists and is not a socket/);
    // A socket file left behind by a dead server (simulated: closed listener, file kept).
    const { createServer } = await import('node:net');
    const stalePath = join(tmp.path, 'stale.sock');
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(stalePath, r));
    const { renameSync } = await import('node:fs');
    renameSync(stalePath, stalePath + '.keep');
    await new Promise((r) => dead.close(r));
    renameSync(stalePath + '.keep', stalePath);
    expect(existsSync(stalePath)).toBe(true);
    expect(await other.listen({ path: stalePath })).toBe(`unix:${stalePath}`);
    await other.close();
    expect(existsSync(stalePath)).toBe(false);
  });

  it('removes its socket files and drops clients on close', async () => {
    const s = await startServer(tmp.path, undefined, { io }, 'closing.sock');
    const c = await open(s.path);
    await c.call(encodeRequest({ type: 'DescribeNSM' }));
    await s.stop();
    expect(existsSync(s.path)).toBe(false);
    expect(await c.read()).toBeNull();
  });
});

describe('choosing the native socket path', () => {
  const tmp = tempDir();
  afterAll(() => tmp.remove());
  const noHeaders = () => {
    const dir = join(tmp.path, `empty-${Math.random().toString(36).slice(2)}`);
    mkdirSync(dir);
    return dir;
  };

  it("'auto' without Node's headers says why once and serves with Node's sockets", async () => {
    const events: NsmServerEvent[] = [];
    const dir = noHeaders();
    const server = new NsmServer(new NsmDevice(twinOptions()), { io: 'auto', nativeSockets: { nodeIncludeDir: dir }, onEvent: (e) => events.push(e) });
    try {
      const address = await server.listen({ path: join(tmp.path, 'auto.sock') });
      await server.listen({ port: 0 });
      expect(server.io).toBe('node');
      const warnings = events.filter((e) => e.level === 'warn');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.message).toContain('native socket path unavailable');
      expect(warnings[0]!.message).toContain(`node_api.h and uv.h are not both in ${dir}`);
      const c = await Client.open(address.slice('unix:'.length));
      const req = encodeRequest({ type: 'DescribePCR', index: 3 });
      expect(hex(await c.call(req))).toBe(hex(await new NsmDevice(twinOptions()).handleRaw(req)));
      c.close();
    } finally {
      await server.close();
    }
  });

  it("'native' refuses to listen when the addon cannot be built, naming what is missing", async () => {
    const dir = noHeaders();
    const server = new NsmServer(new NsmDevice(twinOptions()), { io: 'native', nativeSockets: { nodeIncludeDir: dir } });
    await expect(server.listen({ path: join(tmp.path, 'native.sock') })).rejects.toThrow(new RegExp(`node_api.h and uv.h are not both in ${dir}`));
    const bad = new NsmServer(new NsmDevice(twinOptions()), { io: 'native', nativeSockets: { cc: join(tmp.path, 'no-such-cc'), cacheDir: join(tmp.path, 'cache') } });
    await expect(bad.listen({ path: join(tmp.path, 'native2.sock') })).rejects.toThrow(/no C compiler: '.*no-such-cc' was not found/);
    expect(existsSync(join(tmp.path, 'native.sock'))).toBe(false);
    await server.close();
    await bad.close();
  });

  it.skipIf(!serverIoModes('the native path announcement test').includes('native'))("'native' says so once, with the addon's path, as an info event (serve --log prints it)", async () => {
    const events: NsmServerEvent[] = [];
    const server = new NsmServer(new NsmDevice(twinOptions()), { io: 'native', onEvent: (e) => events.push(e) });
    try {
      await server.listen({ path: join(tmp.path, 'says.sock') });
      await server.listen({ port: 0 });
      const said = events.filter((e) => /native socket path/.test(e.message));
      expect(said).toHaveLength(1);
      expect(said[0]).toMatchObject({ level: 'info', connection: 0 });
      expect(said[0]!.message).toMatch(/^serving connections through the native socket path \(.*nsm-sockets-[0-9a-f]+\.node\)$/);
    } finally {
      await server.close();
    }
  });

  it("is not built at all with io 'node' (the library's default)", async () => {
    const cacheDir = join(tmp.path, 'unused-cache');
    const server = new NsmServer(new NsmDevice(twinOptions()), { nativeSockets: { cacheDir } });
    await server.listen({ path: join(tmp.path, 'default.sock') });
    expect(server.io).toBe('node');
    expect(existsSync(cacheDir)).toBe(false);
    await server.close();
  });
});

describe('nsm-emulator serve', () => {
  const tmp = tempDir();
  afterAll(() => tmp.remove());

  const io = () => liveIo();
  async function until(cond: () => boolean) {
    while (!cond()) await new Promise((r) => setTimeout(r, 5));
  }

  it('serves until SIGTERM, logs exchanges as rpc --json does, and removes its socket', async () => {
    const path = join(tmp.path, 'cli.sock');
    const t = io();
    const done = main(['serve', '--socket', path, '--listen', '0', '--log', '--seed', '01', '--module-id', 'i-00000000000000000-enc0000000000000000'], t.io);
    await until(() => t.out().split('\n').length >= 3);
    const [unix, tcp] = t.out().trim().split('\n');
    expect(unix).toBe(`unix:${path}`);
    expect(tcp).toMatch(/^tcp:127\.0\.0\.1:\d+$/);
    const c = await Client.open(path);
    await c.call(encodeRequest({ type: 'DescribePCR', index: 3 }));
    c.close();
    await until(() => t.err().includes('"response"'));
    process.emit('SIGTERM');
    expect(await done).toBe(0);
    expect(existsSync(path)).toBe(false);
    const line = t.err().split('\n').find((l) => l.includes('"response"'))!;
    expect(JSON.parse(line)).toEqual({
      connection: 1,
      request: { DescribePCR: { index: 3 } },
      response: { DescribePCR: { lock: true, data: '00'.repeat(48) } },
    });
  });

  it('reports a socket path in use plainly and exits 1', async () => {
    const s = await startServer(tmp.path, undefined, {}, 'busy.sock');
    try {
      const t = io();
      expect(await main(['serve', '--socket', s.path], t.io)).toBe(1);
      expect(t.err()).toBe(`nsm-emulator serve: --socket ${s.path}: a server is already listening there\n`);
    } finally {
      await s.stop();
    }
  });

  it('rejects a missing endpoint and a malformed --listen', async () => {
    const t = io();
    expect(await main(['serve'], t.io)).toBe(2);
    expect(t.err()).toContain('give --socket PATH and/or --listen');
    const u = io();
    expect(await main(['serve', '--listen', 'localhost:99999'], u.io)).toBe(2);
    expect(u.err()).toContain("--listen 'localhost:99999': expected [HOST:]PORT");
    const v = io();
    expect(await main(['serve', '--socket', join(tmp.path, 'x.sock'), '--io', 'fast'], v.io)).toBe(2);
    expect(v.err()).toContain('--io fast: expected auto, native or node');
    const w = io();
    expect(await main(['exec', '--io', 'fast', '--', 'true'], w.io)).toBe(2);
    expect(w.err()).toContain('--io fast: expected auto, native or node');
  });

  it("says why --io native cannot be had, naming --io (not a listen address), exit 1", async () => {
    const saved = process.env['CC'];
    process.env['CC'] = join(tmp.path, 'no-such-cc');
    try {
      const t = io();
      expect(await main(['serve', '--listen', '0', '--io', 'native'], t.io)).toBe(1);
      expect(t.err()).toMatch(/^nsm-emulator serve: --io native: no C compiler: '.*no-such-cc' was not found\. [^\n]*\n$/);
    } finally {
      if (saved === undefined) delete process.env['CC'];
      else process.env['CC'] = saved;
    }
  });

  it('parses --listen forms', () => {
    expect(parseListen('5005')).toEqual({ host: '127.0.0.1', port: 5005 });
    expect(parseListen(':5005')).toEqual({ host: '127.0.0.1', port: 5005 });
    expect(parseListen('0.0.0.0:1')).toEqual({ host: '0.0.0.0', port: 1 });
    expect(parseListen('[::1]:80')).toEqual({ host: '::1', port: 80 });
  });
});
