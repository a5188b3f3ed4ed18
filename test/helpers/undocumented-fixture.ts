/** Fixture for test/api-docs.test.ts: one documented and one bare member of each kind. */
export class Fixture {
  /** Documented. */
  documented(): number {
    return 1;
  }
  bare(): number {
    return 2;
  }
  /** @internal */ hidden(): number {
    return 3;
  }
  private secret(): number {
    return this.hidden();
  }
  /** Documented getter. */
  get value(): number {
    return this.secret();
  }
}

/** Documented. */
export function documentedFunction(): void {}
export function bareFunction(): void {}
