// The audit log view: every change, who made it, from where, newest first.
import { api, oneAtATime } from './api.js';
import { h, time } from './dom.js';

/** @param {HTMLElement} root */
export function createAuditView(root) {
  const body = h('tbody');
  const refreshButton = h('button', { type: 'button', text: 'Refresh' });
  root.append(
    h('div', { class: 'section-head' }, h('h2', { text: 'Audit log' }), refreshButton),
    h(
      'div',
      { class: 'table-wrap', role: 'region', 'aria-label': 'Audit log entries', tabindex: '0' },
      h(
        'table',
        { class: 'audit' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['When', 'Who', 'From', 'Action', 'Target', 'Detail'].map((t) => h('th', { scope: 'col', text: t })),
          ),
        ),
        body,
      ),
    ),
  );
  let last = '';
  const refresh = oneAtATime(read);
  async function read() {
    /** @type {{ at: string, who: string, from: string, action: string, target: string, detail?: Record<string, unknown> }[]} */
    const entries = await api('GET', '/api/audit?limit=200');
    const key = JSON.stringify(entries.at(-1) ?? null) + entries.length;
    if (key === last) return;
    last = key;
    body.replaceChildren(
      ...(entries.length === 0
        ? [h('tr', {}, h('td', { colspan: '6', class: 'muted', text: 'No changes recorded yet.' }))]
        : [...entries]
            .reverse()
            .map((e) =>
              h(
                'tr',
                {},
                h('td', { text: time(e.at) }),
                h('td', { text: e.who }),
                h('td', { text: e.from }),
                h('td', { text: e.action }),
                h('th', { scope: 'row', text: e.target }),
                h('td', { class: 'detail', text: e.detail ? JSON.stringify(e.detail) : '' }),
              ),
            )),
    );
  }
  refreshButton.addEventListener('click', () => void refresh());
  return { refresh };
}
