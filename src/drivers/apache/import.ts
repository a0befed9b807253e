// `dayshift import apache`: turns an Apache httpd configuration (the origin document's mod_proxy_balancer
// setup and the usual variations) into a Dayshift configuration. VirtualHosts become sites, balancers
// become clusters, and a balancer whose members are exactly those of several other balancers (the
// origin's public web-prod = web-prod-a + web-prod-b) becomes one route over those clusters instead of a
// third cluster of the same servers. Every directive that is not translated is reported with file:line.
import { isIP } from 'node:net';
import { Document, isMap, isScalar, isSeq, visit } from 'yaml';
import { parseApacheConf, type Directive, type ParseOptions } from './conf-parser.js';

export type NoteKind =
  /** Has a meaning Dayshift cannot express here; review it. */
  | 'untranslated'
  /** Translated to the nearest Dayshift equivalent; check the result. */
  | 'approximated'
  /** Has no meaning for Dayshift (modules, logs, file serving...). */
  | 'skipped';

export interface ImportNote {
  file: string;
  line: number;
  directive: string;
  kind: NoteKind;
  reason: string;
}

export interface ImportResult {
  /** The configuration, ready to be written as YAML (validate it with configSchema). */
  config: Record<string, unknown>;
  yaml: string;
  notes: ImportNote[];
}

interface Member {
  url: string;
  key: string;
  route?: string;
  weight: number;
  state?: 'disabled' | 'standby' | 'draining';
  secret?: string;
  health?: Record<string, unknown>;
  at: Directive;
}

interface Access {
  allow: string[];
  deny: string[];
  allowAll: boolean;
  denyAll?: Directive;
}

interface Balancer {
  name: string;
  members: Member[];
  lbmethod?: string;
  sticky?: { cookie: string; param?: string };
  nofailover?: boolean;
  access: Access;
  at: Directive;
  /** For ProxyPass straight to a server, not a balancer. */
  implicit?: boolean;
}

interface Pass {
  path: string;
  /** The ProxyPass target as written. */
  target: string;
  /** balancer name */
  balancer: string;
  targetPath: string;
  at: Directive;
}

interface Vhost {
  addresses: string[];
  serverName?: string;
  aliases: string[];
  passes: Pass[];
  preserveHost: boolean;
  ssl: boolean;
  cert?: string;
  key?: string;
  tlsVerify: boolean;
  access: Access;
  cookieDomain: Record<string, string>;
  cookiePath: Record<string, string>;
  at: Directive;
}

/** Directives with no meaning for a reverse proxy's configuration. */
const SKIPPED = new Set(
  [
    'LoadModule',
    'LoadFile',
    'ServerRoot',
    'User',
    'Group',
    'PidFile',
    'ErrorLog',
    'CustomLog',
    'TransferLog',
    'LogFormat',
    'LogLevel',
    'DocumentRoot',
    'ServerAdmin',
    'Mutex',
    'DefaultRuntimeDir',
    'TypesConfig',
    'AddType',
    'AddDefaultCharset',
    'AddEncoding',
    'AddHandler',
    'AddLanguage',
    'AddCharset',
    'DirectoryIndex',
    'AccessFileName',
    'HostnameLookups',
    'ServerTokens',
    'ServerSignature',
    'TraceEnable',
    'UseCanonicalName',
    'NameVirtualHost',
    'StartServers',
    'MinSpareServers',
    'MaxSpareServers',
    'MinSpareThreads',
    'MaxSpareThreads',
    'ThreadLimit',
    'ThreadsPerChild',
    'MaxRequestWorkers',
    'MaxClients',
    'MaxConnectionsPerChild',
    'MaxRequestsPerChild',
    'ServerLimit',
    'EnableSendfile',
    'EnableMMAP',
    'Options',
    'AllowOverride',
    'BalancerPersist',
    'BalancerGrowth',
    'BalancerInherit',
    'ProxyStatus',
    'SSLRandomSeed',
    'SSLSessionCache',
    'SSLSessionCacheTimeout',
    'SSLPassPhraseDialog',
    'SSLMutex',
    'SSLStaplingCache',
    'ExtendedStatus',
    'ServerName',
    'Timeout',
    'KeepAlive',
    'MaxKeepAliveRequests',
    'KeepAliveTimeout',
    'ProxyVia',
    'Define',
    'UnDefine',
  ].map((d) => d.toLowerCase()),
);

const SKIP_REASON: Record<string, string> = {
  balancerpersist: "Dayshift's store keeps runtime state across restarts",
  define: 'its ${NAME} uses were substituted while reading the files',
  undefine: 'its ${NAME} uses were substituted while reading the files',
  servername: 'the main server name; sites take their names from VirtualHost ServerName',
  timeout: 'client timeouts are set under timeouts: in Dayshift',
  keepalive: 'client keep-alive is timeouts.client_keepalive in Dayshift',
  keepalivetimeout: 'client keep-alive is timeouts.client_keepalive in Dayshift',
};

const LBMETHOD: Record<string, string> = { byrequests: 'round-robin', bybusyness: 'least-busy' };

class Importer {
  readonly notes: ImportNote[] = [];
  readonly balancers = new Map<string, Balancer>();
  readonly vhosts: Vhost[] = [];
  readonly listens: { address: string; https: boolean; at: Directive }[] = [];
  readonly globalAccess: Access = emptyAccess();
  proxyTimeout?: number;
  private main?: Vhost;

