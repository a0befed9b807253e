// Previews through the admin API and the CLI, on a real Dayshift in front of loopback members: the link
// pins the client to an out cluster on the public site, the allow list, revocation, the audit log, and
// what the proxy answers for tokens that are forged, revoked or not for this client.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { PreviewLink, PreviewReport } from '../../src/control/previews.js';
import type { AuditEntry } from '../../src/control/audit.js';
import { runCli } from '../support/cli.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';
import { startMember, type TestMember } from '../support/members.js';
import { request } from '../support/proxy.js';

/** A member whose pages say who it is, as HTML (so a preview banner can go in), and which accepts WebSocket upgrades. */
async function page(name: string): Promise<TestMember> {
  const member = await startMember(name, (req: http.IncomingMessage, res: http.ServerResponse) => {
    req.resume();
    const body = `<!doctype html><html><body><p>member ${name}</p></body></html>`;
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'public, max-age=600',
    });
    res.end(body);
  });
  member.server.on('upgrade', (_req, socket: net.Socket) =>
    socket.end(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Member: ${name}\r\n\r\n`,
    ),
  );
  return member;
}

/** Opens a WebSocket upgrade through the proxy; resolves with the member that answered it. */
function upgradeMember(port: number, cookie: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () =>
      socket.write(
        `GET /ws HTTP/1.1\r\nHost: www.example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nCookie: ${cookie}\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.destroy();
      resolve(/^x-member: (\S+)/im.exec(head)?.[1] ?? head);
    });
    socket.on('error', reject);
  });
}

/** The link's path and query on the proxy (the link names the public host, which the tests send as Host). */
const linkPath = (url: string) => {
  const u = new URL(url);
  return u.pathname + u.search;
};
const cookieOf = (setCookie: string | string[] | undefined) => String([setCookie].flat()[0] ?? '').split(';')[0]!;

