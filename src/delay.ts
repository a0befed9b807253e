// Waits a number of milliseconds. Aborting the signal rejects at once with the signal's own reason (Node's
// timers/promises setTimeout would reject with a generic AbortError instead), so a caller that aborts
// with a reason ("release stopped") sees that reason.
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
