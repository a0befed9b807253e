// The overview: sites, clusters and members, updated from each `status` event; charts from /api/history.
import { api } from './api.js';
import { createChart } from './charts.js';
import { confirmAction, field, select } from './dialog.js';
import { createShadowPanel } from './shadow.js';
import { createWorkersPanel } from './workers.js';
import { badge, drainFigures, duration, h, ms, num, percent, setBadge, setText, time } from './dom.js';

/**
 * @typedef {{ id: string, key: string, url: string, route?: string, admin: string, health: string, weight: number, inFlight: number,
 *   boundSessions?: number, oldestIdleMs?: number, openTunnels?: number, requestsPerSecond?: number, errorRate?: number, p99Ms?: number }} Member
 * @typedef {{ drained: boolean, reason: string, basis: string, inFlight: number, sessions?: number, oldestIdleMs?: number, lastRequestMs?: number, idleMs: number, tunnels: number, since?: string, deadline?: string, remainingMs?: number }} Drain
 * @typedef {{ name: string, traffic: string, weight: number, members: Member[], drain?: Drain, drainingSince?: string, qaUrl?: string,
 *   requestsPerSecond?: number, errorRate?: number, p99Ms?: number }} Cluster
 * @typedef {{ hosts: string[], notAfter?: string, issuer?: string, renewAt?: string, lastError?: string, retryAt?: string }} Certificate
 * @typedef {{ name: string, hosts: string[], routes: { path: string, clusters: string[], traffic: string }[], maintenance?: { message: string, until?: string }, pause?: { until: string, then: string }, certificate?: Certificate }} Site
 * @typedef {{ id: string, cluster: string, site: string, until: string, who: string, allow?: string[] }} Preview
 * @typedef {{ at: string, driver: string, sites: Site[], clusters: Cluster[], warnings: string[], previews?: Preview[],
 *   shadow?: import('./shadow.js').Shadow, workers?: import('./workers.js').Worker[] }} Status
 */

/** Clusters that share a route with `name` (the ones that take its traffic when it leaves). */
function peersOf(/** @type {Status} */ status, /** @type {string} */ name) {
  const peers = new Set();
  for (const site of status.sites)
    for (const route of site.routes)
      if (route.clusters.includes(name)) route.clusters.forEach((c) => c !== name && peers.add(c));
  return status.clusters.filter((c) => peers.has(c.name));
}

const and = (/** @type {string[]} */ names) =>
  names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;

/**
 * @param {HTMLElement} root
 * @param {(message: string) => void} announce
 */
