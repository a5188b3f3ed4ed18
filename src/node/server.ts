/**
 * The NSM socket server: one {@link NsmDevice} shared by every connection, reachable over Unix
 * domain sockets and TCP with the length-prefixed framing of ./framing.ts. It is what
 * `nsm-emulator serve` and `nsm-emulator exec` run, and what JavaScript tests can start
 * in-process to let native programs (through the /dev/nsm preload shim) use an emulated NSM.
 *
 * Every complete frame goes to `device.handleRaw` as it arrives, so the device sees requests
 * from all connections in arrival order, one at a time; each connection gets its answers in the
 * order it asked. A connection with 64 answers pending, or a full write queue (a client
 * pipelining without reading), waits: the rest of what it sent stays unexecuted, and it is not
 * read, until answers leave. A declared length above the device's 4096-byte limit is skipped
 * without being stored and answered `InputTooLarge`. A declared length above the frame cap, or a frame
 * left incomplete past the frame timeout, ends the connection: nothing after it is executed,
 * but every request already executed is answered before the connection is closed. Limits
 * (connections, timeouts) are in ./server-limits.ts; Unix socket files are created 0600.
 * @module
 */
import type { Server, Socket } from 'node:net';
import type { NsmDevice } from '../device/nsm-device.js';
import { NsmDeviceGoneError } from '../device/faults.js';
import { encodeResponse } from '../wire/encode-response.js';
import { FRAME_LENGTH_CAP, FrameReader, encodeFrame } from './framing.js';
import { AddressInUseError, type SocketFile, listenOn, listenUnix, removeIfSame } from './listen.js';
import { ConnectionClock, DEFAULT_SOCKET_MODE, type ServerLimits, type WatchedConnection, resolveServerLimits } from './server-limits.js';
import type { NativeSockets, NativeSocketsOptions } from './native-socket.js';
import type { ServerSocket } from './server-socket.js';

export { AddressInUseError, SocketPathError } from './listen.js';

/** Where a server listens: a Unix socket path, or a TCP host and port (host defaults to 127.0.0.1). */
export type NsmEndpoint =
  | {
      readonly path: string;
      /** Mode of the socket file (default 0o600: only the owner may connect), whatever the umask. */
      readonly mode?: number;
    }
  | { readonly host?: string; readonly port: number };

/** One request and its answer, as reported to {@link NsmServerOptions.onExchange}. */
export interface NsmExchange {
  /** Connection number (1, 2, ... in accept order). */
  readonly connection: number;
  /** The raw CBOR request, or null when it was over the device limit and skipped unread. */
  readonly request: Uint8Array | null;
  /** Declared length of the request frame. */
  readonly requestLength: number;
  /** The raw CBOR response sent back. */
  readonly response: Uint8Array;
}

/** Something that happened to a connection: `info` for routine events, `warn` for protocol faults. */
export interface NsmServerEvent {
  readonly level: 'info' | 'warn';
  readonly connection: number;
  readonly message: string;
}

export interface NsmServerOptions {
  /** Called after each response is handed to the socket. */
  readonly onExchange?: (exchange: NsmExchange) => void;
  /** Called for connection events and protocol faults. */
  readonly onEvent?: (event: NsmServerEvent) => void;
  /** Largest declared frame length tolerated before a connection is closed (default 1 MiB). */
  readonly frameLengthCap?: number;
  /** Connections held at once across all listeners (default 1024); more are closed at once. */
  readonly maxConnections?: number;
  /** Milliseconds a partial frame may stay incomplete before the connection is closed (default 10000; 0: never). */
  readonly frameTimeoutMs?: number;
  /** Milliseconds an idle connection is kept (default 0: forever, as /dev/nsm descriptors are). */
  readonly idleTimeoutMs?: number;
  /**
   * How connections are read and written (default 'node'):
   * - 'node': Node's net.Socket streams;
   * - 'native': the native socket path (./native-socket.ts: a small addon built on first use with
   *   the system C compiler and Node's headers); {@link NsmServer.listen} rejects when it cannot
   *   be built or loaded;
   * - 'auto': the native path when it can be had, else Node's streams, with the reason reported
   *   once as a `warn` event.
   * The bytes on the wire are the same either way.
   */
  readonly io?: 'node' | 'native' | 'auto';
  /** Build options for the native socket path (cache directory, compiler, Node header directory). */
  readonly nativeSockets?: NativeSocketsOptions;
}

