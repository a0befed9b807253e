// What the peer harnesses share: a foreground child stopped by its PID, and polling with a deadline
// instead of sleeps. (Free loopback ports come from src/ports.ts.)
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

/** Calls `probe` every `intervalMs` until it returns a value other than undefined, or throws at the deadline with `what`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  const reason = lastError instanceof Error ? `: ${lastError.message}` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${reason}`);
}

/** A child process in the foreground whose output is kept for error messages. */
export class Foreground {
  readonly child: ChildProcess;
  private output = '';
  private exited = false;

  constructor(command: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv) {
    this.child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) });
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-8000);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.child.once('exit', () => {
      this.exited = true;
    });
  }

  get log(): string {
    return this.output;
  }

  get running(): boolean {
    return !this.exited;
  }

  /** SIGTERM by PID, then waits for the exit (SIGKILL if it has not gone after 5 s). */
  async stop(): Promise<void> {
    if (this.exited || this.child.pid === undefined) return;
    const exit = once(this.child, 'exit');
    process.kill(this.child.pid, 'SIGTERM');
    const timer = setTimeout(() => {
      if (!this.exited && this.child.pid !== undefined) process.kill(this.child.pid, 'SIGKILL');
    }, 5000);
    await exit;
    clearTimeout(timer);
  }
}
