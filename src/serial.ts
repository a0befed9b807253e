// Runs async operations one at a time, in call order: read-modify-write sequences (a state change, a
// store write, a load balancer's change and read-back) must not interleave.
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.tail.then(operation, operation);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves once every operation started so far has ended. */
  async idle(): Promise<void> {
    await this.tail;
  }
}
