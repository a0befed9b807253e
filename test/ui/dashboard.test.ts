// The dashboard end to end in a real headless Chromium: a real Dayshift (built-in proxy, control plane, release
// conductor, admin API) in front of four loopback members with sticky and anonymous users, driven through the page.
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it, type TestContext } from 'node:test';
import pino from 'pino';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startDayshift, type Dayshift } from '../../src/dayshift.js';
import { launchChromium } from '../support/chromium.js';
import { echoName, startMember, type TestMember } from '../support/members.js';
import { requirePeer } from '../support/peers.js';
import { loadObject, request } from '../support/proxy.js';

const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));
const TOKEN = 'dashboard-test-token-0123456789';

interface Env {
  dir: string;
  dayshift: Dayshift;
  members: TestMember[];
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** Uncaught exceptions and console errors in the page (a failed load is reported by its own test). */
  pageErrors: string[];
  stopLoad: () => Promise<void>;
  api: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: unknown }>;
}

let env: Promise<Env> | undefined;

/** The browser globals the in-page callbacks use (this project compiles without the DOM library). */
interface PageElement {
  tagName: string;
  textContent: string | null;
  getAttribute(name: string): string | null;
  closest(selector: string): PageElement | null;
}
interface PageGlobals {
  document: {
    cookie: string;
    activeElement: PageElement | null;
    documentElement: { scrollWidth: number };
    querySelector(selector: string): PageElement | null;
  };
  innerWidth: number;
}
/** In-page callbacks are serialised, so each casts globalThis itself rather than sharing a helper. */
type G = PageGlobals;

/** Starts everything once for the whole file; undefined when Chromium is missing (test skipped). */
function ready(t: TestContext): Promise<Env> | undefined {
  const chromium = requirePeer(t, 'chromium', 'chromium');
  if (!chromium) return undefined;
  env ??= setUp(chromium);
  return env;
}

async function setUp(chromium: string): Promise<Env> {
  await mkdir(ARTIFACTS, { recursive: true });
  const dir = await mkdtemp(join(tmpdir(), 'dayshift-ui-'));
  await writeFile(join(dir, 'admin.token'), `${TOKEN}\n`, { mode: 0o600 });
  const members: TestMember[] = [];
  for (const name of ['a1', 'a2', 'b1', 'b2']) members.push(await sessionMember(name));
  const member = (name: string) => ({ url: members.find((m) => m.name === name)!.url, route: name });
  const loaded = loadObject({
    listen: { http: '127.0.0.1:0' },
    admin: { listen: '127.0.0.1:0', token_file: join(dir, 'admin.token') },
    state_dir: join(dir, 'state'),
    clusters: {
      'prod-a': { members: [member('a1'), member('a2')], qa_url: 'http://prod-a.shop.example/' },
      'prod-b': { members: [member('b1'), member('b2')], qa_url: 'http://prod-b.shop.example/' },
    },
    health: { path: '/health', interval: '1s', timeout: '1s', rise: 1 },
    drain: { session_idle: '5m', deadline: '30m' },
    // A short release: the sticky users keep prod-a's sessions alive, so its drain ends at the deadline.
    release: {
      drain: { session_idle: '1s', deadline: '4s' },
      health: { timeout: '20s', stable: '500ms' },
      hooks: { deploy: 'echo deploying $DAYSHIFT_VERSION to $DAYSHIFT_CLUSTER' },
      approval: 'manual',
      clusters: { 'prod-b': { approval: 'auto' } },
    },
    sites: {
      public: {
        hosts: ['shop.example'],
        routes: [{ path: '/', clusters: ['prod-a', 'prod-b'], sticky: { mode: 'route', cookie: 'JSESSIONID' } }],
      },
      'qa-a': { hosts: ['prod-a.shop.example'], routes: [{ path: '/', clusters: ['prod-a'] }] },
      'qa-b': { hosts: ['prod-b.shop.example'], routes: [{ path: '/', clusters: ['prod-b'] }] },
    },
  });
  const dayshift = await startDayshift(loaded, pino({ level: 'silent' }));
  const stopLoad = startLoad(dayshift.proxy!.addresses().http[0]!.port);
  const browser = await launchChromium(chromium);
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (message) => {
    // The browser logs every 4xx answer (the wrong token, the refusals) as a failed load: those are expected.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource'))
      pageErrors.push(message.text());
  });
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${dayshift.adminUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${TOKEN}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: await res.json() };
  };
  return { dir, dayshift, members, browser, context, page, pageErrors, stopLoad, api };
}