export function createOverview(root, announce) {
  const warnings = h('ul', { class: 'warnings', hidden: true });
  const sitesList = h('div', { class: 'sites' });
  const clustersList = h('div', { class: 'clusters' });
  const updated = h('p', { class: 'updated muted' });
  const shadow = createShadowPanel(announce);
  const workers = createWorkersPanel(announce);
  root.append(
    h('div', { class: 'section-head' }, h('h2', { id: 'overview-title', text: 'Overview' }), updated),
    warnings,
    h(
      'section',
      { 'aria-labelledby': 'sites-title' },
      h('h3', { id: 'sites-title', class: 'sub', text: 'Sites' }),
      sitesList,
    ),
    h(
      'section',
      { 'aria-labelledby': 'clusters-title' },
      h('h3', { id: 'clusters-title', class: 'sub', text: 'Clusters' }),
      clustersList,
    ),
    shadow.element,
    workers.element,
  );

  /** @type {Status | undefined} */
  let current;
  /** @type {Map<string, ReturnType<typeof siteCard>>} */
  const sites = new Map();
  /** @type {Map<string, ReturnType<typeof clusterCard>>} */
  const clusters = new Map();

  /** Runs a change after a confirmation that says what it will do. */
  const act = (/** @type {import('./dialog.js').ConfirmOptions} */ options, /** @type {string} */ done) =>
    confirmAction(options).then((ok) => ok && announce(done));

  function siteCard(/** @type {Site} */ site) {
    const state = h('p', { class: 'site-state' });
    const certificate = h('p', { class: 'certificate', hidden: true });
    const maintenance = h('button', { type: 'button' });
    const pause = h('button', { type: 'button' });
    const card = h(
      'article',
      { class: 'card site', 'aria-labelledby': `site-${site.name}` },
      h(
        'header',
        {},
        h('h4', { id: `site-${site.name}`, text: site.name }),
        h('span', { class: 'muted', text: site.hosts.join(', ') }),
      ),
      h(
        'ul',
        { class: 'routes' },
        ...site.routes.map((r) =>
          h('li', {}, h('code', { text: r.path }), ` → ${r.clusters.join(', ')} (${r.traffic})`),
        ),
      ),
      state,
      certificate,
      h('div', { class: 'actions' }, maintenance, pause),
    );
    maintenance.addEventListener('click', () => {
      const s = sites.get(site.name)?.site ?? site;
      if (s.maintenance) {
        act(
          {
            title: `End maintenance of ${s.name}`,
            what: [`${s.name} serves requests again instead of the maintenance page.`],
            confirm: 'End maintenance',
            run: () => api('DELETE', `/api/sites/${encodeURIComponent(s.name)}/maintenance`),
          },
          `${s.name}: maintenance ended`,
        );
      } else {
        act(
          {
            title: `Maintenance for ${s.name}`,
            what: [
              `Every request to ${s.name} (${s.hosts.join(', ')}) gets a 503 page with this message, until you end maintenance or the time below passes.`,
            ],
            fields: [
              field('Message shown to users', {
                type: 'textarea',
                name: 'message',
                required: true,
                maxlength: 2000,
                rows: 3,
                value: 'We are updating the site. Please come back in a few minutes.',
              }),
              field(
                'For how long (optional)',
                { name: 'for', placeholder: '30m', pattern: '\\d+(ms|s|m|h)' },
                'A duration such as 30m; empty: until ended.',
              ),
            ],
            confirm: 'Start maintenance',
            danger: true,
            run: (form) =>
              api('POST', `/api/sites/${encodeURIComponent(s.name)}/maintenance`, {
                message: String(form.get('message')),
                ...(form.get('for') ? { for: String(form.get('for')) } : {}),
              }),
          },
          `${s.name}: maintenance on`,
        );
      }
    });
    pause.addEventListener('click', () => {
      const s = sites.get(site.name)?.site ?? site;
      if (s.pause) {
        act(
          {
            title: `Resume ${s.name}`,
            what: [`Requests held on ${s.name} are served now, and new ones flow again.`],
            confirm: 'Resume',
            run: () => api('DELETE', `/api/sites/${encodeURIComponent(s.name)}/pause`),
          },
          `${s.name}: resumed`,
        );
      } else {
        act(
          {
            title: `Pause ${s.name}`,
            what: [
              `New requests to ${s.name} are held (not answered) for up to the time below; then they are served, or answered 503 if you choose so. Use it for a short switchover.`,
            ],
            fields: [
              field(
                'Hold for',
                { name: 'for', value: '30s', required: true, pattern: '\\d+(ms|s|m|h)' },
                'A duration such as 30s.',
              ),
              select('When the time is up', 'then', [
                ['serve', 'serve the held requests'],
                ['reject', 'answer them 503'],
              ]),
            ],
            confirm: 'Pause',
            danger: true,
            run: (form) =>
              api('POST', `/api/sites/${encodeURIComponent(s.name)}/pause`, {
                for: String(form.get('for')),
                then: String(form.get('then')),
              }),
          },
          `${s.name}: paused`,
        );
      }
    });
    const refs = {
      card,
      site,
      update(/** @type {Site} */ next) {
        refs.site = next;
        setText(
          state,
          next.maintenance
            ? `Maintenance: “${next.maintenance.message}”${next.maintenance.until ? ` until ${time(next.maintenance.until)}` : ''}`
            : next.pause
              ? `Paused until ${time(next.pause.until)}, then ${next.pause.then}`
              : 'Serving',
        );
        state.className = `site-state ${next.maintenance ? 'warn' : next.pause ? 'warn' : 'ok'}`;
        const c = next.certificate;
        certificate.hidden = !c;
        if (c) {
          const daysLeft = c.notAfter ? Math.floor((Date.parse(c.notAfter) - Date.now()) / 86_400_000) : undefined;
          setText(
            certificate,
            c.notAfter
              ? `Certificate expires ${time(c.notAfter)} (${daysLeft} days), renews ${time(c.renewAt)}${c.lastError ? ` · last try failed: ${c.lastError}` : ''}`
              : `No certificate yet${c.lastError ? `: ${c.lastError}; next try ${time(c.retryAt)}` : ' (ordering)'}`,
          );
          certificate.className = `certificate ${c.notAfter && !c.lastError && (daysLeft ?? 0) >= 7 ? 'muted' : 'warn'}`;
        }
        setText(maintenance, next.maintenance ? 'End maintenance' : 'Maintenance…');
        maintenance.setAttribute(
          'aria-label',
          next.maintenance ? `End maintenance of site ${next.name}` : `Start maintenance of site ${next.name}`,
        );
        setText(pause, next.pause ? 'Resume' : 'Pause…');
        pause.setAttribute('aria-label', next.pause ? `Resume site ${next.name}` : `Pause site ${next.name}`);
      },
    };
    return refs;
  }

  function clusterCard(/** @type {Cluster} */ cluster) {
    const name = cluster.name;
    const traffic = badge(cluster.traffic);
    const weight = h('span', { class: 'weight' });
    const figures = h('span', { class: 'figures muted' });
    const drain = h('p', { class: 'drain', hidden: true });
    const qa = h('p', { class: 'qa', hidden: true });
    const preview = h('p', { class: 'qa preview-link', hidden: true });
    const previewList = h('ul', { class: 'previews', 'aria-label': `Previews of ${name}`, hidden: true });
    /** The previews listed, and the one whose link is shown (hidden once it ends). */
    let previewIds = '';
    let linkId = '';
    const button = (/** @type {string} */ text, /** @type {string} */ label) =>
      h('button', { type: 'button', text, 'aria-label': `${label} cluster ${name}` });
    const live = button('Live', 'Make live');
    const drainButton = button('Drain', 'Drain');
    const out = button('Out', 'Take out');
    const weightButton = button('Weight…', 'Set weight of');
    const previewButton = button('Preview…', 'Preview');
    // Previews pin a browser among a public site's clusters: only for clusters on a shared route.
    previewButton.hidden = !(current?.sites ?? []).some((s) =>
      s.routes.some((r) => r.traffic === 'shared' && r.clusters.includes(name)),
    );
    const charts = {
      requests: createChart('Requests/s', 'requests'),
      errors: createChart('Errors/s', 'errors'),
      latency: createChart('p99 latency', 'latency'),
    };
    const rows = h('tbody');
    const table = h(
      'table',
      { class: 'members' },
      h('caption', { class: 'visually-hidden', text: `Members of ${name}` }),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...[
            'Member',
            'State',
            'Health',
            'In flight',
            'Req/s',
            'Errors',
            'p99',
            'Sessions',
            'Oldest idle',
            'Tunnels',
            'Actions',
          ].map((t) => h('th', { scope: 'col', text: t })),
        ),
      ),
      rows,
    );
    const card = h(
      'article',
      { class: 'card cluster', 'aria-labelledby': `cluster-${name}`, 'data-cluster': name },
      h('header', {}, h('h4', { id: `cluster-${name}`, text: name }), traffic, weight, figures),
      drain,
      qa,
      preview,
      previewList,
      h(
        'div',
        { class: 'actions', role: 'group', 'aria-label': `Traffic actions for ${name}` },
        live,
        drainButton,
        out,
        weightButton,
        previewButton,
      ),
      h('div', { class: 'charts' }, charts.requests.element, charts.errors.element, charts.latency.element),
      h('div', { class: 'table-wrap', role: 'region', 'aria-label': `Members of ${name}`, tabindex: '0' }, table),
    );

    const now = () => /** @type {Status} */ (current);
    const me = () => now().clusters.find((c) => c.name === name) ?? cluster;
    const livePeers = () =>
      peersOf(now(), name)
        .filter((c) => c.traffic === 'live')
        .map((c) => c.name);
    const setTraffic =
      (/** @type {string} */ state, /** @type {Record<string, unknown>} */ extra = {}) =>
      () =>
        api('POST', `/api/clusters/${encodeURIComponent(name)}/traffic`, { state, ...extra });

    drainButton.addEventListener('click', () => {
      const peers = livePeers();
      const c = me();
      // Apache and HAProxy count no sessions (boundSessions absent): no number is made up for them.
      const counted = c.members.some((m) => m.boundSessions !== undefined);
      const sessions = c.members.reduce((n, m) => n + (m.boundSessions ?? 0), 0);
      act(
        {
          title: `Drain ${name}`,
          what: [
            peers.length
              ? `${and(peers)} will receive all new sessions.`
              : `No other cluster is live on ${name}'s routes: new sessions would have nowhere to go (the API refuses this).`,
            counted
              ? `${name} keeps serving the ${sessions} session${sessions === 1 ? '' : 's'} bound to it until they go idle or the drain deadline passes.`
              : `${name} keeps serving the sessions bound to it (the load balancer counts no sessions: the drain ends once it sent ${name} no new request for the idle window) or until the drain deadline passes.`,
          ],
          confirm: `Drain ${name}`,
          run: setTraffic('draining'),
        },
        `${name}: drain started`,
      );
    });
    out.addEventListener('click', () => {
      const peers = livePeers();
      const c = me();
      const counted = c.members.some((m) => m.boundSessions !== undefined);
      const sessions = c.members.reduce((n, m) => n + (m.boundSessions ?? 0), 0);
      const inFlight = c.members.reduce((n, m) => n + m.inFlight, 0);
      const bound = counted ? `the ${sessions} session${sessions === 1 ? '' : 's'}` : 'the sessions';
      act(
        {
          title: `Take ${name} out`,
          what: [
            `${name} will receive no requests at all: requests of ${bound} still bound to it go elsewhere (${inFlight} in flight finish).`,
            peers.length
              ? `${and(peers)} will receive all traffic.`
              : `No other cluster is live: the site would be left without traffic (the API refuses this).`,
          ],
          confirm: `Take ${name} out`,
          danger: true,
          run: setTraffic('out'),
        },
        `${name}: out`,
      );
    });
    live.addEventListener('click', () => {
      const peers = livePeers();
      act(
        {
          title: `Make ${name} live`,
          what: [
            peers.length
              ? `${name} will receive new sessions again, sharing them with ${and(peers)} by weight.`
              : `${name} will receive all new sessions.`,
          ],
          confirm: `Make ${name} live`,
          run: setTraffic('live'),
        },
        `${name}: live`,
      );
    });
    weightButton.addEventListener('click', () => {
      const c = me();
      const peers = peersOf(now(), name).filter((p) => p.traffic === 'live');
      act(
        {
          title: `Weight of ${name}`,
          what: [
            'Among the live clusters of a shared route, new sessions are split in proportion to their weights.',
            `Now: ${[c, ...peers].map((p) => `${p.name} ${p.weight}`).join(', ')}.`,
          ],
          fields: [
            field('New weight (0–1000)', {
              name: 'weight',
              type: 'number',
              min: 0,
              max: 1000,
              step: 1,
              value: c.weight,
              required: true,
            }),
          ],
          confirm: 'Set weight',
          run: (form) =>
            api('POST', `/api/clusters/${encodeURIComponent(name)}/weight`, { weight: Number(form.get('weight')) }),
        },
        `${name}: weight changed`,
      );
    });

    previewButton.addEventListener('click', () => {
      act(
        {
          title: `Preview ${name}`,
          what: [
            `A signed link that shows ${name} on the public site to the browser opening it, even while ${name} is out, with a banner saying so.`,
            'Anyone with the link can use it until it expires (or within preview.allow): `dayshift preview --revoke ID` ends it.',
          ],
          fields: [
            field(
              'Lasts',
              { name: 'for', type: 'text', value: '1h', required: true, pattern: '\\d+(ms|s|m|h|d)' },
              'a duration such as 30m or 2h',
            ),
          ],
          confirm: 'Make link',
          run: async (form) => {
            const link = await api('POST', '/api/previews', { cluster: name, for: String(form.get('for')) });
            linkId = link.id;
            preview.hidden = false;
            preview.replaceChildren(
              `Preview link (until ${new Date(link.until).toLocaleTimeString()}, id ${link.id}): `,
              h('a', { href: link.url, target: '_blank', rel: 'noopener noreferrer', text: link.url }),
            );
          },
        },
        `${name}: preview link made`,
      );
    });

    function previewItem(/** @type {Preview} */ p) {
      const revoke = h('button', {
        type: 'button',
        class: 'small',
        text: 'Revoke',
        'aria-label': `Revoke preview ${p.id}`,
      });
      revoke.addEventListener('click', () =>
        act(
          {
            title: `Revoke preview ${p.id}`,
            what: [`Browsers previewing ${name} with this link go back to public routing, on every instance.`],
            confirm: 'Revoke',
            danger: true,
            run: () => api('DELETE', `/api/previews/${encodeURIComponent(p.id)}`),
          },
          `preview ${p.id} revoked`,
        ),
      );
      return h(
        'li',
        {},
        `Preview ${p.id} until ${new Date(p.until).toLocaleTimeString()} by ${p.who}${p.allow ? ` for ${p.allow.join(', ')}` : ''} `,
        revoke,
      );
    }

    /** @type {Map<string, { row: HTMLElement, cells: HTMLElement[], state: HTMLElement, health: HTMLElement, buttons: Record<string, HTMLElement> }>} */
    const memberRows = new Map();
    const MEMBER_ACTIONS = /** @type {const} */ ([
      [
        'draining',
        'Drain',
        (/** @type {string} */ m) => [
          `${m} takes only requests of the sessions bound to it; new sessions go to the other members of ${name}.`,
        ],
      ],
      [
        'disabled',
        'Disable',
        (/** @type {string} */ m) => [
          `${m} receives no requests at all; its sessions move to the other members of ${name}.`,
        ],
      ],
      ['ready', 'Enable', (/** @type {string} */ m) => [`${m} takes new sessions again.`]],
      [
        'standby',
        'Standby',
        (/** @type {string} */ m) => [`${m} is used only when no ready member of its route can serve.`],
      ],
    ]);
    function memberRow(/** @type {Member} */ member) {
      const label = `${name}/${member.id}`;
      const state = badge(member.admin);
      const health = badge(member.health);
      const cells = ['In flight', 'Req/s', 'Errors', 'p99', 'Sessions', 'Oldest idle', 'Tunnels'].map((label) =>
        h('td', { class: 'n', 'data-label': label }),
      );
      /** @type {Record<string, HTMLElement>} */
      const buttons = {};
      for (const [target, text, what] of MEMBER_ACTIONS) {
        const b = h('button', { type: 'button', class: 'small', text, 'aria-label': `${text} member ${label}` });
        b.addEventListener('click', () =>
          act(
            {
              title: `${text} ${label}`,
              what: what(label),
              confirm: `${text} ${label}`,
              danger: target === 'disabled',
              run: () =>
                api('POST', `/api/members/${encodeURIComponent(name)}/${encodeURIComponent(member.id)}/state`, {
                  state: target,
                }),
            },
            `${label}: ${target}`,
          ),
        );
        buttons[target] = b;
      }
      const row = h(
        'tr',
        { 'data-member': member.key },
        h(
          'th',
          { scope: 'row' },
          h('span', { class: 'member-id', text: member.id }),
          h('small', { class: 'muted url', text: member.url }),
        ),
        h('td', { 'data-label': 'State' }, state),
        h('td', { 'data-label': 'Health' }, health),
        ...cells,
        h('td', { class: 'row-actions' }, ...Object.values(buttons)),
      );
      return { row, cells, state, health, buttons };
    }

    return {
      card,
      charts,
      update(/** @type {Cluster} */ c) {
        setBadge(traffic, c.traffic);
        setText(weight, `weight ${c.weight}`);
        setText(figures, `${num(c.requestsPerSecond)} req/s · ${percent(c.errorRate)} errors · p99 ${ms(c.p99Ms)}`);
        live.toggleAttribute('disabled', c.traffic === 'live');
        drainButton.toggleAttribute('disabled', c.traffic === 'draining');
        out.toggleAttribute('disabled', c.traffic === 'out');
        if (c.drain && c.traffic === 'draining') {
          const d = c.drain;
          drain.hidden = false;
          setText(
            drain,
            d.drained
              ? `Drained${d.reason === 'deadline' ? ' (deadline reached)' : ''} after ${duration(Date.now() - Date.parse(c.drainingSince ?? d.since ?? ''))} — safe to take out.`
              : `Draining ${duration(Date.now() - Date.parse(c.drainingSince ?? d.since ?? ''))}: ${drainFigures(d)}${d.remainingMs !== undefined ? ` · deadline in ${duration(d.remainingMs)}` : ''}`,
          );
        } else drain.hidden = true;
        // Rebuilt only when the previews change, so that a focused Revoke button stays put.
        const mine = (now().previews ?? []).filter((p) => p.cluster === name);
        const ids = mine.map((p) => p.id).join(' ');
        if (ids !== previewIds) {
          previewIds = ids;
          previewList.hidden = mine.length === 0;
          previewList.replaceChildren(...mine.map(previewItem));
          if (linkId && !mine.some((p) => p.id === linkId)) preview.hidden = true;
        }
        qa.hidden = !c.qaUrl;
        if (c.qaUrl && qa.querySelector('a')?.getAttribute('href') !== c.qaUrl)
          qa.replaceChildren(
            'QA: ',
            h('a', { href: c.qaUrl, target: '_blank', rel: 'noopener noreferrer', text: c.qaUrl }),
          );
        const seen = new Set();
        for (const m of c.members) {
          seen.add(m.key);
          let r = memberRows.get(m.key);
          if (!r) {
            r = memberRow(m);
            memberRows.set(m.key, r);
            rows.append(r.row);
          }
          setBadge(r.state, m.admin);
          setBadge(r.health, m.health);
          const values = [
            num(m.inFlight, 0),
            num(m.requestsPerSecond),
            percent(m.errorRate),
            ms(m.p99Ms),
            m.boundSessions === undefined ? '–' : num(m.boundSessions, 0),
            duration(m.oldestIdleMs),
            m.openTunnels === undefined ? '–' : num(m.openTunnels, 0),
          ];
          values.forEach((v, i) => setText(/** @type {HTMLElement} */ (r.cells[i]), v));
          for (const [target, b] of Object.entries(r.buttons)) b.toggleAttribute('disabled', m.admin === target);
        }
        for (const [key, r] of memberRows) {
          if (seen.has(key)) continue;
          r.row.remove();
          memberRows.delete(key);
        }
      },
    };
  }

  async function refreshCharts() {
    if (!current) return;
    await Promise.all(
      [...clusters.entries()].map(async ([name, card]) => {
        /** @type {{ at: number, requestsPerSecond: number, errorsPerSecond: number, p99Ms?: number }[]} */
        const points = await api('GET', `/api/history/${encodeURIComponent(name)}`);
        card.charts.requests.draw(
          points.map((p) => p.requestsPerSecond),
          (v) => `${num(v)} /s`,
        );
        card.charts.errors.draw(
          points.map((p) => p.errorsPerSecond),
          (v) => `${num(v, 2)} /s`,
        );
        card.charts.latency.draw(
          points.map((p) => p.p99Ms ?? undefined),
          ms,
        );
      }),
    );
  }

  return {
    /** @param {Status} status */
    update(status) {
      const previous = current;
      current = status;
      setText(updated, `Updated ${new Date(status.at).toLocaleTimeString()} · driver ${status.driver}`);
      warnings.hidden = status.warnings.length === 0;
      warnings.replaceChildren(...status.warnings.map((w) => h('li', { text: w })));
      sync(sites, status.sites, sitesList, siteCard);
      shadow.update(status.shadow);
      workers.update(status.workers);
      const known = clusters.size;
      sync(clusters, status.clusters, clustersList, clusterCard);
      // New cluster cards get their charts at once rather than at the next periodic refresh.
      if (clusters.size !== known) void refreshCharts().catch(() => undefined);
      if (previous) {
        for (const c of status.clusters) {
          const before = previous.clusters.find((p) => p.name === c.name);
          if (before && before.traffic !== c.traffic) announce(`${c.name} is now ${c.traffic}`);
          if (before?.drain && !before.drain.drained && c.drain?.drained) announce(`${c.name} is drained`);
          for (const m of c.members) {
            const was = before?.members.find((x) => x.key === m.key);
            if (was && was.admin !== m.admin) announce(`${m.key} is now ${m.admin}`);
            if (was && was.health !== m.health) announce(`${m.key} health ${m.health}`);
          }
        }
      }
    },
    refreshCharts,
  };
}

/**
 * Keeps one card per named item, in order, updating in place so focus and reading position survive.
 * @template {{ name: string }} T
 * @template {{ card: HTMLElement, update: (item: T) => void }} C
 * @param {Map<string, C>} cards
 * @param {T[]} items
 * @param {HTMLElement} parent
 * @param {(item: T) => C} create
 */
function sync(cards, items, parent, create) {
  const names = new Set(items.map((i) => i.name));
  for (const [name, c] of cards) {
    if (names.has(name)) continue;
    c.card.remove();
    cards.delete(name);
  }
  for (const item of items) {
    let c = cards.get(item.name);
    if (!c) {
      c = create(item);
      cards.set(item.name, c);
      parent.append(c.card);
    }
    c.update(item);
  }
}
