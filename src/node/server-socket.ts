/**
 * The part of a connected stream socket the NSM server uses. A `net.Socket` has it, and so does
 * the native socket path's {@link NativeSocket} (./native-socket.ts), which takes a Unix or TCP
 * connection away from Node's stream machinery and reads and writes it from C. The server's
 * per-connection logic (framing, ordering, limits, draining) is written once against this.
 * @module
 */

/** A connected socket as the server drives it (the subset of `net.Socket` it uses). */
export interface ServerSocket {
  /** True once the socket is closed or being closed; writes are dropped. */
  readonly destroyed: boolean;
  /** `IPv4`/`IPv6` for a TCP peer; undefined for a Unix socket peer. */
  readonly remoteFamily?: string | undefined;
  /** Bytes queued and not yet taken by the kernel. */
  readonly writableLength: number;
  /** Queues bytes; false when the queue is over its high-water mark (wait for 'drain'). */
  write(chunk: Uint8Array): boolean;
  /** Holds writes until {@link uncork}, which sends them together. */
  cork(): void;
  uncork(): void;
  /** Stops (and restarts) reading; nothing is lost, the kernel keeps the bytes. */
  pause(): this;
  resume(): this;
  isPaused(): boolean;
  /** Sends what is queued, then shuts down the sending side; reading goes on until the peer ends. */
  end(): this;
  /** Closes now; queued bytes are dropped. 'close' follows, once, asynchronously. */
  destroy(): this;
  /** Turns Nagle's algorithm off (TCP; a no-op on a Unix socket). */
  setNoDelay(noDelay?: boolean): this;
  /** `chunk` may be a view valid only during the call: copy what is kept. */
  on(event: 'data', listener: (chunk: Uint8Array) => void): this;
  on(event: 'drain' | 'end' | 'close', listener: () => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
}