const INPUT_TOO_LARGE = encodeResponse({ type: 'Error', code: 'InputTooLarge' });

/** Frames a connection may have in flight before the server stops reading from it. */
const MAX_IN_FLIGHT = 64;

/** Frames one connection may execute per turn of the event loop before others get theirs. */
const PUMP_BUDGET = 256;

interface Listener {
  readonly server: Server;
  readonly address: string;
  /** Unix socket file this listener created, with its identity, to remove on close. */
  readonly socketFile: SocketFile | null;
}

export class NsmServer {
  private readonly listeners: Listener[] = [];
  private readonly sockets = new Set<ServerSocket>();
  /** The native socket path once chosen (null: Node's streams; undefined: not decided yet). */
  private native: NativeSockets | null | undefined;
  private nextConnection = 0;
  private closing: Promise<void> | null = null;
  /** Connections refused since the cap was last reached (0: not at the cap). */
  private refused = 0;
  readonly limits: ServerLimits;
  private readonly clock: ConnectionClock;

  constructor(
    readonly device: NsmDevice,
    private readonly options: NsmServerOptions = {},
  ) {
    const { maxConnections, frameTimeoutMs, idleTimeoutMs } = options;
    this.limits = resolveServerLimits({ maxConnections, frameTimeoutMs, idleTimeoutMs });
    this.clock = new ConnectionClock(this.limits);
  }

  /** Addresses listened on, as `unix:PATH` or `tcp:HOST:PORT`. */
  get addresses(): string[] {
    return this.listeners.map((l) => l.address);
  }

  /** How connections are served: 'native' or 'node' (decided by the first {@link listen}). */
  get io(): 'native' | 'node' {
    return this.native ? 'native' : 'node';
  }

  /** Number of open client connections. */
  get connections(): number {
    return this.sockets.size;
  }

  /**
   * Starts listening; resolves to the address (`unix:PATH`, or `tcp:HOST:PORT` with the port
   * actually bound, useful with port 0). A stale socket file left by a dead server is replaced;
   * a live one, or a path that is not a socket, is an {@link AddressInUseError}; a directory
   * that is missing or unusable is a {@link SocketPathError}. The socket file gets
   * `endpoint.mode` (default 0600) whatever the umask.
   */
  async listen(endpoint: NsmEndpoint): Promise<string> {
    if (this.closing) throw new Error('server is closed');
    const native = await this.nativePath();
    const server = process.getBuiltinModule('node:net').createServer({ allowHalfOpen: true, pauseOnConnect: native !== null }, (s) => this.adopt(native, s));
    if ('path' in endpoint) {
      const address = `unix:${endpoint.path}`;
      const socketFile = await listenUnix(server, endpoint.path, endpoint.mode ?? DEFAULT_SOCKET_MODE);
      this.listeners.push({ server, address, socketFile });
      return address;
    }
    const host = endpoint.host ?? '127.0.0.1';
    await listenOn(server, `tcp:${hostPort(host, endpoint.port)}`, (cb) => server.listen(endpoint.port, host, cb));
    const bound = server.address();
    const port = bound !== null && typeof bound === 'object' ? bound.port : endpoint.port;
    const address = `tcp:${hostPort(host, port)}`;
    this.listeners.push({ server, address, socketFile: null });
    return address;
  }

