/**
 * How long-running commands (serve, inspect, ...) wait to be stopped: the first SIGINT or
 * SIGTERM, including one that arrives while the command is still starting up.
 * @module
 */

export interface StopSignal {
  /** Resolves on the first SIGINT or SIGTERM after {@link stopSignal} was called. */
  readonly stopped: Promise<void>;
  /** Removes the handlers (call in a finally block). */
  dispose(): void;
}

export function stopSignal(): StopSignal {
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = () => resolve()));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    stopped,
    dispose() {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}
