// The release view: the current release's steps with states and durations, the drain countdown, hook
// output, QA links, Approve / Abort / Resume / Retry; starting a release; the history.
import { api, ApiError, oneAtATime } from './api.js';
import { confirmAction } from './dialog.js';
import { badge, drainFigures, duration, elapsed, h, ms, num, percent, setBadge, setText, time } from './dom.js';

/**
 * @typedef {{ id: string, kind: string, cluster?: string, title: string, state: string, repeatable: boolean, startedAt?: string, endedAt?: string, detail?: string, output?: string[],
 *   approvesAt?: string, approvedBy?: string }} Step
 * @typedef {{ requestsPerSecond: number, errorRate: number, p99Ms?: number }} Figures
 * @typedef {{ cluster: string, percent: number, released: Figures, baseline: Figures, breach?: string }} Canary
 * @typedef {{ id: string, version: string, state: string, startedBy: string, startedAt: string, endedAt?: string, steps: Step[], current: number,
 *   before: Record<string, { traffic: string, weight: number }>,
 *   drain?: import('./overview.js').Drain & { target: string }, canary?: Canary, shadow?: import('./shadow.js').Shadow, qaUrls: Record<string, string>, reason?: string, abortedBy?: string }} Release
 */

const ACTIVE = new Set(['running', 'awaiting-approval', 'failed', 'interrupted']);

/**
 * @param {HTMLElement} root
 * @param {(message: string) => void} announce
 * @param {(state: string | undefined) => void} onState tells the navigation what the release is doing
 */