  /** Stops listening, drops every connection and removes the socket files it created. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const closed = this.listeners.map((l) => new Promise<void>((resolve) => l.server.close(() => resolve())));
      for (const s of this.sockets) s.destroy();
      await Promise.all(closed);
      for (const l of this.listeners) if (l.socketFile) removeIfSame(l.socketFile);
    })();
    return this.closing;
  }

  /** Loads the native socket path on first use when asked for (see {@link NsmServerOptions.io}). */
  private async nativePath(): Promise<NativeSockets | null> {
    if (this.native !== undefined) return this.native;
    const io = this.options.io ?? 'node';
    if (io === 'node') return (this.native = null);
    try {
      // Loaded only when asked for, so the default path never reads the addon's loader.
      const { loadNativeSockets } = await import('./native-socket.js');
      this.native = await loadNativeSockets(this.options.nativeSockets);
      this.event('info', 0, `serving connections through the native socket path (${this.native.path})`);
    } catch (e) {
      if (io === 'native') throw e;
      this.native = null;
      this.event('warn', 0, `native socket path unavailable, serving with Node's net sockets: ${(e as Error).message}`);
    }
    return this.native;
  }

  /** A new connection, taken over by the native path when it is in use. */
  private adopt(native: NativeSockets | null, socket: Socket): void {
    if (native === null) return this.accept(socket);
    let adopted: ServerSocket;
    try {
      adopted = native.adopt(socket);
    } catch (e) {
      // Nothing was read yet: the connection is served by Node's streams instead.
      this.event('warn', 0, `the native socket path could not take a connection (${(e as Error).message}); serving it with Node's net sockets`);
      socket.resume();
      return this.accept(socket);
    }
    this.accept(adopted);
  }

  private event(level: NsmServerEvent['level'], connection: number, message: string): void {
    this.options.onEvent?.({ level, connection, message });
  }

  /** Over the connection cap: close at once, and say so (once per episode, not per peer). */
  private refuse(socket: ServerSocket): void {
    socket.destroy();
    if (this.refused++ === 0) {
      this.event('warn', 0, `connection limit of ${this.limits.maxConnections} reached: refusing new connections until one closes`);
    }
  }

