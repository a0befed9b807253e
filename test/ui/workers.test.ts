// The dashboard's workers panel in a real headless Chromium, with workers: 2: each worker's pid and state,
// and after kill -9 of one, its slot's restart, the new pid and how the old one ended.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import type { WorkerPool } from '../../src/workers/pool.js';
import { launchChromium } from '../support/chromium.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';
import { startMember, type TestMember } from '../support/members.js';
import { requirePeer } from '../support/peers.js';

const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));

describe('dashboard workers panel in Chromium', () => {
  let member: TestMember | undefined;
  let ds: TestDayshift | undefined;
  let browser: Browser | undefined;

  after(async () => {
    await browser?.close();
    await ds?.stop();
    await member?.close();
  });

  it('lists each worker, and shows a killed one replaced with its restart and how it ended', async (t) => {
    const chromium = requirePeer(t, 'chromium', 'chromium');
    if (!chromium) return;
    member = await startMember('m1');
    ds = await startTestDayshift({
      workers: 2,
      clusters: { web: { members: [{ url: member.url }] } },
      health: { enabled: false },
      sites: { public: { hosts: ['*'], routes: [{ path: '/', clusters: ['web'] }] } },
    });
    const pool = ds.dayshift.proxy as WorkerPool;
    browser = await launchChromium(chromium);
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.setDefaultTimeout(20_000);
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${ds.adminUrl}/`);
    await page.getByLabel('Admin token').fill(ds.token);
    await page.keyboard.press('Enter');

    const panel = page.getByRole('region', { name: 'Worker processes' });
    const row = (worker: number) => panel.locator(`tr[data-worker="${worker}"]`);
    const cells = (worker: number) => row(worker).locator('th, td').allTextContents();
    const [victim, survivor] = pool.pids() as [number, number];
    await row(2)
      .locator('.badge', { hasText: /^serving$/ })
      .waitFor();
    await row(1)
      .locator('.badge', { hasText: /^serving$/ })
      .waitFor();
    assert.deepEqual((await cells(1)).slice(0, 3), ['1', String(victim), 'serving']);
    assert.deepEqual((await cells(1)).slice(4), ['0', '–'], 'no restart, no exit yet');
    assert.deepEqual((await cells(2)).slice(0, 3), ['2', String(survivor), 'serving']);
    await page.getByText('2 of 2 serving').waitFor();

    process.kill(victim, 'SIGKILL');
    await row(1).locator('td[data-label="Restarts"]', { hasText: /^1$/ }).waitFor();
    await row(1)
      .locator('.badge', { hasText: /^serving$/ })
      .waitFor();
    const replacement = pool.pids()[0]!;
    assert.notEqual(replacement, victim);
    const [number, pid, state, , restarts, exit] = await cells(1);
    assert.deepEqual([number, pid, state, restarts], ['1', String(replacement), 'serving', '1']);
    assert.match(exit ?? '', new RegExp(`^SIGKILL \\(pid ${victim}\\) `));
    assert.deepEqual((await cells(2)).slice(1, 3), [String(survivor), 'serving'], 'worker 2 left alone');
    await page
      .locator('#announcer', { hasText: `worker 1 replaced: pid ${replacement}` })
      .waitFor({ state: 'attached' });
    await mkdir(ARTIFACTS, { recursive: true });
    await page.locator('section.workers').screenshot({ path: join(ARTIFACTS, 'workers.png') });
    assert.deepEqual(pageErrors, []);
  });
});
