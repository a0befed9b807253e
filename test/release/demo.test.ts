import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, it } from 'node:test';
import type { DemoReport } from '../../src/demo/demo.js';
import { freePort } from '../../src/ports.js';
import { cli, MAIN, until } from './harness.js';

const SHORT = ['--users', '5', '--think', '100ms', '--warmup', '500ms', '--drain-idle', '1s'];

describe('dayshift demo', () => {
  it('runs a full release under load to completion with 0 failed requests and 0 sessions cut', async () => {
    const run = await cli(['demo', ...SHORT, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as DemoReport;
    assert.equal(report.release.state, 'succeeded');
    assert.equal(report.load.failed, 0);
    assert.equal(report.load.cut, 0);
    assert.ok(report.load.requests > 0 && report.load.checkoutsCompleted > 0);
    assert.ok(
      report.steps.every((s) => s.ms !== undefined),
      'time per step',
    );
    assert.match(run.stderr, /public site\s+http:\/\/localhost:\d+\//);
    assert.match(run.stderr, /admin API\s+http:\/\/127\.0\.0\.1:\d+\s+token \S+/);
  });

  it('with --keep (and --port) stays up on that port until Ctrl-C, then stops everything and removes its files', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [MAIN, 'demo', ...SHORT, '--keep', '--port', String(port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    const exited = once(child, 'exit');
    try {
      await until(
        'the demo to keep running',
        () => (stdout.includes('Ctrl-C stops it all') ? true : undefined),
        90_000,
      );
      const publicUrl = /public site\s+(\S+)/.exec(stdout)![1]!;
      assert.equal(new URL(publicUrl).port, String(port));
      const page = await fetch(publicUrl.replace('localhost', '127.0.0.1'), {
        headers: { host: new URL(publicUrl).host },
      });
      assert.equal(page.status, 200, 'the proxy still serves');
      assert.match(await page.text(), /version <b>2\.0<\/b>/);
      const dir = dirname(/config\s+(\S+)/.exec(stdout)![1]!);
      child.kill('SIGINT');
      const [code] = (await exited) as [number | null];
      assert.equal(code, 0);
      assert.equal(existsSync(dir), false, 'the temporary state is gone');
      await assert.rejects(fetch(publicUrl.replace('localhost', '127.0.0.1')), 'the proxy is stopped');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