describe('previews through the admin API and the CLI', () => {
  let members: TestMember[] = [];
  let ds: TestDayshift;
  const cli = (...args: string[]) => runCli([...args, '--admin', ds.adminUrl, '--token', ds.token]);
  const get = (path: string, cookie?: string) =>
    request(ds.port, { host: 'www.example.test', path, ...(cookie ? { headers: { cookie } } : {}) });

  before(async () => {
    members = [await page('a1'), await page('b1')];
    ds = await startTestDayshift({
      clusters: {
        'prod-a': { members: [{ url: members[0]!.url, route: 'a1' }], traffic: 'out' },
        'prod-b': { members: [{ url: members[1]!.url, route: 'b1' }] },
      },
      health: { enabled: false },
      cookie_secret: 'preview-test-secret-0123456789',
      sites: {
        public: { hosts: ['www.example.test'], routes: [{ path: '/', clusters: ['prod-a', 'prod-b'] }] },
        internal: { hosts: ['qa.example.test'], allow: ['10.9.0.0/16'], routes: [{ path: '/', clusters: ['prod-a'] }] },
      },
    });
  });
  after(async () => {
    await ds?.stop();
    await Promise.all(members.map((m) => m.close()));
  });

  test('a link from the API pins the client to the out cluster, with the banner, until "end preview"', async () => {
    const created = await ds.api<PreviewLink>('POST', '/api/previews', {
      cluster: 'prod-a',
      for: '10m',
      version: '2.0',
    });
    assert.equal(created.status, 200);
    const link = created.body;
    assert.match(link.url, new RegExp(`^http://www\\.example\\.test:${ds.port}/\\.dayshift/preview\\?token=`));
    assert.equal(link.site, 'public');

    assert.match((await get('/')).body, /member b1/, 'the public gets prod-b');
    const opened = await get(linkPath(link.url));
    assert.equal(opened.status, 303);
    assert.equal(opened.headers.location, '/');
    const setCookie = String([opened.headers['set-cookie']].flat()[0]);
    assert.match(setCookie, /^DAYSHIFT_PREVIEW=[^;]+; Path=\/; Max-Age=(\d+); HttpOnly; SameSite=Lax$/);
    const maxAge = Number(/Max-Age=(\d+)/.exec(setCookie)![1]);
    assert.ok(maxAge > 590 && maxAge <= 600, `the cookie expires with the preview (Max-Age ${maxAge})`);

    const cookie = cookieOf(opened.headers['set-cookie']);
    const pinned = await get('/', cookie);
    assert.match(pinned.body, /member a1/, 'the pinned client gets prod-a although it is out');
    assert.equal(pinned.headers['dayshift-preview'], 'prod-a');
    assert.equal(pinned.headers['cache-control'], 'private, no-cache', 'no shared cache keeps a pinned answer');
    assert.match(
      pinned.body,
      /<body><div role="status"[^>]*>Preview of prod-a, version 2\.0 · <a href="\/\.dayshift\/preview\/end"[^>]*>end preview<\/a><\/div><p>member a1/,
    );
    assert.equal(
      Number(pinned.headers['content-length']),
      Buffer.byteLength(pinned.body),
      'content-length counts the banner',
    );
    const other = await get('/', 'other=1');
    assert.match(other.body, /member b1/, 'other clients still get prod-b');
    assert.equal(other.headers['cache-control'], 'public, max-age=600', "the member's caching stands for the public");

    const ended = await get('/.dayshift/preview/end', cookie);
    assert.equal(ended.status, 303);
    assert.match(
      String([ended.headers['set-cookie']].flat()[0]),
      /^DAYSHIFT_PREVIEW=; Path=\/; Max-Age=0; HttpOnly; SameSite=Lax$/,
    );
    await ds.api('DELETE', `/api/previews/${link.id}`);
  });

  test('the proxy refuses forged, revoked and foreign links, and ignores such cookies', async () => {
    const link = (await ds.api<PreviewLink>('POST', '/api/previews', { cluster: 'prod-a' })).body;
    const token = new URL(link.url).searchParams.get('token')!;
    const forged = `${token.slice(0, -3)}${token.endsWith('AAA') ? 'BBB' : 'AAA'}`;
    assert.equal((await get(`/.dayshift/preview?token=${encodeURIComponent(forged)}`)).status, 400);
    assert.match((await get('/', `DAYSHIFT_PREVIEW=${forged}`)).body, /member b1/, 'a forged cookie pins nothing');
    assert.equal((await get('/.dayshift/preview')).status, 400, 'a link without a token');

    assert.equal((await ds.api('DELETE', `/api/previews/${link.id}`)).status, 200);
    const revoked = await get(linkPath(link.url));
    assert.equal(revoked.status, 410);
    assert.match(revoked.body, /ended or was revoked/);
    assert.match((await get('/', `DAYSHIFT_PREVIEW=${token}`)).body, /member b1/, 'a revoked preview pins nothing');
    assert.equal((await ds.api('DELETE', `/api/previews/${link.id}`)).status, 404, 'revoking twice');

    // Limited to the internal site's allow list, which loopback is not in.
    const limited = (
      await ds.api<PreviewLink>('POST', '/api/previews', { cluster: 'prod-a', allow: ['site:internal'] })
    ).body;
    assert.deepEqual(limited.allow, ['10.9.0.0/16']);
    assert.equal((await get(linkPath(limited.url))).status, 403);
    assert.match(
      (await get('/', `DAYSHIFT_PREVIEW=${new URL(limited.url).searchParams.get('token')}`)).body,
      /member b1/,
    );
    const open = (await ds.api<PreviewLink>('POST', '/api/previews', { cluster: 'prod-a', allow: ['127.0.0.0/8'] }))
      .body;
    assert.equal((await get(linkPath(open.url))).status, 303);
    await ds.api('DELETE', `/api/previews/${limited.id}`);
    await ds.api('DELETE', `/api/previews/${open.id}`);
  });

  test('a WebSocket upgrade with the preview cookie goes to the previewed cluster too', async () => {
    const link = (await ds.api<PreviewLink>('POST', '/api/previews', { cluster: 'prod-a' })).body;
    assert.equal(await upgradeMember(ds.port, `DAYSHIFT_PREVIEW=${link.token}`), 'a1');
    assert.equal(await upgradeMember(ds.port, 'other=1'), 'b1');
    await ds.api('DELETE', `/api/previews/${link.id}`);
  });

  test('paths under /.dayshift/ other than the preview ones go to the members', async () => {
    assert.match((await get('/.dayshift/previewer')).body, /member b1/);
    assert.match((await get('/.dayshift/other')).body, /member b1/);
  });

  test('the API refuses what the config cannot serve', async () => {
    const unknown = await ds.api<{ error: string }>('POST', '/api/previews', { cluster: 'prod-z' });
    assert.equal(unknown.status, 422);
    assert.match(unknown.body.error, /unknown cluster "prod-z"/);
    const noShared = await ds.api<{ error: string }>('POST', '/api/previews', { cluster: 'prod-a', site: 'internal' });
    assert.equal(noShared.status, 422);
    assert.match(noShared.body.error, /site internal has no shared route over prod-a/);
    assert.equal((await ds.api('POST', '/api/previews', { cluster: 'prod-a', for: '30d' })).status, 422);
    assert.equal(
      (await ds.api('POST', '/api/previews', { cluster: 'prod-a', allow: ['site:public'] })).status,
      422,
      'a site without an allow list',
    );
    assert.equal(
      (await ds.api('POST', '/api/previews', { cluster: 'prod-a', allow: ['abc'] })).status,
      400,
      'not an address',
    );
    assert.equal(
      (await ds.api('POST', '/api/previews', { cluster: 'prod-a', allow: ['10.0.0.0/33'] })).status,
      400,
      'not a CIDR block',
    );
    assert.match((await get('/')).body, /member b1/, 'the proxy still serves');
  });

  test('dayshift preview prints a link, lists it, revokes it, and the audit log has it all', async () => {
    const made = await cli('preview', 'prod-a', '--for', '2h', '--version', '2.0');
    assert.equal(made.code, 0, made.stderr);
    const [url, about, revokeHint] = made.stdout.trim().split('\n');
    assert.match(url!, /^http:\/\/www\.example\.test:\d+\/\.dayshift\/preview\?token=/);
    assert.match(about!, /preview (\S+) of prod-a \(version 2\.0\) on site public, until /);
    const id = /--revoke (\S+)/.exec(revokeHint!)![1]!;
    assert.equal((await get(linkPath(url!))).status, 303);

    const listed = await cli('preview', '--list', '--json');
    assert.equal(listed.code, 0, listed.stderr);
    const previews = JSON.parse(listed.stdout) as PreviewReport[];
    const mine = previews.find((p) => p.id === id)!;
    assert.equal(mine.cluster, 'prod-a');
    assert.equal(mine.who, 'token:admin');
    const hours = (Date.parse(mine.until) - Date.parse(mine.created)) / 3600_000;
    assert.ok(hours > 1.99 && hours <= 2.01, `--for 2h (${hours}h)`);
    assert.match((await cli('preview', '--list')).stdout, new RegExp(`${id}\\s+prod-a\\s+public`));

    const status = await cli('status');
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`preview ${id} of prod-a on public until ${mine.until}, by token:admin`));
    assert.ok(!status.stdout.includes(new URL(url!).searchParams.get('token')!), 'status shows no token');

    const revoked = await cli('preview', '--revoke', id);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal((await get(linkPath(url!))).status, 410);
    assert.equal((await cli('preview', '--revoke', id)).code, 2, 'an unknown id is a usage error');
    assert.equal((await cli('preview', 'prod-a', '--for', 'soon')).code, 2);
    assert.equal((await cli('preview')).code, 2, 'nothing to do');

    const audit = (await ds.api<AuditEntry[]>('GET', '/api/audit?limit=50')).body;
    const opened = audit.find((e) => e.action === 'preview' && e.detail?.id === id);
    assert.ok(opened, 'the preview is audited');
    assert.equal(opened.target, 'prod-a');
    assert.equal(opened.detail!.until, mine.until);
    assert.ok(
      audit.some((e) => e.action === 'preview revoke' && e.detail?.id === id),
      'the revocation is audited',
    );
  });
});
