// Small inline-SVG line charts of a cluster's recent requests/s, errors/s and p99 latency.
import { h, setText, svg } from './dom.js';

const W = 300;
const H = 64;

/**
 * A chart that can be redrawn in place.
 * @param {string} title
 * @param {string} kind requests | errors | latency (colour)
 */
export function createChart(title, kind) {
  const area = svg('path', { class: 'chart-area' });
  const line = svg('path', { class: 'chart-line' });
  const grid = svg('line', { class: 'chart-grid', x1: 0, x2: W, y1: H - 0.5, y2: H - 0.5 });
  const graphic = svg('svg', {
    viewBox: `0 0 ${W} ${H}`,
    preserveAspectRatio: 'none',
    role: 'img',
    focusable: 'false',
  });
  graphic.append(grid, area, line);
  const now = h('span', { class: 'chart-now' });
  const peak = h('span', { class: 'chart-peak' });
  const figure = h(
    'figure',
    { class: `chart chart-${kind}` },
    h('figcaption', {}, h('span', { text: title }), now),
    graphic,
    peak,
  );

  /**
   * @param {(number | undefined)[]} values oldest first, one per second
   * @param {(v: number | undefined) => string} format
   */
  function draw(values, format) {
    const known = values.filter((v) => v !== undefined && Number.isFinite(v));
    const max = Math.max(1e-9, ...known.map(Number));
    const n = Math.max(2, values.length);
    const x = (/** @type {number} */ i) => ((i / (n - 1)) * W).toFixed(1);
    const y = (/** @type {number} */ v) => (H - 2 - (v / max) * (H - 6)).toFixed(1);
    let d = '';
    values.forEach((v, i) => {
      if (v === undefined || !Number.isFinite(v)) return;
      d += `${d === '' ? 'M' : 'L'}${x(i)} ${y(v)}`;
    });
    line.setAttribute('d', d);
    area.setAttribute(
      'd',
      d === '' ? '' : `${d}L${x(values.length - 1)} ${H}L${x(values.findIndex((v) => v !== undefined))} ${H}Z`,
    );
    const last = values.at(-1);
    setText(now, format(last));
    setText(
      peak,
      known.length
        ? `peak ${format(Math.max(...known.map(Number)))} · last ${Math.round(values.length / 60) || 1} min`
        : 'no data yet',
    );
    graphic.setAttribute(
      'aria-label',
      `${title} over the last ${Math.max(1, Math.round(values.length / 60))} minutes: now ${format(last)}, peak ${known.length ? format(Math.max(...known.map(Number))) : 'none'}`,
    );
  }
  return { element: figure, draw };
}