  note(at: Directive, kind: NoteKind, reason: string): void {
    const text = at.children
      ? `<${at.name}${at.args.length ? ' ' + at.args.join(' ') : ''}>`
      : [at.name, ...at.args].join(' ');
    this.notes.push({ file: at.file, line: at.line, directive: text, kind, reason });
  }

  /** A section and everything in it, listed as not translated. */
  noteAll(at: Directive, kind: NoteKind, reason: string): void {
    this.note(at, kind, reason);
    for (const child of at.children ?? []) this.noteAll(child, kind, `inside <${at.name}>: ${reason}`);
  }

  walk(nodes: Directive[], vhost: Vhost | undefined, proxy: Balancer | undefined, location: string | undefined): void {
    for (const d of nodes) this.directive(d, vhost, proxy, location);
  }

  private directive(
    d: Directive,
    vhost: Vhost | undefined,
    proxy: Balancer | undefined,
    location: string | undefined,
  ): void {
    const name = d.name.toLowerCase();
    if (d.children) return this.section(d, name, vhost, proxy, location);
    const access =
      proxy?.access ?? (location === undefined || location === '/' ? (vhost?.access ?? this.globalAccess) : undefined);
    switch (name) {
      case 'listen':
        return this.listen(d);
      case 'servername':
        if (vhost) return void (vhost.serverName = stripHost(d.args[0] ?? ''));
        break;
      case 'serveralias':
        if (vhost) return void vhost.aliases.push(...d.args.map(stripHost));
        break;
      case 'proxypreservehost':
        return this.onOff(d, (on) => (this.scope(vhost).preserveHost = on));
      case 'proxyrequests':
        if ((d.args[0] ?? '').toLowerCase() === 'off')
          return this.note(d, 'skipped', 'Dayshift is never a forward proxy');
        return this.note(d, 'untranslated', 'Dayshift is a reverse proxy only; forward proxying is not supported');
      case 'proxytimeout': {
        const seconds = Number(d.args[0]);
        if (!vhost && Number.isFinite(seconds)) return void (this.proxyTimeout = seconds * 1000);
        return this.note(d, 'untranslated', 'a per-VirtualHost ProxyTimeout; Dayshift has one timeouts.first_byte');
      }
      case 'proxypass':
        return this.proxyPass(d, this.scope(vhost), location);
      case 'proxypassreverse':
        return this.proxyPassReverse(d, this.scope(vhost), location);
      case 'proxypassreversecookiedomain':
      case 'proxypassreversecookiepath': {
        if (d.args.length !== 2) return this.note(d, 'untranslated', 'expected two arguments (internal, public)');
        const target = this.scope(vhost)[name === 'proxypassreversecookiedomain' ? 'cookieDomain' : 'cookiePath'];
        target[d.args[0]!] = d.args[1]!;
        return;
      }
      case 'balancermember':
        return this.balancerMember(d, proxy);
      case 'proxyset':
        return this.proxySet(d, proxy);
      case 'order':
      case 'satisfy':
        if (access) return; // the meaning comes from Allow/Deny, read below
        break;
      case 'allow':
      case 'deny':
        if (access) return this.allowDeny(d, name, access);
        break;
      case 'require':
        if (access) return this.require(d, access);
        break;
      case 'sslengine':
        if (vhost) return this.onOff(d, (on) => (vhost.ssl = on));
        break;
      case 'sslcertificatefile':
        if (vhost) return void (vhost.cert = d.args[0]);
        break;
      case 'sslcertificatekeyfile':
        if (vhost) return void (vhost.key = d.args[0]);
        break;
      case 'sslproxyengine':
        return this.note(d, 'skipped', 'Dayshift speaks TLS to https:// members without being told');
      case 'sslproxyverify':
        if ((d.args[0] ?? '').toLowerCase() === 'none') {
          this.scope(vhost).tlsVerify = false;
          return this.note(d, 'approximated', 'https members of this VirtualHost get tls_verify: false');
        }
        return this.note(d, 'skipped', "Dayshift checks https members' certificates by default");
      case 'sslproxycheckpeername':
      case 'sslproxycheckpeercn':
        return this.note(d, 'skipped', "covered by the member's tls_verify");
      case 'sethandler':
        if (['balancer-manager', 'server-status'].includes((d.args[0] ?? '').toLowerCase())) {
          return this.note(d, 'skipped', "Dayshift's admin API, CLI, dashboard and /metrics replace it");
        }
        break;
    }
    if (SKIPPED.has(name)) {
      return this.note(d, 'skipped', SKIP_REASON[name] ?? 'no meaning for a Dayshift configuration');
    }
    if (name.startsWith('ssl') && vhost)
      return this.note(
        d,
        'untranslated',
        "Dayshift's TLS settings are not configurable per site (protocols and ciphers are Node's defaults)",
      );
    this.note(
      d,
      'untranslated',
      location !== undefined && location !== '/'
        ? `inside <Location ${location}>: Dayshift applies settings to whole sites`
        : 'no Dayshift equivalent',
    );
  }

