/**
 * The socket server's native socket path: native/nsm-sockets.c, a Node-API addon built on first
 * use (./native-build.ts) with the system C compiler and the C headers Node ships, and
 * {@link NativeSocket}, which wraps one adopted connection in the {@link ServerSocket} interface.
 * A connection accepted with `pauseOnConnect` is read and written from C on Node's own event loop:
 * one call into JavaScript per read, no stream objects, a direct send(2) per write.
 * @module
 */
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { type NativeBuildOptions, type NativeProgram, NativeBuildError, buildNative } from './native-build.js';
import type { ServerSocket } from './server-socket.js';

/** Bytes read per call into JavaScript (one buffer shared by every connection). */
const READ_BUFFER_SIZE = 65536;
/** Bytes queued (or held while corked) at which write() returns false, as net.Socket's default. */
const HIGH_WATER = 16384;

export interface NativeSocketsOptions extends NativeBuildOptions {
  /** Directory holding Node's node_api.h and uv.h (default: the first of {@link nodeHeaderDirs} that has both). */
  readonly nodeIncludeDir?: string;
}

/** The loaded addon: takes connections over from Node's stream machinery. */
export interface NativeSockets {
  /** Path of the loaded addon. */
  readonly path: string;
  /**
   * Takes over a connection accepted with `pauseOnConnect: true` (Node has not read from it).
   * The returned socket owns it: destroying it destroys `socket` too. Throws a TypeError when
   * the socket has no descriptor to take (it is not a connected stream socket).
   */
  adopt(socket: Socket): ServerSocket;
}

/** The addon's functions (native/nsm-sockets.c). */
interface Binding {
  init(buffer: Buffer): void;
  adopt(fd: number, onEvent: (kind: number, arg: number | string | undefined) => void): object;
  write(handle: object, bytes: Uint8Array): boolean;
  setReading(handle: object, on: boolean): void;
  end(handle: object): void;
  destroy(handle: object): void;
  queued(handle: object): number;
}

const DATA = 0;
const DRAIN = 1;
const END = 2;
const ERROR = 3;
const CLOSE = 4;

/** Where Node's C headers are looked for, in order: beside this Node, npm's nodedir, node-gyp's cache, the system. */
export function nodeHeaderDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs = [join(dirname(process.execPath), '..', 'include', 'node')];
  if (env['npm_config_nodedir']) dirs.push(join(env['npm_config_nodedir'], 'include', 'node'));
  dirs.push(join(process.getBuiltinModule('node:os').homedir(), '.cache', 'node-gyp', process.versions.node, 'include', 'node'), '/usr/include/node', '/usr/local/include/node');
  return dirs;
}

/** The first of {@link nodeHeaderDirs} that holds both node_api.h and uv.h, if any. */
export function findNodeHeaders(): string | undefined {
  return nodeHeaderDirs().find(hasHeaders);
}

function hasHeaders(dir: string): boolean {
  return existsSync(join(dir, 'node_api.h')) && existsSync(join(dir, 'uv.h'));
}

/** The build recipe for this Node (its header directory and version are part of the cache key). */
export function nativeSocketsProgram(includeDir: string): NativeProgram {
  return {
    name: 'nsm-sockets',
    title: "the socket server's native socket path",
    file: 'nsm-sockets.c',
    suffix: '.node',
    cflags: ['-shared', '-fPIC', '-O2', '-Wall', '-fvisibility=hidden', `-DNSM_NODE_VERSION=${process.versions.node}`, '-I', includeDir],
    libs: [],
  };
}

const loaded = new Map<string, NativeSockets>();

/**
 * Builds the addon (or takes it from the cache) and loads it. Rejects with a
 * {@link NativeBuildError} saying why when it cannot: not Linux, no compiler, no Node headers, a
 * compile error, or a load error.
 */
export async function loadNativeSockets(options: NativeSocketsOptions = {}): Promise<NativeSockets> {
  if (process.platform !== 'linux') throw new NativeBuildError(`the native socket path works on Linux only (this is ${process.platform})`);
  let includeDir = options.nodeIncludeDir;
  if (includeDir === undefined) {
    includeDir = findNodeHeaders();
    if (includeDir === undefined) {
      throw new NativeBuildError(
        `Node's C headers (node_api.h and uv.h) were not found in ${nodeHeaderDirs().join(', ')}; ` +
          'they come with the Node.js tarball (include/node), `node-gyp install`, or Debian/Ubuntu package libnode-dev',
      );
    }
  } else if (!hasHeaders(includeDir)) {
    throw new NativeBuildError(`Node's C headers node_api.h and uv.h are not both in ${includeDir}`);
  }
  const path = await buildNative(nativeSocketsProgram(includeDir), options);
  const cached = loaded.get(path);
  if (cached) return cached;
  const module = { exports: {} as Binding };
  try {
    process.dlopen(module, path);
  } catch (e) {
    throw new NativeBuildError(`cannot load ${path}: ${(e as Error).message}`);
  }
  const binding = module.exports;
  const buffer = Buffer.alloc(READ_BUFFER_SIZE);
  binding.init(buffer);
  const sockets: NativeSockets = {
    path,
    adopt(socket: Socket): ServerSocket {
      const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
      if (typeof fd !== 'number' || fd < 0) throw new TypeError('the connection has no descriptor to adopt');
      return new NativeSocket(binding, buffer, socket, fd);
    },
  };
  loaded.set(path, sockets);
  return sockets;
}

