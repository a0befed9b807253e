// Session stickiness, as tables: reading a session id from a Cookie header or a path parameter, the member
// route named by its suffix, and the proxy's own signed cookie.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stickySchema } from '../../src/config/schema.js';
import {
  cookieValue,
  pathParam,
  routeSession,
  stickyCookie,
  StickySigner,
  type BoundSession,
} from '../../src/balance/sticky.js';

describe('sticky: a cookie in the Cookie header', () => {
  const cases: { name: string; header: string | undefined; value: string | undefined }[] = [
    { name: 'the only cookie', header: 'JSESSIONID=abc.a1', value: 'abc.a1' },
    { name: 'after another cookie', header: 'theme=dark; JSESSIONID=abc.a1', value: 'abc.a1' },
    { name: 'before another cookie', header: 'JSESSIONID=abc.a1; theme=dark', value: 'abc.a1' },
    { name: 'without a space after ";"', header: 'theme=dark;JSESSIONID=abc.a1', value: 'abc.a1' },
    { name: 'spaces around the value are trimmed', header: 'JSESSIONID= abc.a1 ; theme=dark', value: 'abc.a1' },
    { name: 'not a cookie whose name ends with it', header: 'XJSESSIONID=evil.b1; JSESSIONID=abc.a1', value: 'abc.a1' },
    { name: 'not a cookie whose name starts with it', header: 'JSESSIONID2=evil.b1', value: undefined },
    { name: 'not a value that contains it', header: 'note=JSESSIONID=evil.b1', value: undefined },
    { name: 'absent', header: 'theme=dark', value: undefined },
    { name: 'no Cookie header', header: undefined, value: undefined },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(cookieValue(c.header, 'JSESSIONID'), c.value));
  }
});

describe('sticky: a path parameter', () => {
  const cases: { name: string; path: string; value: string | undefined }[] = [
    { name: 'at the end of the path', path: '/app/cart;jsessionid=abc.a1', value: 'abc.a1' },
    { name: 'before the query', path: '/app/cart;jsessionid=abc.a1?item=3', value: 'abc.a1' },
    { name: 'before another parameter', path: '/app/cart;jsessionid=abc.a1;v=2', value: 'abc.a1' },
    { name: 'before another segment', path: '/app;jsessionid=abc.a1/cart', value: 'abc.a1' },
    { name: 'not in the query', path: '/app/cart?jsessionid=abc.a1', value: undefined },
    { name: 'absent', path: '/app/cart', value: undefined },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(pathParam(c.path, 'jsessionid'), c.value));
  }
});

describe('sticky: route mode, the member a request names', () => {
  const route = stickySchema.parse({ mode: 'route' });
  const named = stickySchema.parse({ mode: 'route', cookie: 'SID' });
  const param = stickySchema.parse({ mode: 'route', path_param: 'sess' });
  const cases: {
    name: string;
    sticky?: typeof route;
    cookie?: string;
    path?: string;
    bound: BoundSession | undefined;
  }[] = [
    {
      name: 'the route after the last dot of the session cookie',
      cookie: 'JSESSIONID=abc.a1',
      bound: { target: 'a1', session: 'abc.a1' },
    },
    {
      name: 'a session id with dots of its own',
      cookie: 'JSESSIONID=abc.def.a1',
      bound: { target: 'a1', session: 'abc.def.a1' },
    },
    {
      name: 'the path parameter when there is no cookie',
      path: '/x;jsessionid=abc.a2',
      bound: { target: 'a2', session: 'abc.a2' },
    },
    {
      name: 'the cookie before the path parameter',
      cookie: 'JSESSIONID=abc.a1',
      path: '/x;jsessionid=abc.a2',
      bound: { target: 'a1', session: 'abc.a1' },
    },
    { name: 'no route in a session id without a dot', cookie: 'JSESSIONID=abc', bound: undefined },
    { name: 'no route in a session id ending in a dot', cookie: 'JSESSIONID=abc.', bound: undefined },
    { name: 'no session', bound: undefined },
    {
      name: 'a configured cookie name',
      sticky: named,
      cookie: 'JSESSIONID=abc.a1; SID=xyz.b1',
      bound: { target: 'b1', session: 'xyz.b1' },
    },
    {
      name: 'the path parameter named after the configured cookie, in lower case',
      sticky: named,
      path: '/x;sid=xyz.b1',
      bound: { target: 'b1', session: 'xyz.b1' },
    },
    {
      name: 'a configured path parameter',
      sticky: param,
      path: '/x;jsessionid=abc.a1;sess=xyz.b1',
      bound: { target: 'b1', session: 'xyz.b1' },
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(routeSession(c.sticky ?? route, c.cookie, c.path ?? '/'), c.bound));
  }
});

describe('sticky: cookie mode, the signed cookie', () => {
  const signer = new StickySigner('secret-one');
  const good = signer.issue('a/a1', 'S1');
  const [member, session, mac] = good.split('.') as [string, string, string];
  const cases: { name: string; value: string | undefined; bound: BoundSession | undefined }[] = [
    { name: 'a cookie it issued names the member and session', value: good, bound: { target: 'a/a1', session: 'S1' } },
    {
      name: 'another member with the same signature is refused',
      value: `${Buffer.from('b/b1').toString('base64url')}.${session}.${mac}`,
      bound: undefined,
    },
    { name: 'another session with the same signature is refused', value: `${member}.S2.${mac}`, bound: undefined },
    {
      name: 'a cookie signed with another secret is refused',
      value: new StickySigner('secret-two').issue('a/a1', 'S1'),
      bound: undefined,
    },
    { name: 'a cut signature is refused', value: good.slice(0, -1), bound: undefined },
    { name: 'a value without a signature is refused', value: 'garbage', bound: undefined },
    { name: 'no cookie', value: undefined, bound: undefined },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(signer.verify(c.value), c.bound));
  }

  it('gives each new session its own id', () =>
    assert.notEqual(signer.verify(signer.issue('a/a1'))!.session, signer.verify(signer.issue('a/a1'))!.session));
});

describe('sticky: the Set-Cookie header of cookie mode', () => {
  const cases: { name: string; sticky: Record<string, unknown>; https: boolean; header: string }[] = [
    { name: 'defaults on http', sticky: {}, https: false, header: 'DAYSHIFT_STICKY=v; Path=/; HttpOnly; SameSite=Lax' },
    {
      name: 'Secure follows an https request',
      sticky: {},
      https: true,
      header: 'DAYSHIFT_STICKY=v; Path=/; Secure; HttpOnly; SameSite=Lax',
    },
    {
      name: 'secure: false wins over https',
      sticky: { secure: false },
      https: true,
      header: 'DAYSHIFT_STICKY=v; Path=/; HttpOnly; SameSite=Lax',
    },
    {
      name: 'secure: true wins over http',
      sticky: { secure: true },
      https: false,
      header: 'DAYSHIFT_STICKY=v; Path=/; Secure; HttpOnly; SameSite=Lax',
    },
    {
      name: 'max_age in seconds',
      sticky: { max_age: '1h' },
      https: false,
      header: 'DAYSHIFT_STICKY=v; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax',
    },
    {
      name: 'a configured name, without HttpOnly, SameSite Strict',
      sticky: { cookie: 'LB', http_only: false, same_site: 'Strict' },
      https: false,
      header: 'LB=v; Path=/; SameSite=Strict',
    },
  ];
  for (const c of cases) {
    it(c.name, () =>
      assert.equal(stickyCookie(stickySchema.parse({ mode: 'cookie', ...c.sticky }), 'v', c.https), c.header),
    );
  }
});