  private section(
    d: Directive,
    name: string,
    vhost: Vhost | undefined,
    proxy: Balancer | undefined,
    location: string | undefined,
  ): void {
    const children = d.children!;
    switch (name) {
      case 'virtualhost': {
        if (vhost) return this.noteAll(d, 'untranslated', 'nested VirtualHost');
        const v = newVhost(d);
        this.vhosts.push(v);
        return this.walk(children, v, undefined, undefined);
      }
      case 'proxy': {
        const target = d.args[0] ?? '';
        if (target === '*') return this.walk(children, vhost, undefined, '/');
        const m = /^balancer:\/\/([^/]+)\/?$/i.exec(target);
        if (!m) return this.noteAll(d, 'untranslated', `<Proxy ${target}>: only balancer:// and * are translated`);
        return this.walk(children, vhost, this.balancer(m[1]!, d), undefined);
      }
      case 'location':
        if (location !== undefined || d.args.length !== 1)
          return this.noteAll(d, 'untranslated', 'only a plain <Location /path> is translated');
        return this.walk(children, vhost, proxy, d.args[0]);
      case 'ifmodule':
      case 'ifdefine':
      case 'ifversion':
        this.note(d, 'approximated', 'condition assumed true: its contents are imported');
        return this.walk(children, vhost, proxy, location);
      case 'directory':
      case 'directorymatch':
      case 'files':
      case 'filesmatch':
        return this.noteAll(d, 'skipped', 'file serving; Dayshift only proxies');
      default:
        return this.noteAll(d, 'untranslated', `<${d.name}> has no Dayshift equivalent`);
    }
  }

  /** Directives outside any VirtualHost belong to the main server, which answers hosts no vhost names. */
  private scope(vhost: Vhost | undefined): Vhost {
    if (vhost) return vhost;
    this.main ??= newVhost({ name: 'main server', args: [], file: '', line: 0 });
    return this.main;
  }

  finishMain(): void {
    if (this.main && this.main.passes.length > 0) this.vhosts.push(this.main);
  }

  private onOff(d: Directive, set: (on: boolean) => void): void {
    const value = (d.args[0] ?? '').toLowerCase();
    if (value !== 'on' && value !== 'off') return this.note(d, 'untranslated', 'expected On or Off');
    set(value === 'on');
  }

  private listen(d: Directive): void {
    const [addr = '', proto] = d.args;
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(addr) ?? /^()()(\d+)$/.exec(addr);
    if (!m) return this.note(d, 'untranslated', 'expected Listen [address:]port');
    const host = m[1] ?? m[2] ?? '';
    this.listens.push({
      address: host ? (host.includes(':') ? `[${host}]:${m[3]}` : `${host}:${m[3]}`) : `:${m[3]}`,
      https: (proto ?? '').toLowerCase() === 'https',
      at: d,
    });
  }

  balancer(name: string, at: Directive): Balancer {
    let b = this.balancers.get(name);
    if (!b) {
      b = { name, members: [], access: emptyAccess(), at };
      this.balancers.set(name, b);
    }
    return b;
  }

  private balancerMember(d: Directive, proxy: Balancer | undefined): void {
    let args = d.args;
    if (!proxy) {
      const m = /^balancer:\/\/([^/]+)\/?$/i.exec(args[0] ?? '');
      if (!m)
        return this.note(
          d,
          'untranslated',
          'BalancerMember outside <Proxy balancer://...> must name its balancer first',
        );
      proxy = this.balancer(m[1]!, d);
      args = args.slice(1);
    }
    const [url = '', ...params] = args;
    if (!/^(https?|ajp):\/\/[^/]+/i.test(url))
      return this.note(d, 'untranslated', `member scheme not supported (http, https, ajp are): ${url}`);
    const member: Member = { url: url.replace(/\/+$/, ''), key: memberKey(url), weight: 1, at: d };
    for (const param of params) this.memberParam(d, member, param);
    proxy.members.push(member);
  }

