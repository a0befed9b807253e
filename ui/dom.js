// DOM and formatting helpers shared by the dashboard's views.

/**
 * Creates an element. `attrs`: `class`, `text`, `on<event>` handlers, booleans (set when true), anything
 * else as an attribute. Children are nodes or strings; null/undefined/false are skipped.
 * @param {string} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...(Node | string | null | undefined | false)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') el.textContent = String(value);
    else if (key.startsWith('on') && typeof value === 'function')
      el.addEventListener(key.slice(2), /** @type {EventListener} */ (value));
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) if (child !== null && child !== undefined && child !== false) el.append(child);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * @param {string} tag
 * @param {Record<string, string | number>} [attrs]
 * @returns {SVGElement}
 */
export function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  return el;
}

/** Sets text only when it changed, so screen readers and selections are not disturbed every second. */
export function setText(/** @type {Element} */ el, /** @type {string} */ text) {
  if (el.textContent !== text) el.textContent = text;
}

/** @param {number | undefined | null} ms */
export function duration(ms) {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return '–';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/**
 * What a drain still holds, saying what it rests on: the sessions Dayshift's proxy saw, or (Apache,
 * HAProxy: no session count) the load balancer's count of new requests.
 * @param {{ basis?: string, inFlight: number, sessions?: number, oldestIdleMs?: number, lastRequestMs?: number, idleMs?: number, tunnels: number }} d
 */
export function drainFigures(d) {
  if (d.basis === 'requests') {
    return `${d.inFlight} in flight, no new request for ${duration(d.lastRequestMs)} by the load balancer's count (drained after ${duration(d.idleMs)})`;
  }
  const sessions = d.sessions ?? 0;
  return `${sessions} session${sessions === 1 ? '' : 's'} left, ${d.inFlight} in flight, oldest idle ${duration(d.oldestIdleMs)}${d.tunnels ? `, ${d.tunnels} tunnels` : ''}`;
}

/** @param {number | undefined | null} value @param {number} [digits] */
export function num(value, digits = 1) {
  if (value === undefined || value === null || !Number.isFinite(value)) return '–';
  return value.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

/** @param {number | undefined | null} rate 0..1 */
export function percent(rate) {
  if (rate === undefined || rate === null || !Number.isFinite(rate)) return '–';
  return `${(rate * 100).toLocaleString(undefined, { maximumFractionDigits: rate < 0.01 && rate > 0 ? 2 : 1 })}%`;
}

/** @param {number | undefined | null} value */
export function ms(value) {
  return value === undefined || value === null ? '–' : `${num(value, value < 10 ? 1 : 0)} ms`;
}

/** @param {string | undefined} iso */
export function time(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return d.toLocaleString(undefined, {
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

/** Time between two ISO instants (the second defaulting to now). @param {string | undefined} from @param {string | undefined} [to] */
export function elapsed(from, to) {
  if (!from) return '–';
  return duration((to ? Date.parse(to) : Date.now()) - Date.parse(from));
}

/** A coloured state label; the colour is decoration, the word carries the meaning. */
export function badge(/** @type {string} */ state) {
  return h('span', { class: `badge badge-${state}`, text: state });
}

/** @param {Element} el @param {string} state */
export function setBadge(el, state) {
  el.className = `badge badge-${state}`;
  setText(el, state);
}
