// The shadow panel: the comparison of live and shadow answers (`dayshift shadow`), updated from each
// `status` event, with a Stop button while it copies.
import { api } from './api.js';
import { confirmAction } from './dialog.js';
import { h, ms, num, percent, setText } from './dom.js';

/**
 * @typedef {{ '1xx': number, '2xx': number, '3xx': number, '4xx': number, '5xx': number, failed: number }} Classes
 * @typedef {{ requests: number, classes: Classes, rate5xx: number, p50Ms?: number, p90Ms?: number, p99Ms?: number }} Side
 * @typedef {{ site: string, route: string, live: Side, shadow: Side, differences: string[] }} RouteComparison
 * @typedef {{ cluster: string, percent: number, methods: string[], started: string, until: string, who: string, active: boolean,
 *   copies: { sent: number, dropped: number, compared: number, inFlight: number, queued: number }, live: Side, shadow: Side,
 *   routes: RouteComparison[] }} Shadow
 */

const COLUMNS = ['', 'Requests', '2xx', '3xx', '4xx', '5xx', 'Failed', '5xx rate', 'p50', 'p90', 'p99'];

/** @param {(message: string) => void} announce */
export function createShadowPanel(announce) {
  const summary = h('p', { class: 'muted' });
  const copies = h('p', { class: 'muted' });
  const sides = h('tbody');
  const routes = h('ul', { class: 'shadow-routes', 'aria-label': 'Status classes per route, live → shadow' });
  const stop = h('button', { type: 'button', class: 'danger', text: 'Stop shadow' });
  /** @type {Shadow | undefined} */
  let current;
  stop.addEventListener('click', () => {
    const cluster = current?.cluster;
    if (!cluster) return;
    void confirmAction({
      title: `Stop the shadow to ${cluster}`,
      what: ['Every instance stops copying requests; the figures stay readable until the next shadow.'],
      confirm: 'Stop',
      danger: true,
      run: () => api('DELETE', `/api/shadow?cluster=${encodeURIComponent(cluster)}`),
    }).then((ok) => ok && announce(`shadow to ${cluster} stopped`));
  });
  const element = h(
    'section',
    { class: 'card shadow', 'aria-labelledby': 'shadow-title', hidden: true },
    h('header', {}, h('h3', { id: 'shadow-title', class: 'sub', text: 'Shadow traffic' }), summary),
    copies,
    h(
      'div',
      { class: 'table-wrap', role: 'region', 'aria-label': 'Live and shadow answers', tabindex: '0' },
      h(
        'table',
        { class: 'members' },
        h('caption', { class: 'visually-hidden', text: 'Live and shadow answers to the same requests' }),
        h('thead', {}, h('tr', {}, ...COLUMNS.map((t) => h('th', { scope: 'col', text: t })))),
        sides,
      ),
    ),
    routes,
    h('div', { class: 'actions' }, stop),
  );

  const row = (/** @type {string} */ name, /** @type {Side} */ s) =>
    h(
      'tr',
      {},
      h('th', { scope: 'row', text: name }),
      ...[
        num(s.requests, 0),
        num(s.classes['2xx'], 0),
        num(s.classes['3xx'], 0),
        num(s.classes['4xx'], 0),
        num(s.classes['5xx'], 0),
        num(s.classes.failed, 0),
        percent(s.rate5xx),
        ms(s.p50Ms),
        ms(s.p90Ms),
        ms(s.p99Ms),
      ].map((text) => h('td', { text })),
    );

  return {
    element,
    /** @param {Shadow | undefined} shadow */
    update(shadow) {
      const was = current;
      current = shadow;
      element.hidden = !shadow;
      if (!shadow) return;
      if (was?.active && !shadow.active && was.started === shadow.started)
        announce(`shadow to ${shadow.cluster} ended`);
      setText(
        summary,
        `${shadow.percent}% of ${shadow.methods.join(', ')} → ${shadow.cluster} · ${shadow.active ? `copying until ${new Date(shadow.until).toLocaleTimeString()}` : `ended ${new Date(shadow.until).toLocaleTimeString()}`} · by ${shadow.who}`,
      );
      const c = shadow.copies;
      setText(
        copies,
        `This instance: ${c.sent} sent, ${c.compared} compared, ${c.dropped} dropped (queue full), ${c.inFlight} in flight, ${c.queued} queued`,
      );
      sides.replaceChildren(row('live', shadow.live), row('shadow', shadow.shadow));
      routes.replaceChildren(
        ...shadow.routes.map((r) =>
          h('li', {
            text: `${r.site} ${r.route}: ${r.shadow.requests} compared, p99 ${ms(r.live.p99Ms)} → ${ms(r.shadow.p99Ms)}, ${r.differences.length > 0 ? r.differences.join(', ') : 'same status classes'}`,
            class: r.differences.length > 0 ? 'differs' : '',
          }),
        ),
      );
      stop.hidden = !shadow.active;
    },
  };
}