  private memberParam(d: Directive, member: Member, param: string): void {
    const eq = param.indexOf('=');
    const key = (eq < 0 ? param : param.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? '' : param.slice(eq + 1);
    const partial = (reason: string): void => {
      this.notes.push({
        file: d.file,
        line: d.line,
        directive: `${d.name} ... ${param}`,
        kind: 'untranslated',
        reason,
      });
    };
    switch (key) {
      case 'route':
        if (/^[A-Za-z0-9_-]+$/.test(value)) member.route = value;
        else partial('a route must be letters, digits, "-" and "_" in Dayshift');
        return;
      case 'loadfactor': {
        const n = Number(value);
        if (!Number.isFinite(n) || n < 0) return partial('expected a number');
        member.weight = Math.max(1, Math.round(n));
        if (member.weight !== n)
          this.notes.push({
            file: d.file,
            line: d.line,
            directive: `${d.name} ... ${param}`,
            kind: 'approximated',
            reason: `weight ${member.weight} (Dayshift weights are whole numbers)`,
          });
        return;
      }
      case 'status': {
        for (const [, sign, flag] of value.matchAll(/([+-]?)([A-Za-z])/g)) {
          if (sign === '-') continue;
          const f = flag!.toUpperCase();
          if (f === 'D' || f === 'S') member.state = 'disabled';
          else if (f === 'H') member.state = 'standby';
          else if (f === 'N') member.state = 'draining';
          else partial(`status flag ${f} has no Dayshift member state`);
        }
        return;
      }
      case 'secret':
        member.secret = value;
        return;
      case 'hcmethod':
        member.health = { ...member.health, enabled: true, method: value.toUpperCase() };
        if (!['GET', 'HEAD', 'OPTIONS'].includes(value.toUpperCase()))
          partial('Dayshift checks with GET, HEAD or OPTIONS');
        return;
      case 'hcuri':
        member.health = { ...member.health, enabled: true, path: value.startsWith('/') ? value : `/${value}` };
        return;
      case 'hcinterval':
        member.health = { ...member.health, interval: `${Number(value)}s` };
        return;
      case 'hcpasses':
        member.health = { ...member.health, rise: Number(value) };
        return;
      case 'hcfails':
        member.health = { ...member.health, fall: Number(value) };
        return;
      default:
        partial(`member parameter ${key} has no Dayshift equivalent per member`);
    }
  }

  private proxySet(d: Directive, proxy: Balancer | undefined): void {
    let args = d.args;
    if (!proxy) {
      const m = /^balancer:\/\/([^/]+)\/?$/i.exec(args[0] ?? '');
      if (!m)
        return this.note(d, 'untranslated', 'ProxySet outside <Proxy balancer://...> must name its balancer first');
      proxy = this.balancer(m[1]!, d);
      args = args.slice(1);
    }
    for (const param of args) this.balancerParam(d, proxy, param);
  }

  /** A balancer parameter from ProxySet or from ProxyPass ... key=value. */
  balancerParam(d: Directive, balancer: Balancer, param: string): void {
    const eq = param.indexOf('=');
    const key = param.slice(0, eq < 0 ? param.length : eq).toLowerCase();
    const value = eq < 0 ? '' : param.slice(eq + 1);
    const note = (kind: NoteKind, reason: string): void => {
      this.notes.push({ file: d.file, line: d.line, directive: `${d.name} ... ${param}`, kind, reason });
    };
    switch (key) {
      case 'lbmethod':
        balancer.lbmethod = value.toLowerCase();
        if (!LBMETHOD[balancer.lbmethod])
          note('approximated', `lbmethod ${value} has no Dayshift equivalent: round-robin is used`);
        return;
      case 'stickysession': {
        const [cookie, param2] = value.split('|');
        if (!cookie) return note('untranslated', 'empty stickysession');
        // httpd looks for the name as a cookie and as a URL path parameter; NAME|name splits the two.
        balancer.sticky = { cookie, param: param2 ?? cookie };
        return;
      }
      case 'nofailover':
        balancer.nofailover = value.toLowerCase() === 'on';
        return;
      case 'nonce':
      case 'growth':
        return note('skipped', 'balancer-manager setting; Dayshift has its own admin API');
      case 'timeout':
      case 'maxattempts':
      case 'failonstatus':
      case 'failontimeout':
        return note(
          'untranslated',
          `per-balancer ${key}; Dayshift sets timeouts, retries and passive checks once for all members (timeouts:, retries:, passive:)`,
        );
      default:
        return note('untranslated', `balancer parameter ${key} has no Dayshift equivalent`);
    }
  }

  private proxyPass(d: Directive, vhost: Vhost, location: string | undefined): void {
    const args = location === undefined ? d.args : [location, ...d.args];
    const [path = '', target = '', ...params] = args;
    if (target === '!')
      return this.note(d, 'untranslated', `excludes ${path} from proxying; Dayshift routes every path of a site`);
    if (!path.startsWith('/')) return this.note(d, 'untranslated', 'expected ProxyPass /path URL');
    let balancerName: string;
    let targetPath: string;
    const bal = /^balancer:\/\/([^/]+)(\/.*)?$/i.exec(target);
    if (bal) {
      balancerName = bal[1]!;
      targetPath = bal[2] ?? '';
      const balancer = this.balancer(balancerName, d);
      for (const p of params) {
        if (
          /^(lbmethod|stickysession|nofailover|timeout|maxattempts|failonstatus|failontimeout|nonce|growth)=/i.test(p)
        )
          this.balancerParam(d, balancer, p);
        else
          this.notes.push({
            file: d.file,
            line: d.line,
            directive: `ProxyPass ... ${p}`,
            kind: 'untranslated',
            reason: 'ProxyPass parameter with no Dayshift equivalent',
          });
      }
    } else if (/^(https?|ajp):\/\/[^/]+/i.test(target)) {
      const url = new URL(target.replace(/^ajp:/i, 'http:'));
      targetPath = url.pathname === '/' && !target.endsWith('/') ? '' : url.pathname;
      balancerName = `${url.hostname}-${url.port || 'default'}`.replace(/[^A-Za-z0-9_.-]/g, '-');
      const balancer = this.balancer(balancerName, d);
      balancer.implicit = true;
      const memberUrl = target.slice(
        0,
        target.length - (url.pathname === '/' ? (target.endsWith('/') ? 1 : 0) : url.pathname.length),
      );
      if (!balancer.members.some((m) => m.key === memberKey(memberUrl)))
        balancer.members.push({ url: memberUrl, key: memberKey(memberUrl), weight: 1, at: d });
      for (const p of params)
        this.notes.push({
          file: d.file,
          line: d.line,
          directive: `ProxyPass ... ${p}`,
          kind: 'untranslated',
          reason: 'worker parameter with no Dayshift equivalent',
        });
    } else {
      return this.note(
        d,
        'untranslated',
        `target ${target}: only balancer://, http://, https:// and ajp:// are translated`,
      );
    }
    vhost.passes.push({ path, target, balancer: balancerName, targetPath, at: d });
  }

  private proxyPassReverse(d: Directive, vhost: Vhost, location: string | undefined): void {
    const args = location === undefined ? d.args : [location, ...d.args];
    const [path = '', target = ''] = args;
    const mirrors = vhost.passes.some(
      (p) => p.path === path && p.target.replace(/\/+$/, '').toLowerCase() === target.replace(/\/+$/, '').toLowerCase(),
    );
    if (mirrors) return this.note(d, 'skipped', 'Dayshift rewrites redirects from members of the route by itself');
    this.note(d, 'untranslated', 'a ProxyPassReverse that mirrors no ProxyPass');
  }

  private allowDeny(d: Directive, name: 'allow' | 'deny', access: Access): void {
    const [from, ...what] = d.args;
    if ((from ?? '').toLowerCase() !== 'from') return this.note(d, 'untranslated', `expected ${d.name} from ...`);
    for (const w of what) {
      if (w.toLowerCase() === 'all') {
        if (name === 'allow') access.allowAll = true;
        else access.denyAll = d;
        continue;
      }
      const block = toCidr(w);
      if (!block) {
        this.notes.push({
          file: d.file,
          line: d.line,
          directive: `${d.name} from ${w}`,
          kind: 'untranslated',
          reason: 'host names and env= rules are not translated; use addresses or CIDR blocks',
        });
        continue;
      }
      (name === 'allow' ? access.allow : access.deny).push(block);
    }
  }

  private require(d: Directive, access: Access): void {
    const [first = '', ...rest] = d.args.map((a) => a.toLowerCase());
    if (first === 'all' && rest[0] === 'granted') {
      access.allowAll = true;
      return;
    }
    if (first === 'all' && rest[0] === 'denied') {
      access.denyAll = d;
      return;
    }
    const negated = first === 'not';
    const kind = negated ? rest[0] : first;
    const values = d.args.slice(negated ? 2 : 1);
    if (kind !== 'ip')
      return this.note(d, 'untranslated', 'only Require ip, Require not ip and Require all are translated');
    for (const v of values) {
      const block = toCidr(v);
      if (!block) {
        this.notes.push({
          file: d.file,
          line: d.line,
          directive: `Require ip ${v}`,
          kind: 'untranslated',
          reason: 'not an address or CIDR block',
        });
        continue;
      }
      (negated ? access.deny : access.allow).push(block);
    }
  }
}

function emptyAccess(): Access {
  return { allow: [], deny: [], allowAll: false };
}

function newVhost(at: Directive): Vhost {
  return {
    addresses: at.args,
    aliases: [],
    passes: [],
    preserveHost: false,
    ssl: false,
    tlsVerify: true,
    access: emptyAccess(),
    cookieDomain: {},
    cookiePath: {},
    at,
  };
}

function stripHost(host: string): string {
  return host
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/:\d+$/, '')
    .toLowerCase();
}