/** A Tomcat-like member: GET /login without a session issues JSESSIONID=uN.<route>; it answers as echoName. */
function sessionMember(name: string): Promise<TestMember> {
  let next = 0;
  return startMember(name, (req, res, member) => {
    if (req.url === '/login' && !/JSESSIONID=/.test(req.headers.cookie ?? ''))
      res.setHeader('set-cookie', `JSESSIONID=u${next++}.${name}; Path=/`);
    echoName(req, res, member);
  });
}

/**
 * Bounded loopback load: eight sticky users (two per member, each logs in until its member issued it a
 * session, then keeps that JSESSIONID) and anonymous requests, one round every 100 ms, at most 3 minutes
 * or 20 000 requests.
 */
function startLoad(port: number): () => Promise<void> {
  let stopped = false;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  /** One request; resolves with the session cookie it was issued, if any. */
  const one = (path: string, cookie?: string) =>
    new Promise<string | undefined>((resolve) => {
      const req = http.get(
        { host: '127.0.0.1', port, path, agent, headers: { host: 'shop.example', ...(cookie ? { cookie } : {}) } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.headers['set-cookie']?.[0]?.split(';')[0]));
        },
      );
      req.on('error', () => resolve(undefined));
    });
  const wanted = ['a1', 'a2', 'b1', 'b2', 'a1', 'a2', 'b1', 'b2'];
  const sessions: (string | undefined)[] = wanted.map(() => undefined);
  const user = async (i: number): Promise<unknown> => {
    if (sessions[i] !== undefined) return one('/', sessions[i]);
    const issued = await one('/login');
    if (issued?.endsWith(`.${wanted[i]}`)) sessions[i] = issued;
    return undefined;
  };
  const done = (async () => {
    const until = Date.now() + 180_000;
    let sent = 0;
    while (!stopped && Date.now() < until && sent < 20_000) {
      const round: Promise<unknown>[] = wanted.map((_, i) => user(i));
      round.push(one('/'), one('/'));
      sent += round.length;
      await Promise.all([...round, new Promise((r) => setTimeout(r, 100))]);
    }
  })();
  return async () => {
    stopped = true;
    await done;
    agent.destroy();
  };
}

after(async () => {
  if (!env) return;
  const e = await env;
  await e.browser.close();
  await e.stopLoad();
  await e.dayshift.close(0);
  for (const m of e.members) await m.close();
  await rm(e.dir, { recursive: true, force: true });
});

/** Presses the dialog's confirming button and waits until the dialog is gone, i.e. the API has answered. */
async function confirmDialog(page: Page, button: string): Promise<void> {
  const dialog = page.getByRole('dialog');
  await dialog.getByRole('button', { name: button }).click();
  await dialog.waitFor({ state: 'detached' });
}

const cluster = (page: Page, name: string) => page.locator(`[data-cluster="${name}"]`);
const trafficBadge = (page: Page, name: string, state: string) =>
  cluster(page, name).locator('header .badge', { hasText: new RegExp(`^${state}$`) });

