// A preview end to end in a real headless Chromium: the dashboard's button makes the link, the browser
// opens it on the public host name, gets the cookie, sees the out cluster with its banner while the
// public gets the live one, and goes back to public routing by "end preview", by expiry and by revocation.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, it, type TestContext } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { PreviewLink } from '../../src/control/previews.js';
import { launchChromium } from '../support/chromium.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';
import { startMember, type TestMember } from '../support/members.js';
import { requirePeer } from '../support/peers.js';
import { waitFor } from '../support/process.js';

const HOST = 'www.example.test';

interface Env {
  ds: TestDayshift;
  members: TestMember[];
  browser: Browser;
}

let env: Promise<Env> | undefined;

function ready(t: TestContext): Promise<Env> | undefined {
  const chromium = requirePeer(t, 'chromium', 'chromium');
  if (!chromium) return undefined;
  env ??= setUp(chromium);
  return env;
}

/** A member whose HTML page names it. */
function page(name: string): Promise<TestMember> {
  return startMember(name, (req: http.IncomingMessage, res: http.ServerResponse) => {
    req.resume();
    const body = `<!doctype html><html><head><title>${name}</title></head><body><h1 id="member">${name}</h1></body></html>`;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

async function setUp(chromium: string): Promise<Env> {
  const members = [await page('a1'), await page('b1')];
  const ds = await startTestDayshift({
    clusters: {
      'prod-a': { members: [{ url: members[0]!.url, route: 'a1' }], traffic: 'out' },
      'prod-b': { members: [{ url: members[1]!.url, route: 'b1' }] },
    },
    health: { enabled: false },
    cookie_secret: 'preview-chromium-secret-0123456789',
    // The proxy's own sticky cookie: the browser is first bound to prod-b, and the pin must win over it.
    sites: {
      public: { hosts: [HOST], routes: [{ path: '/', clusters: ['prod-a', 'prod-b'], sticky: { mode: 'cookie' } }] },
    },
  });
  const browser = await launchChromium(chromium, [`--host-resolver-rules=MAP ${HOST} 127.0.0.1`]);
  return { ds, members, browser };
}

after(async () => {
  if (!env) return;
  const e = await env;
  await e.browser.close();
  await e.ds.stop();
  await Promise.all(e.members.map((m) => m.close()));
});

const memberShown = (p: Page) => p.locator('#member').textContent();
const banner = (p: Page) => p.getByRole('status');

/** A fresh browser profile on the public site, bound to prod-b like any visitor. */
async function visitor(e: Env): Promise<{ context: BrowserContext; page: Page; home: string }> {
  const context = await e.browser.newContext();
  const p = await context.newPage();
  p.setDefaultTimeout(20_000);
  const home = `http://${HOST}:${e.ds.port}/`;
  await p.goto(home);
  assert.equal(await memberShown(p), 'b1', 'the public gets prod-b');
  return { context, page: p, home };
}

async function previewCookie(context: BrowserContext) {
  return (await context.cookies()).find((c) => c.name === 'DAYSHIFT_PREVIEW');
}

/** Reloads until the page comes from `member` (the state change reaches the proxy asynchronously). */
async function reloadUntil(p: Page, member: string, what: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(
    what,
    async () => {
      await p.reload();
      return (await memberShown(p)) === member ? true : undefined;
    },
    timeoutMs,
    200,
  );
}

/** The dashboard, signed in, in its own browser profile. */
async function dashboard(e: Env): Promise<Page> {
  const admin = await (await e.browser.newContext()).newPage();
  admin.setDefaultTimeout(20_000);
  await admin.goto(`${e.ds.adminUrl}/`);
  await admin.getByLabel('Admin token').fill(e.ds.token);
  await admin.keyboard.press('Enter');
  await admin.locator('[data-cluster="prod-a"]').waitFor();
  return admin;
}

describe('a preview in Chromium', () => {
  it('the dashboard makes the link; opening it pins the browser to the out cluster with a banner; "end preview" ends it', async (t) => {
    const e = await ready(t);
    if (!e) return;
    // The dashboard's button.
    const admin = await dashboard(e);
    await admin.getByRole('button', { name: 'Preview cluster prod-a' }).click();
    const dialog = admin.getByRole('dialog');
    await dialog.getByLabel('Lasts').fill('1h');
    await dialog.getByRole('button', { name: 'Make link' }).click();
    await dialog.waitFor({ state: 'detached' });
    const url = await admin.locator('[data-cluster="prod-a"] .preview-link a').getAttribute('href');
    assert.match(
      url ?? '',
      new RegExp(`^http://${HOST.replaceAll('.', '\\.')}:${e.ds.port}/\\.dayshift/preview\\?token=`),
    );
    await admin.context().close();

    const { context, page: p, home } = await visitor(e);
    const response = await p.goto(url!);
    assert.equal(p.url(), home, 'the link leads to the home page');
    assert.equal(response?.status(), 200);
    assert.equal(await memberShown(p), 'a1', 'the pinned browser gets prod-a although it is out');
    assert.equal(
      (await banner(p).textContent())?.trim(),
      'Preview of prod-a · end preview',
      'no release deployed it: no version',
    );
    const cookie = await previewCookie(context);
    assert.ok(cookie, 'the preview cookie is set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');
    assert.equal(cookie.secure, false, 'plain http: no Secure attribute');
    const hoursLeft = (cookie.expires * 1000 - Date.now()) / 3600_000;
    assert.ok(hoursLeft > 0.95 && hoursLeft <= 1, `the cookie expires with the preview (${hoursLeft.toFixed(3)} h)`);
    for (let i = 0; i < 3; i++) {
      await p.reload();
      assert.equal(await memberShown(p), 'a1', 'every page comes from prod-a');
    }

    // Another browser meanwhile: the public still gets prod-b, without a banner.
    const other = await visitor(e);
    assert.equal(await banner(other.page).count(), 0);
    await other.context.close();

    await p.getByRole('link', { name: 'end preview' }).click();
    await p.waitForURL(home);
    assert.equal(await memberShown(p), 'b1', 'after "end preview" the browser is back on public routing');
    assert.equal(await banner(p).count(), 0);
    assert.equal(await previewCookie(context), undefined, 'the cookie is cleared');
    await context.close();
  });

  it('a short preview ends by itself: the browser is back on public routing once it expires', async (t) => {
    const e = await ready(t);
    if (!e) return;
    const link = (
      await e.ds.api<PreviewLink>('POST', '/api/previews', { cluster: 'prod-a', for: '4s', version: '2.0' })
    ).body;
    const { context, page: p } = await visitor(e);
    await p.goto(link.url);
    assert.equal(await memberShown(p), 'a1');
    assert.equal((await banner(p).textContent())?.trim(), 'Preview of prod-a, version 2.0 · end preview');
    await reloadUntil(p, 'b1', 'the preview to expire');
    assert.ok(Date.now() >= Date.parse(link.until) - 1000, 'not before its expiry');
    assert.equal(await banner(p).count(), 0);
    // The link itself is spent too, once its expiry has passed on the proxy's clock as well.
    await waitFor('the expiry time', async () => (Date.now() > Date.parse(link.until) ? true : undefined), 5000);
    const again = await p.goto(link.url);
    assert.equal(again?.status(), 410);
    await context.close();
  });

  it('a preview revoked on the dashboard ends at the next page', async (t) => {
    const e = await ready(t);
    if (!e) return;
    const link = (await e.ds.api<PreviewLink>('POST', '/api/previews', { cluster: 'prod-a', for: '1h' })).body;
    const { context, page: p } = await visitor(e);
    await p.goto(link.url);
    assert.equal(await memberShown(p), 'a1');

    const admin = await dashboard(e);
    await admin.getByRole('button', { name: `Revoke preview ${link.id}` }).click();
    const dialog = admin.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Revoke' }).click();
    await dialog.waitFor({ state: 'detached' });
    await admin.getByRole('button', { name: `Revoke preview ${link.id}` }).waitFor({ state: 'detached' });
    await admin.context().close();
    await p.reload();
    assert.equal(await memberShown(p), 'b1', 'revoked: public routing at once');
    assert.equal(await banner(p).count(), 0);
    await context.close();
  });
});