function memberKey(url: string): string {
  return url.replace(/\/+$/, '').toLowerCase();
}

/** 10.1 → 10.1.0.0/16 (httpd's partial addresses), 10.0.0.0/255.0.0.0 → 10.0.0.0/8, addresses and CIDR as they are. */
export function toCidr(text: string): string | undefined {
  const [ip = '', bits] = text.split('/');
  if (isIP(ip) === 0) {
    const parts = ip.replace(/\.$/, '').split('.');
    if (
      parts.length >= 1 &&
      parts.length < 4 &&
      parts.every((p) => /^\d+$/.test(p) && Number(p) < 256) &&
      bits === undefined
    ) {
      return `${[...parts, ...Array(4 - parts.length).fill('0')].join('.')}/${parts.length * 8}`;
    }
    return undefined;
  }
  if (bits === undefined) return ip;
  if (/^\d+$/.test(bits)) return text;
  if (isIP(bits) === 4) {
    const n = bits.split('.').reduce((acc, p) => acc + Number(p).toString(2).replace(/0/g, '').length, 0);
    return `${ip}/${n}`;
  }
  return undefined;
}

/** Reads the file (following Includes) and translates it. */
export function importApacheFile(file: string, options: ParseOptions = {}): ImportResult {
  return importApache(parseApacheConf(file, options), file);
}

export function importApache(directives: Directive[], source = 'httpd.conf'): ImportResult {
  const im = new Importer();
  im.walk(directives, undefined, undefined, undefined);
  im.finishMain();
  return build(im, source);
}

/**
 * Builds the Dayshift config in passes, each adding one part: the balancers worth importing, how they
 * group into clusters, the clusters' names, their members, the sites, the listeners. Notes are sorted by
 * file and line at the end, so a pass only adds its own.
 */
function build(im: Importer, source: string): ImportResult {
  const map = nameClusters(im, groupBalancers(im, balancersWithMembers(im)));
  const clusters = importClusters(im, map);
  const sites = nameSites(im, map, siteDrafts(im, map));
  const config: Record<string, unknown> = {
    listen: importListeners(im),
    ...(im.proxyTimeout !== undefined ? { timeouts: { first_byte: `${im.proxyTimeout / 1000}s` } } : {}),
    // httpd checks members only with mod_proxy_hcheck (hc* member parameters become per-member overrides).
    // Dayshift checks every member: its health gate must not count a stopped server up.
    health: { enabled: true, path: '/' },
    clusters,
    sites,
  };

  const notes = im.notes.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
  const header = [
    `Imported from ${source} by \`dayshift import apache\`.`,
    `${notes.filter((n) => n.kind === 'untranslated').length} directive(s) not translated, ${notes.filter((n) => n.kind === 'approximated').length} approximated: see the import report.`,
    'Active health checks are on: GET health.path (/) on http members, a CPing on ajp ones; set health.path to a page your application serves.',
  ];
  const yaml = `${header.map((l) => `# ${l}`).join('\n')}\n${toYaml(config)}`;
  return { config, yaml, notes };
}

