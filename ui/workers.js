// The workers panel: with `workers` ≥ 2, each worker process of this instance, updated from each `status`
// event — which serve, since when, how often each was replaced and how its last process ended.
import { badge, h, setBadge, setText, time } from './dom.js';

/**
 * @typedef {{ pid: number, at: string, signal?: string, code?: number }} WorkerExit
 * @typedef {{ worker: number, pid: number, state: string, startedAt: string, restarts: number, lastExit?: WorkerExit }} Worker
 */

const COLUMNS = ['Worker', 'PID', 'State', 'Started', 'Restarts', 'Last exit'];

/** @param {(message: string) => void} announce */
export function createWorkersPanel(announce) {
  const summary = h('p', { class: 'muted' });
  const rows = h('tbody');
  const element = h(
    'section',
    { class: 'card workers', 'aria-labelledby': 'workers-title', hidden: true },
    h('header', {}, h('h3', { id: 'workers-title', class: 'sub', text: 'Workers' }), summary),
    h(
      'div',
      { class: 'table-wrap', role: 'region', 'aria-label': 'Worker processes', tabindex: '0' },
      h(
        'table',
        { class: 'members' },
        h('caption', { class: 'visually-hidden', text: 'Worker processes serving the proxy listeners' }),
        h('thead', {}, h('tr', {}, ...COLUMNS.map((t) => h('th', { scope: 'col', text: t })))),
        rows,
      ),
    ),
  );
  /** @type {Map<number, { row: HTMLElement, state: HTMLElement, cells: HTMLElement[], restarts: number }>} */
  const shown = new Map();

  function row(/** @type {Worker} */ w) {
    const state = badge(w.state);
    const pid = h('td', { 'data-label': 'PID' });
    const started = h('td', { 'data-label': 'Started' });
    const restarts = h('td', { 'data-label': 'Restarts' });
    const exit = h('td', { 'data-label': 'Last exit' });
    const tr = h(
      'tr',
      { 'data-worker': String(w.worker) },
      h('th', { scope: 'row', text: String(w.worker) }),
      pid,
      h('td', { 'data-label': 'State' }, state),
      started,
      restarts,
      exit,
    );
    return { row: tr, state, cells: [pid, started, restarts, exit], restarts: w.restarts };
  }

  return {
    element,
    /** @param {Worker[] | undefined} workers */
    update(workers) {
      element.hidden = !workers;
      if (!workers) return;
      const serving = workers.filter((w) => w.state === 'serving').length;
      setText(summary, `${serving} of ${workers.length} serving`);
      for (const w of workers) {
        let r = shown.get(w.worker);
        if (!r) {
          r = row(w);
          shown.set(w.worker, r);
          rows.append(r.row);
        } else if (w.restarts > r.restarts) announce(`worker ${w.worker} replaced: pid ${w.pid}`);
        r.restarts = w.restarts;
        setBadge(r.state, w.state);
        const exit = w.lastExit;
        [
          String(w.pid),
          time(w.startedAt),
          String(w.restarts),
          exit ? `${exit.signal ?? `exit code ${exit.code}`} (pid ${exit.pid}) ${time(exit.at)}` : '–',
        ].forEach((text, i) => setText(/** @type {HTMLElement} */ (r.cells[i]), text));
      }
    },
  };
}