export function createReleaseView(root, announce, onState) {
  const versionInput = h('input', {
    id: 'release-version',
    name: 'version',
    required: true,
    maxlength: 100,
    placeholder: '2.4.1',
    autocomplete: 'off',
  });
  const startForm = h(
    'form',
    { class: 'card start-release', 'aria-labelledby': 'start-title' },
    h('h3', { id: 'start-title', text: 'Start a release' }),
    h(
      'div',
      { class: 'field inline' },
      h('label', { for: 'release-version', text: 'Version' }),
      versionInput,
      h('button', { type: 'submit', class: 'primary', text: 'Start release…' }),
    ),
  );
  const title = h('h3', { id: 'current-title' });
  const state = badge('none');
  const meta = h('p', { class: 'muted' });
  const reason = h('p', { class: 'reason', hidden: true, role: 'alert' });
  const drain = h('div', { class: 'drain', hidden: true });
  const canary = h('div', { class: 'drain', hidden: true });
  const shadow = h('div', { class: 'drain', hidden: true });
  const qa = h('div', { class: 'qa', hidden: true });
  const buttons = {
    approve: h('button', { type: 'button', class: 'primary', text: 'Approve' }),
    abort: h('button', { type: 'button', class: 'danger', text: 'Abort' }),
    resume: h('button', { type: 'button', text: 'Resume' }),
    retry: h('button', { type: 'button', text: 'Retry step' }),
  };
  const steps = h('ol', { class: 'steps' });
  const currentCard = h(
    'article',
    { class: 'card current-release', 'aria-labelledby': 'current-title', hidden: true },
    h('header', {}, title, state),
    meta,
    reason,
    drain,
    canary,
    shadow,
    qa,
    h('div', { class: 'actions', role: 'group', 'aria-label': 'Release actions' }, ...Object.values(buttons)),
    h('h4', { text: 'Steps' }),
    steps,
  );
  const historyBody = h('tbody');
  const history = h(
    'section',
    { 'aria-labelledby': 'history-title' },
    h('h3', { id: 'history-title', class: 'sub', text: 'History' }),
    h(
      'div',
      { class: 'table-wrap', role: 'region', 'aria-label': 'Release history', tabindex: '0' },
      h(
        'table',
        {},
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['Version', 'Outcome', 'Started by', 'Started', 'Ended', 'Took', 'Steps'].map((t) =>
              h('th', { scope: 'col', text: t }),
            ),
          ),
        ),
        historyBody,
      ),
    ),
  );
  root.append(h('div', { class: 'section-head' }, h('h2', { text: 'Release' })), currentCard, startForm, history);

  /** @type {Release | null} */
  let release = null;
  /** @type {Map<string, { li: HTMLElement, state: HTMLElement, took: HTMLElement, detail: HTMLElement, output: HTMLElement, pre: HTMLElement }>} */
  const stepItems = new Map();

  const run = (
    /** @type {string} */ verb,
    /** @type {string} */ label,
    /** @type {string[]} */ what,
    /** @type {boolean} */ danger,
    body = {},
  ) => {
    if (!release) return;
    const version = release.version;
    confirmAction({
      title: `${label} release ${version}`,
      what,
      confirm: label,
      danger,
      run: () => api('POST', `/api/release/${verb}`, body),
    }).then(async (ok) => {
      if (!ok) return;
      announce(`Release ${version}: ${verb} sent`);
      await refresh();
    });
  };
  buttons.approve.addEventListener('click', () => {
    const step = release?.steps[release.current];
    run(
      'approve',
      'Approve',
      [
        `The release continues past “${step?.title ?? 'the approval gate'}”: traffic moves to the new version as the plan says.`,
      ],
      false,
    );
  });
  buttons.abort.addEventListener('click', () => {
    const before = Object.entries(release?.before ?? {})
      .filter(([, v]) => v.traffic === 'live')
      .map(([k, v]) => `${k} (weight ${v.weight})`);
    run(
      'abort',
      'Abort',
      [
        'The release stops now and the rollback hook runs.',
        `Traffic returns to the clusters that were live before it${before.length ? `: ${before.join(', ')}` : ''}.`,
      ],
      true,
    );
  });
  buttons.resume.addEventListener('click', () => {
    const step = release?.steps[release.current];
    // The conductor asks before repeating a step that is not safe to repeat: this dialog is that question.
    const unsafe = step !== undefined && !step.repeatable && step.state !== 'pending';
    run(
      'resume',
      'Resume',
      [
        `The release continues at the interrupted step “${step?.title ?? ''}”.`,
        ...(unsafe ? ['That step may have partly run and is not marked safe to repeat: resuming runs it again.'] : []),
      ],
      unsafe,
      unsafe ? { yes: true } : {},
    );
  });
  buttons.retry.addEventListener('click', () =>
    run('retry', 'Retry', [`The failed step “${release?.steps[release.current]?.title ?? ''}” runs again.`], false),
  );

  startForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const version = /** @type {HTMLInputElement} */ (versionInput).value.trim();
    if (!version) return;
    confirmAction({
      title: `Start release ${version}`,
      what: [
        `Dayshift runs the release plan for version ${version}: each cluster in turn is drained, taken out, deployed, checked and, after approval, given the traffic.`,
      ],
      confirm: 'Start release',
      run: () => api('POST', '/api/release/start', { version }),
    }).then(async (ok) => {
      if (!ok) return;
      /** @type {HTMLInputElement} */ (versionInput).value = '';
      announce(`Release ${version} started`);
      await refresh();
    });
  });

  function stepItem(/** @type {Step} */ step) {
    const s = badge(step.state);
    const took = h('span', { class: 'took muted' });
    const detail = h('p', { class: 'detail', hidden: true });
    const pre = h('pre', {});
    const output = h('details', { hidden: true }, h('summary', { text: 'Output' }), pre);
    const li = h(
      'li',
      { class: 'step', 'data-step': step.id },
      h('div', { class: 'step-head' }, s, h('span', { class: 'step-title', text: step.title }), took),
      detail,
      output,
    );
    return { li, state: s, took, detail, output, pre };
  }

  function render(/** @type {Release | null} */ next) {
    const previous = release;
    release = next;
    onState(next && ACTIVE.has(next.state) ? next.state : undefined);
    startForm.hidden = Boolean(next && ACTIVE.has(next.state));
    currentCard.hidden = !next;
    if (!next) return;
    if (previous && previous.id === next.id && previous.state !== next.state)
      announce(`Release ${next.version} is now ${next.state}`);
    setText(title, `Version ${next.version}`);
    setBadge(state, next.state);
    const took = next.endedAt
      ? `took ${elapsed(next.startedAt, next.endedAt)}`
      : next.state === 'running' || next.state === 'awaiting-approval'
        ? `running for ${elapsed(next.startedAt)}`
        : `started ${elapsed(next.startedAt)} ago`;
    setText(
      meta,
      `Started by ${next.startedBy} at ${time(next.startedAt)} · ${took}${next.abortedBy && !next.reason?.includes(next.abortedBy) ? ` · aborted by ${next.abortedBy}` : ''}`,
    );
    reason.hidden = !next.reason;
    setText(reason, next.reason ?? '');
    buttons.approve.hidden = next.state !== 'awaiting-approval';
    buttons.abort.hidden = !ACTIVE.has(next.state);
    buttons.resume.hidden = next.state !== 'interrupted';
    buttons.retry.hidden = next.state !== 'failed';
    const d = next.drain;
    drain.hidden = !d || next.state === 'succeeded' || next.state === 'aborted';
    if (d) {
      setText(
        drain,
        d.drained
          ? `${d.target} drained${d.reason === 'deadline' ? ' (deadline reached)' : ''}.`
          : `Draining ${d.target}: ${drainFigures(d)}${d.remainingMs !== undefined ? ` · deadline in ${duration(d.remainingMs)}` : ''}`,
      );
    }
    const c = next.canary;
    canary.hidden = !c || !ACTIVE.has(next.state);
    if (c) {
      const figures = (/** @type {Figures} */ f) =>
        `${num(f.requestsPerSecond)} req/s, ${percent(f.errorRate)} errors, p99 ${ms(f.p99Ms)}`;
      setText(
        canary,
        `Canary: ${c.cluster} takes ${c.percent}% of new sessions · ${figures(c.released)}; the others ${figures(c.baseline)}${c.breach ? ` · rolled back: ${c.breach}` : ''}`,
      );
    }
    const sh = next.shadow;
    shadow.hidden = !sh || !ACTIVE.has(next.state);
    if (sh) {
      const side = (/** @type {import('./shadow.js').Side} */ f) =>
        `${num(f.requests, 0)} answers, ${percent(f.rate5xx)} 5xx, p99 ${ms(f.p99Ms)}`;
      setText(
        shadow,
        `Shadow: ${sh.percent}% of requests copied to ${sh.cluster} · live ${side(sh.live)}; shadow ${side(sh.shadow)}${sh.copies.dropped ? ` · ${sh.copies.dropped} dropped` : ''}`,
      );
    }
    const qaEntries = Object.entries(next.qaUrls ?? {});
    qa.hidden = qaEntries.length === 0;
    qa.replaceChildren(
      h('span', { text: 'QA: ' }),
      ...qaEntries.flatMap(([cluster, url], i) => [
        i ? ' · ' : '',
        h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', text: `${cluster} (${url})` }),
      ]),
    );
    if (previous?.id !== next.id) {
      steps.replaceChildren();
      stepItems.clear();
    }
    next.steps.forEach((step, i) => {
      let item = stepItems.get(step.id);
      if (!item) {
        item = stepItem(step);
        stepItems.set(step.id, item);
        steps.append(item.li);
      }
      setBadge(item.state, step.state);
      item.li.classList.toggle('current', i === next.current && ACTIVE.has(next.state));
      if (i === next.current && ACTIVE.has(next.state)) item.li.setAttribute('aria-current', 'step');
      else item.li.removeAttribute('aria-current');
      setText(
        item.took,
        step.startedAt ? (step.endedAt ? elapsed(step.startedAt, step.endedAt) : `${elapsed(step.startedAt)}…`) : '',
      );
      const notes = [
        step.detail,
        step.approvedBy ? `approved by ${step.approvedBy}` : undefined,
        step.approvesAt && step.state === 'waiting'
          ? `approves automatically at ${time(step.approvesAt)} (in ${duration(Date.parse(step.approvesAt) - Date.now())})`
          : undefined,
      ].filter(Boolean);
      item.detail.hidden = notes.length === 0;
      setText(item.detail, notes.join(' · '));
      item.output.hidden = !step.output?.length;
      setText(item.pre, (step.output ?? []).join('\n'));
    });
  }

  /** @param {Release[]} list newest first */
  function renderHistory(list) {
    historyBody.replaceChildren(
      ...(list.length === 0
        ? [h('tr', {}, h('td', { colspan: '7', class: 'muted', text: 'No releases yet.' }))]
        : list.map((r) =>
            h(
              'tr',
              {},
              h('th', { scope: 'row', text: r.version }),
              h('td', {}, badge(r.state)),
              h('td', { text: r.startedBy }),
              h('td', { text: time(r.startedAt) }),
              h('td', { text: time(r.endedAt) }),
              h('td', { text: r.endedAt ? elapsed(r.startedAt, r.endedAt) : '–' }),
              h(
                'td',
                {},
                h(
                  'details',
                  {},
                  h('summary', { text: `${r.steps.length} steps` }),
                  h(
                    'ul',
                    { class: 'step-times' },
                    ...r.steps.map((s) =>
                      h('li', {
                        text: `${s.title}: ${s.state}${s.startedAt ? `, ${elapsed(s.startedAt, s.endedAt)}` : ''}`,
                      }),
                    ),
                  ),
                ),
              ),
            ),
          )),
    );
  }

  let historyVersion = '';
  // Reads never overlap, so an older answer is never drawn over a newer one.
  const refresh = oneAtATime(read);

  async function read() {
    /** @type {Release | null} */
    let next = null;
    try {
      next = await api('GET', '/api/release');
    } catch (err) {
      // 404: there has been no release yet.
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
    // The history only changes when a release starts or changes state.
    const key = `${next?.id ?? ''}:${next?.state ?? ''}`;
    if (key !== historyVersion) {
      /** @type {Release[]} */
      const list = await api('GET', '/api/releases');
      renderHistory(list);
      // The journal is written just after the state changes: until it shows this state, read it again.
      if (!next || (list[0]?.id === next.id && list[0]?.state === next.state)) historyVersion = key;
    }
    render(next);
  }

  /**
   * Follows /api/release/events: any event means the release changed, so it is read again at once
   * (the timer in app.js still reads it every second on this view, for the durations and countdowns).
   * @returns {() => void} closes the stream
   */
  function follow() {
    const source = new EventSource('/api/release/events');
    const changed = () => void refresh().catch(() => undefined);
    source.addEventListener('message', changed);
    source.addEventListener('release', changed);
    return () => source.close();
  }

  return { refresh, follow };
}