/** Pass 1, the balancers worth importing: those with members. One a ProxyPass names without any is noted. */
function balancersWithMembers(im: Importer): Balancer[] {
  const used = new Set(im.vhosts.flatMap((v) => v.passes.map((p) => p.balancer)));
  const all = [...im.balancers.values()].filter((b) => b.members.length > 0 || used.has(b.name));
  for (const b of all.filter((b) => b.members.length === 0))
    im.note(b.at, 'untranslated', `balancer://${b.name} has no BalancerMember: routes to it are dropped`);
  return all.filter((b) => b.members.length > 0);
}

/** How balancers become clusters. */
interface Grouping {
  /** Balancers made of other balancers' members: each is a route over those balancers' clusters. */
  composedOf: Map<string, Balancer[]>;
  /** Balancers with exactly the members of an earlier one: they route to its cluster. */
  sameAs: Map<string, Balancer>;
  /** The balancers that become clusters, with the "~rest" remainders of composites. */
  bases: Balancer[];
}

/**
 * Pass 2, the grouping: a balancer made of exactly the members of other, disjoint balancers is a route
 * over their clusters (the origin's web-prod = web-prod-a + web-prod-b), not a third cluster.
 */
function groupBalancers(im: Importer, withMembers: Balancer[]): Grouping {
  const composedOf = new Map<string, Balancer[]>();
  const remainders = new Map<string, Balancer>();
  const sameAs = new Map<string, Balancer>();
  for (const b of withMembers) {
    const keys = new Set(b.members.map((m) => m.key));
    const twin = withMembers.find(
      (o) =>
        o !== b && !sameAs.has(o.name) && o.members.length === keys.size && o.members.every((m) => keys.has(m.key)),
    );
    if (twin && withMembers.indexOf(twin) < withMembers.indexOf(b)) {
      sameAs.set(b.name, twin);
      continue;
    }
    const parts = withMembers
      .filter((o) => o !== b && o.members.length < keys.size && o.members.every((m) => keys.has(m.key)))
      .sort((x, y) => y.members.length - x.members.length);
    const picked: Balancer[] = [];
    const covered = new Set<string>();
    for (const p of parts) {
      if (p.members.some((m) => covered.has(m.key))) continue;
      picked.push(p);
      p.members.forEach((m) => covered.add(m.key));
    }
    if (picked.length >= 2 && covered.size === keys.size) composedOf.set(b.name, picked);
    else if (picked.length >= 2 && covered.size * 2 >= keys.size) {
      // Mostly other balancers' members plus a few of its own (a hot standby, say): those few become a
      // cluster of their own, named after this balancer.
      const rest: Balancer = { ...b, name: `${b.name}~rest`, members: b.members.filter((m) => !covered.has(m.key)) };
      remainders.set(rest.name, rest);
      composedOf.set(b.name, [...picked, rest]);
      for (const m of rest.members)
        im.note(
          m.at,
          'approximated',
          `in no other balancer: cluster ${b.name} holds it, beside ${picked.map((p) => p.name).join(', ')}`,
        );
    }
  }
  const bases = [...withMembers.filter((b) => !composedOf.has(b.name) && !sameAs.has(b.name)), ...remainders.values()];
  for (const [name, twin] of sameAs) {
    im.note(
      im.balancers.get(name)!.at,
      'approximated',
      `balancer://${name} has the same members as balancer://${twin.name}: both are cluster ${twin.name}'s route`,
    );
  }
  return { composedOf, sameAs, bases };
}

/** The grouping with each cluster's name: what the later passes ask about a balancer. */
interface ClusterMap extends Grouping {
  clusterName: Map<string, string>;
  /** The balancer whose cluster this one routes to (itself, or the earlier twin it copies). */
  resolveBase(balancer: string): string;
  /** The clusters a ProxyPass to this balancer routes over. */
  clustersOf(balancer: string): string[];
}

/**
 * Pass 3, cluster names: the QA host name's first label when the balancer's name ends with it (web-prod-a
 * served as prod-a.example.com → prod-a), else the balancer's name.
 */
function nameClusters(im: Importer, grouping: Grouping): ClusterMap {
  const { composedOf, sameAs, bases } = grouping;
  const clusterName = new Map<string, string>();
  const resolveBase = (balancer: string): string => sameAs.get(balancer)?.name ?? balancer;
  const clustersOf = (balancer: string): string[] => {
    const parts = composedOf.get(balancer);
    if (parts) return parts.map((p) => clusterName.get(p.name)!);
    const name = clusterName.get(resolveBase(balancer));
    return name ? [name] : [];
  };
  const taken = new Set<string>();
  for (const b of bases) {
    const label = im.vhosts
      .filter((v) => v.passes.length > 0 && v.passes.every((p) => resolveBase(p.balancer) === b.name))
      .map((v) => (v.serverName ?? '').split('.')[0] ?? '')
      .find((l) => l !== '' && (b.name === l || b.name.endsWith(`-${l}`) || b.name.endsWith(`_${l}`)));
    const implicitLabel = b.implicit
      ? im.vhosts
          .filter((v) => v.passes.some((p) => p.balancer === b.name))
          .map((v) => (v.serverName ?? '').split('.')[0] ?? '')
          .find((l) => l !== '')
      : undefined;
    const base = safeName(label ?? implicitLabel ?? b.name.replace(/~rest$/, ''));
    let name = base;
    for (let i = 2; taken.has(name); i++) name = `${base}-${i}`;
    taken.add(name);
    clusterName.set(b.name, name);
  }
  return { ...grouping, clusterName, resolveBase, clustersOf };
}

