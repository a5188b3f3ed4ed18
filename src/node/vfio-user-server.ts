/**
 * Serves a {@link VirtioNsmDevice} to a vfio-user client (QEMU's `vfio-user-pci`) on a Unix
 * socket. The socket itself is owned by a small C program, native/vfio-user-relay.c (built on
 * first use, like the shim), because the client passes interrupt eventfds with SCM_RIGHTS and
 * Node cannot receive descriptors on a socket. The relay forwards every message with the numbers
 * of the descriptors that came with it; this side runs the protocol ({@link VfioUserSession}) and
 * asks the relay to send replies and DMA requests, signal an eventfd, close descriptors, or drop
 * the client.
 * @module
 */
import type { ChildProcessByStdio } from 'node:child_process';
import { lstatSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import type { VirtioNsmDevice } from '../virtio/virtio-nsm-device.js';
import { type VfioUserLink, VfioUserSession, type VfioUserSessionOptions } from '../vfio-user/session.js';
import { type NativeBuildOptions, type NativeProgram, buildNative } from './native-build.js';
import { clearStaleSocket, removeIfSame } from './listen.js';

/** The relay's build recipe (native/vfio-user-relay.c). */
export const RELAY_PROGRAM: NativeProgram = {
  name: 'vfio-user-relay',
  title: 'the vfio-user socket relay',
  file: 'vfio-user-relay.c',
  suffix: '',
  cflags: ['-O2', '-Wall'],
  libs: [],
};

/** Path of the built relay, building it on first use (a NativeBuildError when it cannot be). */
export function buildRelay(options: NativeBuildOptions = {}): Promise<string> {
  return buildNative(RELAY_PROGRAM, options);
}

export interface VfioUserServerOptions extends VfioUserSessionOptions {
  /** A relay already built (default: build or reuse the cached one). */
  readonly relay?: string;
  /** Cache directory and compiler for building the relay. */
  readonly build?: NativeBuildOptions;
}

const TO_LISTENING = 1;
const TO_CONNECTED = 2;
const TO_MESSAGE = 3;
const TO_DISCONNECTED = 4;
const TO_NOTE = 5;
const FROM_SEND = 1;
const FROM_SIGNAL = 2;
const FROM_CLOSE = 3;
const FROM_DROP = 4;
/** Largest frame the relay sends (a 1 MiB message plus its descriptor list). */
const FRAME_CAP = 1024 * 1024 + 4096 + 256;

export class VfioUserServer {
  readonly session: VfioUserSession;
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private readonly log: (level: 'info' | 'warn', message: string) => void;
  private client = 0;
  private closed: Promise<void> | null = null;
  private readonly exited: Promise<number | null>;
  private socketFile: { path: string; dev: number; ino: number } | null = null;
  private stderr = '';

  private constructor(device: VirtioNsmDevice, relay: string, readonly path: string, options: VfioUserServerOptions) {
    this.log = options.log ?? (() => undefined);
    this.session = new VfioUserSession(device, options);
    this.child = process.getBuiltinModule('node:child_process').spawn(relay, [path], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
    this.child.stderr.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-2000)));
    this.child.stdin.on('error', () => undefined); // the relay died: reported through 'exit'
  }

  /**
   * Starts serving `device` on the Unix socket `path` (created 0600). A stale socket file left
   * by a dead server is replaced; a live one, or a path that is not a socket, is an error.
   */
  static async listen(device: VirtioNsmDevice, path: string, options: VfioUserServerOptions = {}): Promise<VfioUserServer> {
    const relay = options.relay ?? (await buildRelay(options.build));
    await clearStaleSocket(path, `unix:${path}`);
    const server = new VfioUserServer(device, relay, path, options);
    await server.start();
    return server;
  }

  private start(): Promise<void> {
    return new Promise((resolve, reject) => {
      let listening = false;
      let buffer: Buffer = Buffer.alloc(0);
      this.child.stdout.on('data', (chunk: Buffer) => {
        buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
        let at = 0;
        while (buffer.length - at >= 4) {
          const len = buffer.readUInt32LE(at);
          if (len === 0 || len > FRAME_CAP) {
            this.log('warn', `the relay sent a frame of ${len} bytes; stopping it`);
            this.child.kill();
            return;
          }
          if (buffer.length - at - 4 < len) break;
          const frame = buffer.subarray(at + 4, at + 4 + len);
          at += 4 + len;
          if (frame[0] === TO_LISTENING && !listening) {
            listening = true;
            const st = lstatSync(this.path);
            this.socketFile = { path: this.path, dev: st.dev, ino: st.ino };
            resolve();
          } else {
            this.frame(frame);
          }
        }
        buffer = buffer.subarray(at);
      });
      this.child.once('error', (e) => reject(e));
      void this.exited.then((code) => {
        if (!listening) reject(new Error(this.stderr.trim() || `the vfio-user relay exited with status ${code}`));
        else if (this.closed === null) this.log('warn', `the vfio-user relay exited unexpectedly (status ${code}): ${this.stderr.trim()}`);
        this.session.detach();
      });
    });
  }

  private frame(f: Buffer): void {
    const kind = f[0];
    switch (kind) {
      case TO_CONNECTED: {
        this.client = f.readUInt32LE(1);
        this.log('info', `client ${this.client} connected`);
        this.session.attach(this.link(this.client));
        break;
      }
      case TO_MESSAGE: {
        const who = f.readUInt32LE(1);
        const n = f[5]!;
        const fds: number[] = [];
        for (let i = 0; i < n; i++) fds.push(f.readUInt32LE(6 + 4 * i));
        const message = new Uint8Array(f.subarray(6 + 4 * n));
        if (who === this.client) this.session.receive(message, fds);
        break;
      }
      case TO_DISCONNECTED: {
        const who = f.readUInt32LE(1);
        this.log('info', `client ${who} disconnected: ${f.subarray(5).toString('utf8')}`);
        if (who === this.client) this.session.detach();
        break;
      }
      case TO_NOTE:
        this.log('warn', `relay: ${f.subarray(1).toString('utf8')}`);
        break;
      default:
        break;
    }
  }

  private link(client: number): VfioUserLink {
    const send = (kind: number, body: Uint8Array) => {
      if (this.closed !== null) return;
      const head = Buffer.alloc(9);
      head.writeUInt32LE(5 + body.length, 0);
      head[4] = kind;
      head.writeUInt32LE(client, 5);
      this.child.stdin.write(head);
      if (body.length > 0) this.child.stdin.write(body);
    };
    const u32s = (values: readonly number[]) => {
      const b = Buffer.alloc(4 * values.length);
      values.forEach((v, i) => b.writeUInt32LE(v, 4 * i));
      return b;
    };
    return {
      send: (message) => send(FROM_SEND, message),
      signal: (handle) => send(FROM_SIGNAL, u32s([handle])),
      close: (handles) => send(FROM_CLOSE, u32s(handles)),
      drop: () => send(FROM_DROP, new Uint8Array(0)),
    };
  }

  /** Stops the relay (closing the client) and removes the socket file. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.child.stdin.end();
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
      await this.exited;
      clearTimeout(timer);
      if (this.socketFile) removeIfSame(this.socketFile);
    })();
    return this.closed;
  }
}
