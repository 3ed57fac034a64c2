// chart: small SVG bar charts for the admin console's statistics, drawn
// here rather than with a chart library (a few dozen lines; the bundle
// stays hls.js plus the app). Each chart is a <figure>: the SVG is an image
// (role="img") named by its <title> and described by its <desc>, every bar
// carries its label and value (a <title> tooltip and data-value), and a
// visually hidden table beside it gives screen readers the same numbers.

import { h } from './dom';

const NS = 'http://www.w3.org/2000/svg';
let seq = 0;

type SvgAttrs = Record<string, string | number>;

function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs: SvgAttrs = {}, ...children: (Node | string)[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

export interface Bar {
  label: string; // the category: a day, a track
  value: number;
}

export interface ChartOptions {
  title: string; // names the chart (SVG <title>, the figure's caption)
  desc: string; // one sentence on what it shows and its extremes
  bars: Bar[];
  labelHeader: string; // column headers of the hidden table
  valueHeader: string;
  horizontal?: boolean; // long labels (tracks): bars left to right
  id?: string;
}

// niceMax rounds the axis maximum up to 1, 2 or 5 × a power of ten.
function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const fmt = (n: number) => n.toLocaleString();

export function barChart(o: ChartOptions): HTMLElement {
  const n = ++seq;
  const titleId = `chart-${n}-title`;
  const descId = `chart-${n}-desc`;
  const max = niceMax(Math.max(0, ...o.bars.map((b) => b.value)));
  const svg = o.horizontal ? horizontal(o, max) : vertical(o, max);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-labelledby', `${titleId} ${descId}`);
  svg.prepend(s('title', { id: titleId }, o.title), s('desc', { id: descId }, o.desc));
  const table = h('table', { class: 'visually-hidden' },
    h('caption', null, o.title),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, o.labelHeader), h('th', { scope: 'col' }, o.valueHeader))),
    h('tbody', null, o.bars.map((b) => h('tr', null, h('th', { scope: 'row' }, b.label), h('td', null, fmt(b.value))))));
  return h('figure', { class: 'chart', id: o.id ?? null },
    h('figcaption', null, o.title), svg, table);
}

function bar(b: Bar, x: number, y: number, w: number, hgt: number): SVGRectElement {
  const r = s('rect', { x, y, width: Math.max(0, w), height: Math.max(0, hgt), rx: 2, class: 'bar', 'data-label': b.label, 'data-value': b.value });
  r.append(s('title', {}, `${b.label}: ${fmt(b.value)}`));
  return r;
}

// vertical: one bar per day, the value axis on the left with 0, half and max.
function vertical(o: ChartOptions, max: number): SVGSVGElement {
  const W = 640, H = 240, left = 44, right = 8, top = 12, bottom = 36;
  const plotW = W - left - right, plotH = H - top - bottom;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart-svg', preserveAspectRatio: 'xMidYMid meet' });
  for (const f of [0, 0.5, 1]) {
    const y = top + plotH - f * plotH;
    svg.append(s('line', { x1: left, x2: W - right, y1: y, y2: y, class: 'grid' }),
      s('text', { x: left - 6, y: y + 4, 'text-anchor': 'end', class: 'axis' }, fmt(Math.round(f * max))));
  }
  const slot = plotW / Math.max(1, o.bars.length);
  const every = Math.ceil(o.bars.length / 8); // at most ~8 labels under the axis
  o.bars.forEach((b, i) => {
    const hgt = (b.value / max) * plotH;
    const x = left + i * slot + slot * 0.15;
    svg.append(bar(b, x, top + plotH - hgt, slot * 0.7, hgt));
    if (i % every === 0) {
      svg.append(s('text', { x: x + slot * 0.35, y: H - bottom + 16, 'text-anchor': 'middle', class: 'axis' }, b.label));
    }
  });
  return svg;
}

// horizontal: one row per item, its label above the bar and its value after.
function horizontal(o: ChartOptions, max: number): SVGSVGElement {
  const W = 640, row = 34, top = 4, left = 4, valueW = 64;
  const H = top + row * Math.max(1, o.bars.length);
  const plotW = W - left - valueW;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart-svg', preserveAspectRatio: 'xMidYMid meet' });
  o.bars.forEach((b, i) => {
    const y = top + i * row;
    const w = (b.value / max) * plotW;
    svg.append(s('text', { x: left, y: y + 11, class: 'axis' }, b.label),
      bar(b, left, y + 15, w, 14),
      s('text', { x: left + w + 6, y: y + 27, class: 'axis' }, fmt(b.value)));
  });
  return svg;
}