/**
 * Pass 4, the clusters and their members: from the cluster's own balancer; a composite's route and
 * loadfactor fill gaps or are noted.
 */
function importClusters(im: Importer, map: ClusterMap): Record<string, unknown> {
  const { composedOf, bases, clusterName, clustersOf } = map;
  const tlsOff = new Set(
    im.vhosts.filter((v) => !v.tlsVerify).flatMap((v) => v.passes.flatMap((p) => clustersOf(p.balancer))),
  );
  const clusters: Record<string, unknown> = {};
  for (const b of bases) {
    const name = clusterName.get(b.name)!;
    const members = b.members.map((m) => {
      let route = m.route;
      let weight = m.weight;
      for (const [composite, parts] of composedOf) {
        if (!parts.includes(b)) continue;
        const other = im.balancers.get(composite)!.members.find((o) => o.key === m.key)!;
        if (other.route && !route) route = other.route;
        else if (other.route && other.route !== route)
          im.note(
            other.at,
            'approximated',
            `route ${other.route} differs from ${route} in balancer://${b.name}: Dayshift uses ${route}`,
          );
        if (other.weight !== m.weight) {
          weight = other.weight;
          im.note(
            other.at,
            'approximated',
            `loadfactor differs from balancer://${b.name}: the public weight ${other.weight} is used`,
          );
        }
      }
      return {
        url: m.url,
        ...(route ? { route } : {}),
        ...(weight !== 1 ? { weight } : {}),
        ...(m.state ? { state: m.state } : {}),
        ...(m.secret ? { secret: m.secret } : {}),
        ...(m.url.toLowerCase().startsWith('https:') && tlsOff.has(name) ? { tls_verify: false } : {}),
        ...(m.health ? { health: m.health } : {}),
      };
    });
    clusters[name] = { members };
  }
  return clusters;
}

/** A site before it has its name: one per ServerName. */
interface SiteDraft {
  key: string;
  hosts: string[];
  routes: Record<string, unknown>[];
  vhost: Vhost;
  tls?: { cert: string; key: string };
  allow: string[];
  deny: string[];
  preserve: boolean;
}

/**
 * Pass 5, the sites' hosts, routes, access and TLS: one per ServerName (an :80 and a :443 VirtualHost of
 * the same name are one site).
 */
function siteDrafts(im: Importer, map: ClusterMap): SiteDraft[] {
  const { composedOf, resolveBase, clustersOf } = map;
  const drafts: SiteDraft[] = [];
  for (const v of im.vhosts) {
    const routes = v.passes.flatMap((p) => {
      const balancer = im.balancers.get(p.balancer)!;
      const cl = clustersOf(p.balancer);
      if (cl.length === 0) return [];
      if (
        p.targetPath !== '' &&
        p.targetPath !== '/' &&
        p.targetPath.replace(/\/$/, '') !== p.path.replace(/\/$/, '')
      ) {
        im.note(
          p.at,
          'untranslated',
          `maps ${p.path} to ${p.targetPath} on the members; Dayshift forwards the path as is or strips the prefix`,
        );
        return [];
      }
      const strip = p.path !== '/' && (p.targetPath === '' || p.targetPath === '/');
      const lb =
        balancer.lbmethod ??
        (composedOf.get(p.balancer) ? undefined : im.balancers.get(resolveBase(p.balancer))?.lbmethod);
      const sticky = balancer.sticky ?? im.balancers.get(resolveBase(p.balancer))?.sticky;
      return [
        {
          path: p.path,
          clusters: cl,
          ...(lb && LBMETHOD[lb] && LBMETHOD[lb] !== 'round-robin' ? { balance: LBMETHOD[lb] } : {}),
          ...(sticky
            ? {
                sticky: {
                  mode: 'route',
                  cookie: sticky.cookie,
                  ...(sticky.param ? { path_param: sticky.param } : {}),
                  ...(balancer.nofailover ? { nofailover: true } : {}),
                },
              }
            : {}),
          ...(strip ? { strip_prefix: true } : {}),
        },
      ];
    });
    if (routes.length === 0) {
      if (v.at.line > 0)
        im.note(v.at, 'untranslated', 'VirtualHost with nothing Dayshift can proxy: not imported as a site');
      continue;
    }
    const access = combineAccess(im, [
      im.globalAccess,
      v.access,
      ...v.passes.map((p) => im.balancers.get(p.balancer)!.access),
    ]);
    const hosts = v.serverName ? [v.serverName, ...v.aliases] : ['*'];
    if (!v.serverName && v.at.line > 0)
      im.note(
        v.at,
        'approximated',
        'VirtualHost without ServerName: its site answers any host no other site names (hosts: ["*"])',
      );
    const key = hosts[0]!;
    const draft: SiteDraft = {
      key,
      hosts,
      routes,
      vhost: v,
      allow: access.allow,
      deny: access.deny,
      preserve: v.preserveHost,
    };
    if (v.ssl) {
      if (v.cert && v.key) draft.tls = { cert: v.cert, key: v.key };
      else if (v.cert) draft.tls = { cert: v.cert, key: v.cert };
      else im.note(v.at, 'untranslated', 'SSLEngine on without SSLCertificateFile');
    }
    const same = drafts.find((s) => s.key === key);
    if (!same) {
      drafts.push(draft);
      continue;
    }
    same.hosts = [...new Set([...same.hosts, ...draft.hosts])];
    same.tls ??= draft.tls;
    if (JSON.stringify(same.routes) !== JSON.stringify(draft.routes)) {
      for (const p of v.passes)
        im.note(
          p.at,
          'untranslated',
          `VirtualHost ${key} at ${same.vhost.at.file}:${same.vhost.at.line} routes differently; Dayshift serves one set of routes per host on every listener`,
        );
    }
  }
  return drafts;
}

