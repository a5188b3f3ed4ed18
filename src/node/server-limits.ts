/**
 * The NSM socket server's resource limits (Node only): how many connections it holds, how long a
 * half-sent frame may sit, how long an idle connection may stay open, and how long a connection
 * that is being closed may take to collect its last answers. {@link ConnectionClock} enforces
 * the time limits for every connection with one timer.
 * @module
 */

/** Default cap on open connections across all listeners of one server. */
export const DEFAULT_MAX_CONNECTIONS = 1024;

/**
 * Default time a started frame (some header or body bytes received) may stay incomplete. A frame
 * is at most a few KiB; a peer that stops in the middle of one is stuck or hostile.
 */
export const DEFAULT_FRAME_TIMEOUT_MS = 10_000;

/**
 * Default time a connection may sit with nothing in flight and no partial frame: 0, off. The
 * shim keeps one connection per open `/dev/nsm` descriptor, and applications keep that
 * descriptor for their whole life, as they may with the real device; closing idle connections
 * would turn their next ioctl into EIO. The connection cap bounds what idle peers can hold.
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 0;

/** Default mode of a Unix socket file the server creates (owner only, whatever the umask). */
export const DEFAULT_SOCKET_MODE = 0o600;

export interface ServerLimits {
  /** Connections held at once; one more is accepted and closed at once (logged). */
  readonly maxConnections: number;
  /** Milliseconds a partial frame may stay incomplete; 0 disables. */
  readonly frameTimeoutMs: number;
  /** Milliseconds a connection may be idle (no partial frame, nothing in flight); 0 disables. */
  readonly idleTimeoutMs: number;
}

export const DEFAULT_SERVER_LIMITS: ServerLimits = {
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  frameTimeoutMs: DEFAULT_FRAME_TIMEOUT_MS,
  idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
};

/** Fills in defaults and checks the values (a RangeError names the bad one). */
export function resolveServerLimits(given: Partial<ServerLimits> = {}): ServerLimits {
  const limits = { ...DEFAULT_SERVER_LIMITS, ...definedOnly(given) };
  if (!Number.isSafeInteger(limits.maxConnections) || limits.maxConnections < 1) {
    throw new RangeError(`maxConnections must be an integer >= 1, got ${limits.maxConnections}`);
  }
  for (const k of ['frameTimeoutMs', 'idleTimeoutMs'] as const) {
    if (!Number.isFinite(limits[k]) || limits[k] < 0) throw new RangeError(`${k} must be a number of milliseconds >= 0, got ${limits[k]}`);
  }
  return limits;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** What the clock needs to know about one connection. */
export interface WatchedConnection {
  /** When the current partial frame started (ms), or 0 when between frames. */
  partialSince: number;
  /**
   * When the peer stopped taking answers (ms: a write found the socket's queue full), or 0. The
   * frame timeout bounds it too: a peer that sends without reading cannot hold its connection
   * (and the requests held back behind its answers) forever.
   */
  stalledSince: number;
  /** Last time a byte arrived or an answer left (ms). */
  lastActive: number;
  /** True while requests are executing or waiting to: never idle then. */
  busy(): boolean;
  /** Called at each check, first: lets the connection update `stalledSince` (a peer reading slowly). */
  progress?(now: number): void;
  /** Called once when a limit expires; the connection then closes itself. */
  expire(reason: 'frame' | 'stall' | 'idle', elapsedMs: number): void;
}

/** One timer for all connections: checks each at a quarter of the shortest enabled limit. */
export class ConnectionClock {
  private readonly watched = new Set<WatchedConnection>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly period: number;

  constructor(private readonly limits: ServerLimits) {
    const enabled = [limits.frameTimeoutMs, limits.idleTimeoutMs].filter((t) => t > 0);
    this.period = enabled.length === 0 ? 0 : Math.min(1000, Math.max(5, Math.floor(Math.min(...enabled) / 4)));
  }

  add(c: WatchedConnection): void {
    if (this.period === 0) return;
    this.watched.add(c);
    if (this.timer === null) {
      this.timer = setInterval(() => this.sweep(), this.period);
      this.timer.unref();
    }
  }

  remove(c: WatchedConnection): void {
    this.watched.delete(c);
    if (this.watched.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private sweep(): void {
    const now = Date.now();
    const { frameTimeoutMs, idleTimeoutMs } = this.limits;
    for (const c of [...this.watched]) {
      c.progress?.(now);
      if (frameTimeoutMs > 0 && c.partialSince > 0 && now - c.partialSince >= frameTimeoutMs) {
        this.remove(c);
        c.expire('frame', now - c.partialSince);
      } else if (frameTimeoutMs > 0 && c.stalledSince > 0 && now - c.stalledSince >= frameTimeoutMs) {
        this.remove(c);
        c.expire('stall', now - c.stalledSince);
      } else if (idleTimeoutMs > 0 && c.partialSince === 0 && !c.busy() && now - c.lastActive >= idleTimeoutMs) {
        this.remove(c);
        c.expire('idle', now - c.lastActive);
      }
    }
  }
}
