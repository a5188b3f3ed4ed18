/**
 * The NSM socket server: one {@link NsmDevice} shared by every connection, reachable over Unix
 * domain sockets and TCP with the length-prefixed framing of ./framing.ts. It is what
 * `nsm-emulator serve` and `nsm-emulator exec` run, and what JavaScript tests can start
 * in-process to let native programs (through the /dev/nsm preload shim) use an emulated NSM.
 *
 * Every complete frame goes to `device.handleRaw` at once, so the device sees requests from
 * all connections in arrival order, one at a time; each connection gets its answers in the
 * order it asked. A declared length above the device's 4096-byte limit is skipped without
 * being stored and answered `InputTooLarge`; one above the frame cap closes that connection.
 * @module
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { NsmDevice } from '../device/nsm-device.js';
import { encodeResponse } from '../wire/encode-response.js';
import { FRAME_LENGTH_CAP, FrameReader, encodeFrame } from './framing.js';

/** Where a server listens: a Unix socket path, or a TCP host and port (host defaults to 127.0.0.1). */
export type NsmEndpoint = { readonly path: string } | { readonly host?: string; readonly port: number };

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
}

/** Thrown by {@link NsmServer.listen} when another live server already owns the address. */
export class AddressInUseError extends Error {
  override readonly name = 'AddressInUseError';
  constructor(
    readonly address: string,
    readonly detail: string,
  ) {
    super(`${address}: ${detail}`);
  }
}

const INPUT_TOO_LARGE = encodeResponse({ type: 'Error', code: 'InputTooLarge' });

/** Frames a connection may have in flight before the server stops reading from it. */
const MAX_IN_FLIGHT = 64;

interface Listener {
  readonly server: Server;
  readonly address: string;
  /** Unix socket file this listener created, with its identity, to remove on close. */
  readonly socketFile: { path: string; dev: number; ino: number } | null;
}

export class NsmServer {
  private readonly listeners: Listener[] = [];
  private readonly sockets = new Set<Socket>();
  private nextConnection = 0;
  private closing: Promise<void> | null = null;

  constructor(
    readonly device: NsmDevice,
    private readonly options: NsmServerOptions = {},
  ) {}

  /** Addresses listened on, as `unix:PATH` or `tcp:HOST:PORT`. */
  get addresses(): string[] {
    return this.listeners.map((l) => l.address);
  }

  /** Number of open client connections. */
  get connections(): number {
    return this.sockets.size;
  }

  /**
   * Starts listening; resolves to the address (`unix:PATH`, or `tcp:HOST:PORT` with the port
   * actually bound, useful with port 0). A stale socket file left by a dead server is replaced;
   * a live one, or a path that is not a socket, is an {@link AddressInUseError}.
   */
  async listen(endpoint: NsmEndpoint): Promise<string> {
    if (this.closing) throw new Error('server is closed');
    const server = createServer({ allowHalfOpen: true }, (s) => this.accept(s));
    if ('path' in endpoint) {
      const address = `unix:${endpoint.path}`;
      await clearStaleSocket(endpoint.path, address);
      await listenOn(server, address, (cb) => server.listen(endpoint.path, cb));
      const st = lstatSync(endpoint.path);
      this.listeners.push({ server, address, socketFile: { path: endpoint.path, dev: st.dev, ino: st.ino } });
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

  private event(level: NsmServerEvent['level'], connection: number, message: string): void {
    this.options.onEvent?.({ level, connection, message });
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const id = ++this.nextConnection;
    const reader = new FrameReader(this.options.frameLengthCap ?? FRAME_LENGTH_CAP);
    let inFlight = 0;
    let ordered: Promise<unknown> = Promise.resolve();
    let ended = false;
    this.sockets.add(socket);
    if (socket.remoteFamily !== undefined) socket.setNoDelay(true);
    this.event('info', id, 'connected');

    const finishIfDone = () => {
      if (ended && inFlight === 0 && !socket.destroyed) socket.end();
    };
    const send = (request: Uint8Array | null, requestLength: number, response: Uint8Array) => {
      inFlight--;
      if (socket.destroyed) return;
      const ok = socket.write(encodeFrame(response));
      this.options.onExchange?.({ connection: id, request, requestLength, response });
      if (!ok) socket.pause();
      else if (inFlight < MAX_IN_FLIGHT && socket.isPaused()) socket.resume();
      finishIfDone();
    };

    socket.on('data', (chunk: Buffer) => {
      for (const ev of reader.push(chunk)) {
        if (ev.kind === 'overCap') {
          this.event('warn', id, `declared frame length ${ev.length} is over the cap; closing the connection`);
          socket.destroy();
          return;
        }
        const request = ev.kind === 'frame' ? ev.body : null;
        const length = ev.kind === 'frame' ? ev.body.length : ev.length;
        if (request === null) this.event('warn', id, `request of ${length} bytes is over the 4096-byte limit: answered InputTooLarge`);
        // The device runs requests in arrival order; answers leave in the same order.
        const answer = request === null ? Promise.resolve(INPUT_TOO_LARGE) : this.device.handleRaw(request);
        const prev = ordered;
        ordered = (inFlight === 0 ? answer : prev.then(() => answer)).then((r) => send(request, length, r));
        inFlight++;
      }
      if (inFlight >= MAX_IN_FLIGHT) socket.pause();
    });
    socket.on('drain', () => {
      if (inFlight < MAX_IN_FLIGHT) socket.resume();
    });
    socket.on('end', () => {
      ended = true;
      if (!reader.idle) {
        const { received, declared } = reader.partial;
        this.event('warn', id, `closed mid-frame (${received} bytes of ${declared === null ? 'a header' : `a ${declared}-byte frame`} received); partial frame dropped`);
      }
      finishIfDone();
    });
    socket.on('error', (e: Error) => this.event('info', id, `socket error: ${e.message}`));
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.event('info', id, 'disconnected');
    });
  }
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function listenOn(server: Server, address: string, start: (cb: () => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (e.code === 'EADDRINUSE') reject(new AddressInUseError(address, 'already in use'));
      else reject(e);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    start(onListening);
  });
}

/** A socket file nobody accepts on is removed; a live one or a non-socket is an error. */
async function clearStaleSocket(path: string, address: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new AddressInUseError(address, 'exists and is not a socket');
  const live = await new Promise<boolean>((resolve) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (live) throw new AddressInUseError(address, 'a server is already listening there');
  try {
    unlinkSync(path);
  } catch {
    // Gone already: fine.
  }
}

function removeIfSame(file: { path: string; dev: number; ino: number }): void {
  try {
    const st = lstatSync(file.path);
    if (st.dev === file.dev && st.ino === file.ino) unlinkSync(file.path);
  } catch {
    // Already removed.
  }
}