  private accept(socket: ServerSocket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    if (this.sockets.size >= this.limits.maxConnections) {
      this.refuse(socket);
      return;
    }
    const id = ++this.nextConnection;
    if (this.device.disappeared) {
      // An injected fault removed the device: a client's first ioctl gets EIO.
      socket.destroy();
      this.event('warn', id, 'the device has disappeared (injected fault): connection closed at once');
      return;
    }
    const reader = new FrameReader(this.options.frameLengthCap ?? FRAME_LENGTH_CAP);
    let inFlight = 0;
    let ordered: Promise<unknown> = Promise.resolve();
    let ended = false;
    /** No more requests are read: answer what was executed, then close. */
    let draining = false;
    let endSent = false;
    this.sockets.add(socket);
    if (socket.remoteFamily !== undefined) socket.setNoDelay(true);
    this.event('info', id, 'connected');

    // Bytes read but not yet cut into frames and executed wait in the reader (at most one read's
    // worth: the socket is paused while any wait), and are cut one frame at a time as answers
    // leave: a read of tiny frames costs its bytes, not an object per frame.
    let pumping = false;
    /** A pump() is scheduled for the next turn of the event loop (after a turn's budget). */
    let pumpLater = false;
    /** Bytes queued for the peer when a write stall began, or at the last check of it. */
    let stallQueued = 0;
    /** False while the socket's write queue is over its high-water mark (until 'drain'). */
    let writable = true;
    const finishIfDone = () => {
      if ((draining || (ended && !reader.buffered)) && inFlight === 0 && !socket.destroyed && !endSent) {
        endSent = true;
        socket.end();
        // A peer that will not take its last answers is not waited for beyond the frame timeout.
        if (draining) setTimeout(() => socket.destroy(), this.limits.frameTimeoutMs || 10_000).unref();
      }
    };
    /** Stops executing this connection's requests; those already executed are still answered. */
    const drain = () => {
      if (draining) return;
      draining = true;
      reader.discard();
      this.clock.remove(watch);
      if (socket.isPaused()) socket.resume(); // keep reading (and discarding) so the peer can finish
      finishIfDone();
    };
    const watch: WatchedConnection = {
      partialSince: 0,
      stalledSince: 0,
      lastActive: Date.now(),
      busy: () => inFlight > 0 || reader.buffered,
      progress: (now) => {
        // A peer that reads, however slowly, is not stalled: restart the clock as the queue shrinks.
        const queued = socket.writableLength;
        if (watch.stalledSince > 0 && queued < stallQueued) watch.stalledSince = now;
        stallQueued = queued;
      },
      expire: (reason, elapsed) => {
        if (reason === 'frame') {
          const { received, declared } = reader.partial;
          const what = declared === null ? `${received} of 4 header bytes` : `${received} bytes of a ${declared}-byte frame`;
          this.event('warn', id, `frame timeout: ${what} received, nothing more for ${elapsed} ms (limit ${this.limits.frameTimeoutMs} ms); closing the connection`);
        } else if (reason === 'stall') {
          const held = countLeft();
          this.event('warn', id, `write stall: the peer has not read its answers for ${elapsed} ms (limit ${this.limits.frameTimeoutMs} ms, the frame timeout)${held > 0 ? `; ${held} request(s) held back are dropped` : ''}; closing the connection`);
        } else {
          this.event('warn', id, `idle timeout: no request for ${elapsed} ms (limit ${this.limits.idleTimeoutMs} ms); closing the connection`);
        }
        drain();
      },
    };
    this.clock.add(watch);

    /**
     * The server stops reading this connection for its own reasons (answers pending, a full
     * write queue): the peer is not to blame for a partial frame meanwhile, so its clock stops.
     */
    const holdBack = () => {
      socket.pause();
      watch.partialSince = 0;
    };
    const readOn = () => {
      socket.resume();
      watch.partialSince = reader.idle ? 0 : Date.now();
    };

    const send = (request: Uint8Array | null, requestLength: number, response: Uint8Array) => {
      inFlight--;
      if (socket.destroyed) return;
      const ok = socket.write(encodeFrame(response));
      watch.lastActive = Date.now();
      this.options.onExchange?.({ connection: id, request, requestLength, response });
      if (!ok) {
        if (writable) {
          watch.stalledSince = Date.now();
          stallQueued = socket.writableLength;
        }
        writable = false;
        holdBack();
      } else if (!pumping) pump();
      finishIfDone();
    };

    /** The device disappeared (an injected fault): close without answering, so the client gets EIO. */
    const vanish = (e: unknown) => {
      inFlight--;
      if (socket.destroyed) return;
      const why = e instanceof NsmDeviceGoneError ? 'the device has disappeared (injected fault)' : `the device failed: ${String(e)}`;
      this.event('warn', id, `${why}: closing the connection without an answer`);
      socket.destroy();
    };

    /**
     * Executes the frames waiting in the reader while fewer than MAX_IN_FLIGHT answers are pending
     * and the socket's write queue is under its high-water mark, at most PUMP_BUDGET per turn of
     * the event loop (so that one pipelining peer cannot starve the others, or the timers), then
     * reads again once none wait: a client that sends without reading its answers holds at most
     * one read of bytes and one write queue of answers here.
     */
    const pump = () => {
      if (draining || pumping || socket.destroyed) return;
      pumping = true;
      // Several requests in one read (a pipelining client): the answers after the first leave
      // together, in one write.
      let corked = false;
      let budget = PUMP_BUDGET;
      while (reader.buffered && inFlight < MAX_IN_FLIGHT && writable && !draining && !socket.destroyed && budget-- > 0) {
        const ev = reader.next();
        if (ev === null) break;
        if (ev.kind === 'overCap') {
          // Requests before it were executed: answer them, then close.
          this.event('warn', id, `declared frame length ${ev.length} is over the cap; closing the connection after answering the ${inFlight} request(s) already executed`);
          if (corked) socket.uncork();
          pumping = false;
          drain();
          return;
        }
        const request = ev.kind === 'frame' ? ev.body : null;
        const length = ev.kind === 'frame' ? ev.body.length : ev.length;
        if (request === null) this.event('warn', id, `request of ${length} bytes is over the 4096-byte limit: answered InputTooLarge`);
        // The device runs requests in arrival order; answers leave in the same order. An answer
        // the device has at once, with nothing ahead of it on this connection, is sent at once.
        const answer = request === null ? INPUT_TOO_LARGE : this.device.handleRawNow(request);
        inFlight++;
        if (inFlight === 1 && answer instanceof Uint8Array) {
          send(request, length, answer);
          if (!corked && reader.buffered && !socket.destroyed) {
            socket.cork();
            corked = true;
          }
          continue;
        }
        const settled = answer instanceof Uint8Array ? Promise.resolve(answer) : answer;
        const prev = ordered;
        ordered = (inFlight === 1 ? settled : prev.then(() => settled)).then(
          (r) => send(request, length, r),
          (e: unknown) => vanish(e),
        );
      }
      if (corked) socket.uncork();
      pumping = false;
      if (!reader.buffered) {
        if (socket.isPaused() && inFlight < MAX_IN_FLIGHT && !draining && writable) readOn();
      } else {
        // The chunk's memory may be reused (the native path reads every connection into one buffer).
        reader.retain();
        if (!socket.isPaused()) holdBack();
        if (budget < 0 && !pumpLater && !draining) {
          pumpLater = true;
          setImmediate(() => {
            pumpLater = false;
            pump();
          });
        }
      }
      finishIfDone();
    };
    socket.on('data', (chunk: Uint8Array) => {
      if (draining) return;
      reader.feed(chunk);
      pump();
      if (inFlight >= MAX_IN_FLIGHT && !draining && !socket.isPaused()) holdBack();
      const now = Date.now();
      watch.lastActive = now;
      watch.partialSince = reader.idle || socket.isPaused() ? 0 : watch.partialSince || now;
    });
    socket.on('drain', () => {
      writable = true;
      watch.stalledSince = 0;
      stallQueued = 0;
      if (!draining) pump();
    });
    socket.on('end', () => {
      ended = true;
      if (!reader.idle && !draining) {
        const { received, declared } = reader.partial;
        this.event('warn', id, `closed mid-frame (${received} bytes of ${declared === null ? 'a header' : `a ${declared}-byte frame`} received); partial frame dropped`);
      }
      finishIfDone();
    });
    socket.on('error', (e: Error) => this.event('info', id, `socket error: ${e.message}`));
    /** Complete requests waiting in the reader (cut now, to be counted: they will not run). */
    const countLeft = () => {
      let n = 0;
      for (let ev = reader.next(); ev !== null; ev = reader.next()) if (ev.kind !== 'overCap') n++;
      reader.discard();
      return n;
    };
    socket.on('close', () => {
      // The peer went away with complete requests read but held back (behind answers it did not
      // read): they are not executed, as after a frame timeout, and the count is reported.
      const left = draining || this.closing || this.device.disappeared ? 0 : countLeft();
      if (left > 0) this.event('warn', id, `the peer went away with ${left} request(s) read but held back behind answers it did not read; they were not executed`);
      this.sockets.delete(socket);
      this.clock.remove(watch);
      this.event('info', id, 'disconnected');
      if (this.refused > 0 && this.sockets.size < this.limits.maxConnections) {
        this.event('warn', 0, `below the connection limit again; ${this.refused} connection(s) were refused`);
        this.refused = 0;
      }
    });
  }
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