describe('dashboard in Chromium', () => {
  it('refuses a wrong token and signs in with the right one into an HttpOnly SameSite=Strict cookie', async (t) => {
    const e = await ready(t);
    if (!e) return;
    const { page } = e;
    await page.goto(`${e.dayshift.adminUrl}/`);
    await page.getByLabel('Admin token').fill('not-the-token-at-all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#signin-error', { hasText: 'Wrong admin token.' }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'signin-refused.png') });
    assert.equal((await e.context.cookies()).length, 0, 'no cookie after a wrong token');
    assert.equal(await page.locator('#app').isHidden(), true);

    await page.getByLabel('Admin token').fill(TOKEN);
    await page.keyboard.press('Enter');
    await cluster(page, 'prod-a').waitFor();
    const [session] = await e.context.cookies();
    assert.equal(session?.name, 'dayshift_session');
    assert.equal(session?.httpOnly, true);
    assert.equal(session?.sameSite, 'Strict');
    assert.equal(
      await page.evaluate(() => (globalThis as unknown as G).document.cookie),
      '',
      'the session cookie is invisible to scripts',
    );
    // Reloading keeps the session: the page comes back signed in with its CSRF token in the meta tag.
    await page.reload();
    await cluster(page, 'prod-b').waitFor();
    assert.match((await page.locator('meta[name="csrf-token"]').getAttribute('content')) ?? '', /^[A-Za-z0-9_-]{40,}$/);
  });

  it('shows sites, clusters and every member with live figures and charts', async (t) => {
    const e = await ready(t);
    if (!e) return;
    const { page } = e;
    await page.locator('tr[data-member]').nth(3).waitFor();
    assert.deepEqual(
      await page.locator('tr[data-member]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-member'))),
      ['prod-a/a1', 'prod-a/a2', 'prod-b/b1', 'prod-b/b2'],
    );
    for (const name of ['public', 'qa-a', 'qa-b']) await page.locator('.site h4', { hasText: name }).waitFor();
    assert.equal(await page.locator('section.workers').isHidden(), true, 'one process (workers: 1): no workers panel');
    // Health checks and the load show up within a few live updates.
    await page.locator('tr[data-member="prod-b/b2"] .badge', { hasText: /^up$/ }).waitFor();
    await page.waitForFunction(() => {
      const cell = (globalThis as unknown as G).document.querySelector(
        'tr[data-member="prod-a/a1"] td[data-label="Req/s"]',
      );
      return cell !== null && cell.textContent !== '–' && Number(cell.textContent) > 0;
    });
    await page.waitForFunction(() => {
      const cell = (globalThis as unknown as G).document.querySelector(
        'tr[data-member="prod-a/a1"] td[data-label="Sessions"]',
      );
      return cell !== null && Number(cell.textContent) >= 1;
    });
    await page.waitForFunction(() =>
      (
        (globalThis as unknown as G).document
          .querySelector('[data-cluster="prod-a"] .chart-requests .chart-line')
          ?.getAttribute('d') ?? ''
      ).includes('L'),
    );
    assert.match(
      (await cluster(page, 'prod-a').locator('.qa a').getAttribute('href')) ?? '',
      /^http:\/\/prod-a\.shop\.example/,
    );
  });

  it('drains a cluster after a confirmation that says who gets the traffic, and shows it draining', async (t) => {
    const e = await ready(t);
    if (!e) return;
    const { page } = e;
    await page.getByRole('button', { name: 'Drain cluster prod-a' }).click();
    const dialog = page.getByRole('dialog', { name: 'Drain prod-a' });
    await dialog.getByText('prod-b will receive all new sessions.').waitFor();
    // The live update may show the new state before the page has the API's answer: wait for both.
    await confirmDialog(page, 'Drain prod-a');
    await trafficBadge(page, 'prod-a', 'draining').waitFor();
    await cluster(page, 'prod-a')
      .locator('.drain', { hasText: /sessions? left/ })
      .waitFor();
    const status = (await e.api('GET', '/api/status')).body as { clusters: { name: string; traffic: string }[] };
    assert.equal(status.clusters.find((c) => c.name === 'prod-a')?.traffic, 'draining');
    await page.locator('#announcer', { hasText: 'prod-a' }).waitFor({ state: 'attached' });
    // Let the charts take in a few more seconds of load for the screenshot.
    await page.waitForFunction(
      () =>
        (
          (globalThis as unknown as G).document
            .querySelector('[data-cluster="prod-b"] .chart-requests .chart-line')
            ?.getAttribute('d') ?? ''
        ).split('L').length > 8,
    );
    await page.screenshot({ path: join(ARTIFACTS, 'overview-draining.png'), fullPage: true });
  });

  it('shows a refusal by the safety rules in the dialog and changes nothing', async (t) => {
    const e = await ready(t);
    if (!e) return;
    const { page } = e;
    const opener = page.getByRole('button', { name: 'Take out cluster prod-b' });
    await opener.focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Take prod-b out' });
    await dialog.getByText('No other cluster is live').waitFor();
    await dialog.getByRole('button', { name: 'Take prod-b out' }).click();
    await dialog
      .getByRole('alert')
      .filter({ hasText: /^Refused: / })
      .waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'refusal.png') });
    // Focus stays inside the modal dialog however far one tabs, and Escape returns it to the opener.
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as G).document.activeElement?.closest('dialog') !== null),
        true,
        `focus left the dialog after ${i + 1} Tab`,
      );
    }
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert.equal(
      await page.evaluate(() => (globalThis as unknown as G).document.activeElement?.getAttribute('aria-label')),
      'Take out cluster prod-b',
    );
    const status = (await e.api('GET', '/api/status')).body as { clusters: { name: string; traffic: string }[] };
    assert.equal(status.clusters.find((c) => c.name === 'prod-b')?.traffic, 'live');
  });

  it('changes member states and makes the drained cluster live again', async (t) => {
    const e = await ready(t);
    if (!e) return;
    const { page } = e;
    await page.getByRole('button', { name: 'Disable member prod-b/b2' }).click();
    await confirmDialog(page, 'Disable prod-b/b2');
    await page
      .locator('tr[data-member="prod-b/b2"] td[data-label="State"] .badge', { hasText: /^disabled$/ })
      .waitFor();
    await page.getByRole('button', { name: 'Enable member prod-b/b2' }).click();
    await confirmDialog(page, 'Enable prod-b/b2');
    await page.locator('tr[data-member="prod-b/b2"] td[data-label="State"] .badge', { hasText: /^ready$/ }).waitFor();

    await page.getByRole('button', { name: 'Make live cluster prod-a' }).click();
    await confirmDialog(page, 'Make prod-a live');
    await trafficBadge(page, 'prod-a', 'live').waitFor();
  });

  it('shows the shadow comparison of live and shadow answers, and stops it after a confirmation', async (t) => {
    const e = await ready(t);
    if (!e) return;
    const { page } = e;
    const actor = { who: 'test', from: 'local' };
    await e.dayshift.plane.setTraffic(actor, 'prod-a', 'out', { force: true });
    assert.equal((await e.api('POST', '/api/shadow', { cluster: 'prod-a', percent: 100, for: '10m' })).status, 200);
    const panel = page.getByRole('region', { name: 'Shadow traffic' });
    await panel.getByText(/^100% of GET, HEAD → prod-a · copying until /).waitFor();
    const answers = panel.getByRole('table', { name: 'Live and shadow answers to the same requests' });
    // The background users' requests, answered by prod-b and copied to prod-a.
    await page.waitForFunction(() => {
      const cell = (globalThis as unknown as G).document.querySelector('.shadow tbody tr:nth-child(2) td');
      return Number(cell?.textContent ?? '0') > 0;
    });
    assert.deepEqual(
      await answers.locator('tbody th').allTextContents(),
      ['live', 'shadow'],
      'one row per side, named',
    );
    await panel
      .getByRole('list', { name: 'Status classes per route, live → shadow' })
      .getByText(/^public \/: /)
      .waitFor();
    await panel.screenshot({ path: join(ARTIFACTS, 'shadow.png') });
    await panel.getByRole('button', { name: 'Stop shadow' }).click();
    await confirmDialog(page, 'Stop');
    await panel.getByText(/→ prod-a · ended /).waitFor();
    assert.equal(await panel.getByRole('button', { name: 'Stop shadow' }).isHidden(), true);
    await e.dayshift.plane.setTraffic(actor, 'prod-a', 'live');
    await trafficBadge(page, 'prod-a', 'live').waitFor();
  });

  it('puts a site in maintenance and pauses it, with the message and duration given in the dialog', async (t) => {
    const e = await ready(t);
    if (!e) return;
    const { page } = e;
    const site = page.locator('.site', { has: page.locator('h4', { hasText: /^qa-b$/ }) });
    await page.getByRole('button', { name: 'Start maintenance of site qa-b' }).click();
    const dialog = page.getByRole('dialog', { name: 'Maintenance for qa-b' });
    await dialog.getByLabel('Message shown to users').fill('Back at 14:00');
    await dialog.getByLabel('For how long (optional)').fill('30m');
    await confirmDialog(page, 'Start maintenance');
    await site.locator('.site-state', { hasText: /^Maintenance: “Back at 14:00” until / }).waitFor();
    const qaB = await request(e.dayshift.proxy!.addresses().http[0]!.port, { host: 'prod-b.shop.example' });
    assert.equal(qaB.status, 503);
    assert.match(qaB.body, /Back at 14:00/);
    await page.getByRole('button', { name: 'End maintenance of site qa-b' }).click();
    await confirmDialog(page, 'End maintenance');
    await site.locator('.site-state', { hasText: /^Serving$/ }).waitFor();

    await page.getByRole('button', { name: 'Pause site qa-b' }).click();
    const pause = page.getByRole('dialog', { name: 'Pause qa-b' });
    await pause.getByLabel('Hold for').fill('2m');
    await pause.getByLabel('When the time is up').selectOption('reject');
    await confirmDialog(page, 'Pause');
    await site.locator('.site-state', { hasText: /^Paused until .*, then reject$/ }).waitFor();
    await page.getByRole('button', { name: 'Resume site qa-b' }).click();
    await confirmDialog(page, 'Resume');
    await site.locator('.site-state', { hasText: /^Serving$/ }).waitFor();
  });

  it('sets a cluster weight with the keyboard alone', async (t) => {
    const e = await ready(t);
    if (!e) return;
    const { page } = e;
    await page.getByRole('button', { name: 'Set weight of cluster prod-b' }).focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Weight of prod-b' });
    await dialog.getByText('Now: prod-b 1, prod-a 1.').waitFor();
    // Focus starts in the field; typing and Enter confirm.
    assert.equal(
      await page.evaluate(() => (globalThis as unknown as G).document.activeElement?.getAttribute('name')),
      'weight',
    );
    await page.keyboard.press('Control+A');
    await page.keyboard.type('2');
    await page.keyboard.press('Enter');
    await dialog.waitFor({ state: 'detached' });
    await cluster(page, 'prod-b')
      .locator('.weight', { hasText: /^weight 2$/ })
      .waitFor();
    assert.equal((await e.api('POST', '/api/clusters/prod-b/weight', { weight: 1 })).status, 200);
    await cluster(page, 'prod-b')
      .locator('.weight', { hasText: /^weight 1$/ })
      .waitFor();
  });

  it('refuses a change made with the cookie but without the CSRF token; bearer calls need none', async (t) => {
    const e = await ready(t);
    if (!e) return;
    const { page } = e;
    const call = (withCsrf: boolean) =>
      page.evaluate(async (csrf) => {
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (csrf)
          headers['x-csrf-token'] =
            (globalThis as unknown as G).document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ??
            '';
        const res = await fetch('/api/clusters/prod-b/weight', {
          method: 'POST',
          headers,
          body: JSON.stringify({ weight: 3 }),
        });
        return { status: res.status, body: await res.text() };
      }, withCsrf);
    const refused = await call(false);
    assert.equal(refused.status, 403);
    assert.match(refused.body, /CSRF/);
    let status = (await e.api('GET', '/api/status')).body as { clusters: { name: string; weight: number }[] };
    assert.equal(status.clusters.find((c) => c.name === 'prod-b')?.weight, 1, 'the refused call changed nothing');
    assert.equal((await call(true)).status, 200);
    status = (await e.api('GET', '/api/status')).body as { clusters: { name: string; weight: number }[] };
    assert.equal(status.clusters.find((c) => c.name === 'prod-b')?.weight, 3);
    assert.equal((await e.api('POST', '/api/clusters/prod-b/weight', { weight: 1 })).status, 200);
    // Reading needs no CSRF token.
    assert.equal(await page.evaluate(async () => (await fetch('/api/status')).status), 200);
  });

  it('approves a release and aborts another from the release view', async (t) => {
    const e = await ready(t);
    if (!e) return;
    const { page } = e;
    await page.getByRole('link', { name: /^Release/ }).click();
    // Before any release (GET /api/release answers 404): the start form and an empty history.
    await page.getByRole('region', { name: 'Release history' }).getByText('No releases yet.').waitFor();
    assert.equal(await page.locator('.current-release').isHidden(), true);
    await page.getByRole('textbox', { name: 'Version' }).fill('2.0.0');
    await page.getByRole('button', { name: 'Start release…' }).click();
    await confirmDialog(page, 'Start release');
    const current = page.locator('.current-release');
    await current.locator('header .badge', { hasText: /^running$/ }).waitFor();
    await current.locator('li.step[data-step="prod-a:drain"][aria-current="step"]').waitFor();
    await current
      .locator('.drain', {
        hasText: /^Draining prod-a: \d+ sessions? left, \d+ in flight, oldest idle \d+s · deadline in /,
      })
      .waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'release-draining.png'), fullPage: true });
    await current.locator('header .badge', { hasText: /^awaiting-approval$/ }).waitFor();
    await current.locator('li.step[data-step="prod-a:approval"][aria-current="step"]').waitFor();
    assert.deepEqual(
      await current
        .locator('li.step[data-step^="prod-a:"] .badge')
        .allTextContents()
        .then((states) => states.slice(0, 3)),
      ['succeeded', 'succeeded', 'succeeded'],
    );
    await current.getByRole('link', { name: /prod-a \(http:\/\/prod-a\.shop\.example\/\)/ }).waitFor();
    await current.locator('li[data-step="prod-a:deploy"] summary').click();
    await current.getByText('deploying 2.0.0 to prod-a').waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'release-awaiting-approval.png'), fullPage: true });

    await current.getByRole('button', { name: 'Approve' }).click();
    await confirmDialog(page, 'Approve');
    await current.locator('header .badge', { hasText: /^succeeded$/ }).waitFor();
    await current
      .locator('li[data-step="prod-a:approval"] .detail', { hasText: 'approved by dashboard:admin' })
      .waitFor();

    await page.getByRole('textbox', { name: 'Version' }).fill('2.0.1');
    await page.getByRole('button', { name: 'Start release…' }).click();
    await confirmDialog(page, 'Start release');
    await current.locator('header .badge', { hasText: /^running$/ }).waitFor();
    await current.getByRole('button', { name: 'Abort' }).click();
    const abort = page.getByRole('dialog', { name: 'Abort release 2.0.1' });
    await abort
      .getByText('Traffic returns to the clusters that were live before it: prod-a (weight 1), prod-b (weight 1).')
      .waitFor();
    await confirmDialog(page, 'Abort');
    await current.locator('header .badge', { hasText: /^aborted$/ }).waitFor();
    await current
      .getByText(/aborted by dashboard:admin/)
      .first()
      .waitFor();

    const history = page.getByRole('region', { name: 'Release history' });
    await history
      .locator('tbody tr')
      .nth(0)
      .locator('.badge', { hasText: /^aborted$/ })
      .waitFor();
    assert.deepEqual(await history.locator('tbody tr th').allTextContents(), ['2.0.1', '2.0.0']);
    assert.deepEqual(await history.locator('tbody tr .badge').allTextContents(), ['aborted', 'succeeded']);
  });

  it('lists the changes made in the audit log, attributed to the dashboard', async (t) => {
    const e = await ready(t);
    if (!e) return;
    const { page } = e;
    await page.getByRole('link', { name: 'Audit log' }).click();
    // Switching views puts focus on the new view's heading.
    await page.waitForFunction(() => {
      const focused = (globalThis as unknown as G).document.activeElement;
      return focused?.tagName === 'H2' && focused.textContent === 'Audit log';
    });
    const rows = page.getByRole('region', { name: 'Audit log entries' }).locator('tbody tr');
    await rows.filter({ hasText: 'dashboard:admin' }).filter({ hasText: 'prod-a' }).first().waitFor();
    assert.ok((await rows.filter({ hasText: 'dashboard:admin' }).count()) >= 4);
  });

  it('reads well on a phone and in dark mode', async (t) => {
    const e = await ready(t);
    if (!e) return;
    for (const [name, options] of [
      ['phone-light', { viewport: { width: 390, height: 844 }, colorScheme: 'light', isMobile: true }],
      ['laptop-dark', { viewport: { width: 1280, height: 900 }, colorScheme: 'dark' }],
      ['phone-dark', { viewport: { width: 390, height: 844 }, colorScheme: 'dark', isMobile: true }],
    ] as const) {
      const context = await e.browser.newContext({ ...options, storageState: await e.context.storageState() });
      const page = await context.newPage();
      await page.goto(`${e.dayshift.adminUrl}/#overview`);
      await page.locator('tr[data-member="prod-b/b2"] .badge', { hasText: /^up$/ }).waitFor();
      await page.waitForFunction(() =>
        (
          (globalThis as unknown as G).document
            .querySelector('[data-cluster="prod-b"] .chart-requests .chart-line')
            ?.getAttribute('d') ?? ''
        ).includes('L'),
      );
      // Nothing may stick out sideways on a phone: the page scrolls only vertically.
      assert.equal(
        await page.evaluate(
          () =>
            (globalThis as unknown as G).document.documentElement.scrollWidth <=
            (globalThis as unknown as G).innerWidth,
        ),
        true,
        `${name}: horizontal overflow`,
      );
      await page.screenshot({ path: join(ARTIFACTS, `overview-${name}.png`), fullPage: true });
      await page.getByRole('link', { name: /^Release/ }).click();
      await page.locator('.current-release header .badge').waitFor();
      assert.equal(
        await page.evaluate(
          () =>
            (globalThis as unknown as G).document.documentElement.scrollWidth <=
            (globalThis as unknown as G).innerWidth,
        ),
        true,
        `${name}: release view overflows`,
      );
      await page.screenshot({ path: join(ARTIFACTS, `release-${name}.png`), fullPage: true });
      await context.close();
    }
  });

  it('signs out: the cookie no longer works', async (t) => {
    const e = await ready(t);
    if (!e) return;
    const { page } = e;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin token').waitFor();
    assert.equal(await page.evaluate(async () => (await fetch('/api/status')).status), 401);
    await page.reload();
    await page.getByLabel('Admin token').waitFor();
    assert.deepEqual(e.pageErrors, [], 'no script errors in the page during the whole session');
  });
});