/**
 * Pass 6, site names: `public` for the first site over several clusters, `qa-CLUSTER` for a site over one
 * of those clusters alone, else the host name.
 */
function nameSites(im: Importer, map: ClusterMap, drafts: SiteDraft[]): Record<string, unknown> {
  const { clustersOf } = map;
  const sharedClusters = new Set(
    im.vhosts.flatMap((v) =>
      v.passes.filter((p) => clustersOf(p.balancer).length > 1).flatMap((p) => clustersOf(p.balancer)),
    ),
  );
  const sites: Record<string, unknown> = {};
  const siteNames = new Set<string>();
  for (const d of drafts) {
    const shared = d.routes.some((r) => (r.clusters as string[]).length > 1);
    const only = [...new Set(d.routes.flatMap((r) => r.clusters as string[]))];
    let name =
      shared && !siteNames.has('public')
        ? 'public'
        : only.length === 1 && sharedClusters.has(only[0]!)
          ? `qa-${only[0]}`
          : safeName(d.key === '*' ? 'default' : d.key);
    for (let i = 2; siteNames.has(name); i++) name = `${name}-${i}`;
    siteNames.add(name);
    sites[name] = {
      hosts: d.hosts,
      ...(d.allow.length ? { allow: d.allow } : {}),
      ...(d.deny.length ? { deny: d.deny } : {}),
      ...(d.preserve ? { preserve_host: true } : {}),
      ...(d.tls ? { tls: d.tls } : {}),
      ...(Object.keys(d.vhost.cookieDomain).length ? { cookie_domain: d.vhost.cookieDomain } : {}),
      ...(Object.keys(d.vhost.cookiePath).length ? { cookie_path: d.vhost.cookiePath } : {}),
      routes: d.routes,
    };
  }
  return sites;
}

/** Pass 7, the listeners: Listen directives (https where an SSL VirtualHost uses the port), else the vhosts' ports. */
function importListeners(im: Importer): Record<string, unknown> {
  const sslPorts = new Set(
    im.vhosts.filter((v) => v.ssl).flatMap((v) => v.addresses.map((a) => /:(\d+)$/.exec(a)?.[1]).filter(Boolean)),
  );
  let listens = im.listens.map((l) => ({
    address: l.address,
    https: l.https || sslPorts.has(/:(\d+)$/.exec(l.address)![1]!),
  }));
  if (listens.length === 0)
    listens = vhostListens(im.vhosts.flatMap((v) => v.addresses)).map((address) => ({
      address,
      https: sslPorts.has(/:(\d+)$/.exec(address)![1]!),
    }));
  const http = listens.filter((l) => !l.https).map((l) => l.address);
  const https = listens.filter((l) => l.https).map((l) => l.address);
  const listen: Record<string, unknown> = {};
  if (http.length) listen.http = http.length === 1 ? http[0] : http;
  if (https.length) listen.https = https.length === 1 ? https[0] : https;
  return listen;
}

/**
 * Listeners from VirtualHost addresses when there is no Listen: a port keeps the addresses its
 * VirtualHosts name (127.0.0.1:80 stays on loopback), and all interfaces when one of them is * or
 * _default_.
 */
function vhostListens(addresses: string[]): string[] {
  const byPort = new Map<string, Set<string>>();
  for (const address of addresses) {
    const m = /^(.*?)(?::(\d+))?$/.exec(address)!;
    const port = m[2] ?? '80';
    const host = m[1] === '*' || m[1] === '_default_' || m[1] === '' ? '' : m[1]!;
    const hosts = byPort.get(port) ?? new Set<string>();
    hosts.add(host);
    byPort.set(port, hosts);
  }
  if (byPort.size === 0) return [':80'];
  return [...byPort].flatMap(([port, hosts]) => (hosts.has('') ? [`:${port}`] : [...hosts].map((h) => `${h}:${port}`)));
}

function combineAccess(im: Importer, accesses: Access[]): { allow: string[]; deny: string[] } {
  const allow = [...new Set(accesses.flatMap((a) => a.allow))];
  const deny = [...new Set(accesses.flatMap((a) => a.deny))];
  for (const a of accesses) {
    if (a.denyAll && a.allow.length === 0 && !a.allowAll)
      im.note(
        a.denyAll,
        'untranslated',
        'denies every client: Dayshift has no site that refuses everyone; remove the site instead',
      );
  }
  return { allow, deny };
}

function safeName(text: string): string {
  const cleaned = text.replace(/[^a-zA-Z0-9_.-]/g, '-').replace(/^[^a-zA-Z0-9]+/, '');
  return cleaned || 'site';
}

/** YAML as people write Dayshift configs: short lists and members on one line each. */
function toYaml(config: Record<string, unknown>): string {
  const doc = new Document(config);
  visit(doc, {
    Seq(_, node) {
      if (node.items.every((i) => isScalar(i))) node.flow = true;
    },
    Pair(_, pair) {
      if (isScalar(pair.key) && pair.key.value === 'members' && isSeq(pair.value)) {
        for (const item of pair.value.items)
          if (isMap(item) && item.items.every((p) => isScalar(p.value))) item.flow = true;
      }
    },
  });
  return doc.toString({ lineWidth: 0 });
}