/** One adopted connection: the {@link ServerSocket} subset of net.Socket, over the addon. */
export class NativeSocket extends EventEmitter implements ServerSocket {
  readonly remoteFamily: string | undefined;
  #destroyed = false;
  #paused = false;
  #ended = false;
  #corked = 0;
  #held: Uint8Array[] = [];
  #heldBytes = 0;
  /** write() returned false while corked: 'drain' is owed once the held bytes are sent. */
  #drainOwed = false;
  /** destroy() was called: no 'error' is emitted after it. */
  #destroyCalled = false;
  readonly #handle: object;

  constructor(
    private readonly binding: Binding,
    private readonly buffer: Buffer,
    private readonly original: Socket,
    fd: number,
  ) {
    super();
    this.remoteFamily = original.remoteFamily;
    this.#handle = binding.adopt(fd, (kind, arg) => this.#event(kind, arg));
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Bytes held while corked or queued in the addon, not yet taken by the kernel. */
  get writableLength(): number {
    return this.#destroyed ? 0 : this.#heldBytes + this.binding.queued(this.#handle);
  }

  #event(kind: number, arg: number | string | undefined): void {
    switch (kind) {
      case DATA:
        this.emit('data', this.buffer.subarray(0, arg as number));
        break;
      case DRAIN:
        this.emit('drain');
        break;
      case END:
        this.emit('end');
        break;
      case ERROR:
        if (this.#destroyCalled) break; // net.Socket reports nothing after destroy()
        this.#destroyed = true;
        this.emit('error', socketError(arg as string));
        break;
      case CLOSE:
        this.#destroyed = true;
        this.original.destroy();
        this.emit('close');
        break;
    }
  }

  write(chunk: Uint8Array): boolean {
    if (this.#destroyed || this.#ended) return false;
    if (this.#corked > 0) {
      // Held bytes count toward the high-water mark, as in net.Socket: a peer that pipelines
      // without reading cannot make the server queue without bound.
      this.#held.push(chunk);
      this.#heldBytes += chunk.length;
      if (this.#heldBytes < HIGH_WATER) return true;
      this.#drainOwed = true;
      return false;
    }
    return this.binding.write(this.#handle, chunk);
  }

  cork(): void {
    this.#corked++;
  }

  uncork(): void {
    if (this.#corked === 0 || --this.#corked > 0) return;
    const held = this.#held;
    const owed = this.#drainOwed;
    this.#held = [];
    this.#heldBytes = 0;
    this.#drainOwed = false;
    if (held.length === 0 || this.#destroyed) return;
    // When the kernel takes it all, the owed 'drain' is emitted here (asynchronously, as
    // net.Socket does); otherwise the addon emits DRAIN once its queue empties.
    const ok = this.binding.write(this.#handle, held.length === 1 ? held[0]! : Buffer.concat(held));
    if (ok && owed) process.nextTick(() => this.#destroyed || this.emit('drain'));
  }

  pause(): this {
    if (!this.#paused && !this.#destroyed) this.binding.setReading(this.#handle, false);
    this.#paused = true;
    return this;
  }

  resume(): this {
    if (this.#paused && !this.#destroyed) this.binding.setReading(this.#handle, true);
    this.#paused = false;
    return this;
  }

  isPaused(): boolean {
    return this.#paused;
  }

  end(): this {
    if (this.#destroyed || this.#ended) return this;
    this.#corked = 1;
    this.uncork();
    this.#ended = true;
    this.binding.end(this.#handle);
    return this;
  }

  destroy(): this {
    if (this.#destroyed) return this;
    this.#destroyed = true;
    this.#destroyCalled = true;
    this.binding.destroy(this.#handle);
    return this;
  }

  setNoDelay(noDelay = true): this {
    this.original.setNoDelay(noDelay);
    return this;
  }
}

/** An Error as net.Socket gives one: message `SYSCALL CODE`, with `code`, `errno` and `syscall`. */
function socketError(what: string): Error {
  const [syscall = 'socket', code = 'EIO'] = what.split(' ');
  const errno = (process.getBuiltinModule('node:os').constants.errno as Record<string, number>)[code];
  return Object.assign(new Error(`${syscall} ${code}`), { code, syscall, ...(errno !== undefined ? { errno: -errno } : {}) });
}
