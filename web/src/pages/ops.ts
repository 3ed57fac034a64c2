// ops: the admin console's operations pages — the dead-letter queue with
// re-drive (the ops service), the CDN (steering's health map of the POPs,
// their hit ratios, purge and warm) and statistics as charts (the listens
// service's dashboards). Every action is a public admin API; the admin role
// is enforced by those APIs, and these pages only hide themselves from
// others.

import './ops.css';
import { h, replace } from '../dom';
import { t, fmtDateTime } from '../i18n';
import { call, get } from '../api';
import { session } from '../session';
import { message, errText } from '../ui';
import { barChart, type Bar } from '../chart';

async function adminOnly(title: string): Promise<Node | null> {
  if (session.signedIn() && (await session.loadMe()) && session.isAdmin()) return null;
  return h('div', null, h('h1', null, title), message(t('admin.forbidden'), 'error'));
}

function opsNav(here: string): HTMLElement {
  const link = (path: string, label: string) =>
    h('li', null, h('a', { href: path, 'aria-current': here === path ? 'page' : null }, label));
  return h('nav', { class: 'ops-nav', 'aria-label': t('ops.nav') }, h('ul', null,
    link('/admin', t('admin.title')),
    link('/admin/dead-letters', t('ops.dlq.title')),
    link('/admin/cdn', t('ops.cdn.title')),
    link('/admin/stats', t('ops.stats.title'))));
}

// refreshWhileShown calls f every ms while el is in the page.
function refreshWhileShown(el: Element, ms: number, f: () => Promise<void>): void {
  const tick = window.setInterval(() => {
    if (!el.isConnected) window.clearInterval(tick);
    else void f();
  }, ms);
}

// ---- Dead letters ----

interface DeadLetter {
  id: number;
  type: string;
  source: string;
  event_id: string;
  subscriber: string;
  destination: string;
  error_code: string;
  error: string;
  times: number;
  received_at: string;
  redrivable: boolean;
}
interface DeadLetterPage { dead_letters: DeadLetter[]; next?: string; types: string[]; subscribers: string[] }
interface RedriveResult { id: number; status: string; detail?: string }

const shortType = (typ: string) => typ.replace(/^music\.overture\./, '');

export async function deadLettersPage(): Promise<Node> {
  const denied = await adminOnly(t('ops.dlq.title'));
  if (denied) return denied;
  const status = h('div', { 'aria-live': 'polite', id: 'dlq-status' });
  const typeSel = h('select', { id: 'dlq-type' });
  const subSel = h('select', { id: 'dlq-subscriber' });
  const body = h('tbody');
  const more = h('p');
  const selected = new Set<number>();
  let cursor = '';

  const option = (v: string, label: string, cur: string) => h('option', { value: v, selected: v === cur }, label);
  const fillFilter = (sel: HTMLSelectElement, values: string[], all: string, label: (v: string) => string) => {
    const cur = sel.value;
    replace(sel, option('', all, cur), values.map((v) => option(v, label(v), cur)));
    if (cur && !values.includes(cur)) sel.append(option(cur, label(cur), cur));
    sel.value = cur;
  };

  const row = (d: DeadLetter): HTMLTableRowElement => {
    const name = `${shortType(d.type)} ${d.event_id}`;
    const box = h('input', { type: 'checkbox', 'aria-label': t('ops.dlq.select', { name }), disabled: !d.redrivable, checked: selected.has(d.id) });
    box.addEventListener('change', () => (box.checked ? selected.add(d.id) : selected.delete(d.id)));
    const detail = h('details', null, h('summary', null, t('ops.dlq.show')), h('pre', { class: 'event' }, t('common.loading')));
    detail.addEventListener('toggle', async () => {
      if (!detail.open) return;
      try {
        const full = await get<{ error: string; event: unknown }>('/v1/admin/dead-letters/' + d.id, true);
        replace(detail.querySelector('pre')!, full.error + '\n\n' + JSON.stringify(full.event, null, 2));
      } catch (e) {
        replace(detail.querySelector('pre')!, errText(e));
      }
    });
    return h('tr', { 'data-dead-letter': String(d.id) },
      h('td', null, box),
      h('td', null, h('span', { class: 'title' }, shortType(d.type)), h('br'), h('span', { class: 'sub' }, d.source + ' · ' + d.event_id)),
      h('td', null, d.subscriber),
      h('td', null, h('span', { class: 'code' }, d.error_code), ' ', d.error, detail),
      h('td', null, String(d.times)),
      h('td', null, fmtDateTime(d.received_at)),
      h('td', { class: 'actions' },
        d.redrivable
          ? h('button', { type: 'button', class: 'redrive', 'aria-label': t('ops.dlq.redrive.one', { name }), onclick: () => void redrive([d.id]) }, t('ops.dlq.redrive'))
          : h('span', { class: 'sub', title: t('ops.dlq.notredrivable.why') }, t('ops.dlq.notredrivable')),
        ' ',
        h('button', { type: 'button', class: 'discard', 'aria-label': t('ops.dlq.discard.one', { name }), onclick: () => void discard(d) }, t('ops.dlq.discard'))));
  };

  const load = async (append = false) => {
    const q = new URLSearchParams();
    if (typeSel.value) q.set('type', typeSel.value);
    if (subSel.value) q.set('subscriber', subSel.value);
    if (append && cursor) q.set('before', cursor);
    try {
      const page = await get<DeadLetterPage>('/v1/admin/dead-letters?' + q.toString(), true);
      fillFilter(typeSel, page.types, t('ops.dlq.alltypes'), shortType);
      fillFilter(subSel, page.subscribers, t('ops.dlq.allsubscribers'), (v) => v);
      const rows = page.dead_letters.map(row);
      if (append) body.append(...rows);
      else if (rows.length) replace(body, rows);
      else replace(body, h('tr', null, h('td', { colspan: '7' }, message(t('ops.dlq.empty')))));
      cursor = page.next ?? '';
      replace(more, cursor ? h('button', { type: 'button', onclick: () => void load(true) }, t('ops.dlq.more')) : '');
    } catch (e) {
      replace(body, h('tr', null, h('td', { colspan: '7' }, message(errText(e), 'error'))));
    }
  };

  const redrive = async (ids: number[]) => {
    if (!ids.length) {
      replace(status, message(t('ops.dlq.noneselected')));
      return;
    }
    try {
      const res = await call<{ redriven: number; results: RedriveResult[] }>('POST', '/v1/admin/dead-letters/redrive', { ids }, { auth: true });
      ids.forEach((id) => selected.delete(id));
      const others = res.results.filter((r) => r.status !== 'redriven');
      replace(status, message(t('ops.dlq.redriven', { n: res.redriven })),
        others.map((r) => message(t('ops.dlq.outcome', { id: r.id, status: t(('ops.dlq.status.' + r.status) as 'ops.dlq.status.redriven') }) + (r.detail ? ' — ' + r.detail : ''), 'error')));
    } catch (e) {
      replace(status, message(errText(e), 'error'));
    }
    await load();
  };

  const discard = async (d: DeadLetter) => {
    if (!window.confirm(t('ops.dlq.discard.confirm', { name: `${shortType(d.type)} ${d.event_id}` }))) return;
    try {
      await call('DELETE', '/v1/admin/dead-letters/' + d.id, undefined, { auth: true });
      replace(status, message(t('ops.dlq.discarded', { id: d.id })));
    } catch (e) {
      replace(status, message(errText(e), 'error'));
    }
    await load();
  };

  typeSel.addEventListener('change', () => void load());
  subSel.addEventListener('change', () => void load());
  await load();
  refreshWhileShown(body, 5000, () => (cursor ? Promise.resolve() : load()));
  return h('div', { class: 'ops' },
    opsNav('/admin/dead-letters'),
    h('h1', null, t('ops.dlq.title')),
    h('p', { class: 'muted' }, t('ops.dlq.intro')),
    h('div', { class: 'filters' },
      h('div', null, h('label', { for: 'dlq-type' }, t('ops.dlq.type')), typeSel),
      h('div', null, h('label', { for: 'dlq-subscriber' }, t('ops.dlq.subscriber')), subSel)),
    h('p', null, h('button', { type: 'button', class: 'primary', id: 'dlq-redrive-selected', onclick: () => void redrive([...selected]) }, t('ops.dlq.redrive.selected'))),
    status,
    h('div', { class: 'scroll' }, h('table', { class: 'dlq' },
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, t('ops.dlq.selectcol'))),
        h('th', { scope: 'col' }, t('ops.dlq.event')), h('th', { scope: 'col' }, t('ops.dlq.subscriber')),
        h('th', { scope: 'col' }, t('ops.dlq.error')), h('th', { scope: 'col' }, t('ops.dlq.times')),
        h('th', { scope: 'col' }, t('ops.dlq.received')), h('th', { scope: 'col' }, t('ops.dlq.actions')))),
      body)),
    more);
}

// ---- CDN ----

interface POPStatus {
  name: string;
  region: string;
  url: string;
  healthy: boolean;
  overloaded: boolean;
  rtt_ms: number;
  jitter_ms: number;
  cpu_load: number;
  network_load: number;
  hit_ratio: number;
  last_error?: string;
}
interface POPOutcome { pop: string; region: string; purged?: number; objects?: number; bytes?: number; failed?: Record<string, string>; error?: string }

const pct = (f: number) => Math.round(f * 100) + ' %';

function popCard(p: POPStatus): HTMLElement {
  const state = !p.healthy ? 'down' : p.overloaded ? 'overloaded' : 'healthy';
  const stateText = t(('ops.cdn.' + state) as 'ops.cdn.healthy');
  return h('li', { class: 'pop ' + state, 'data-pop': p.name },
    h('p', { class: 'title' }, p.name),
    h('p', { class: 'state' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), stateText),
    h('p', null, t('ops.cdn.hitratio'), ': ', h('strong', { class: 'hit-ratio' }, pct(p.hit_ratio))),
    h('meter', { min: '0', max: '1', value: String(p.hit_ratio), 'aria-label': t('ops.cdn.hitratio.of', { pop: p.name }) }),
    h('p', { class: 'sub' }, t('ops.cdn.rtt', { ms: p.rtt_ms.toFixed(1), jitter: p.jitter_ms.toFixed(1) })),
    h('p', { class: 'sub' }, t('ops.cdn.load', { cpu: pct(p.cpu_load), net: pct(p.network_load) })),
    p.last_error ? h('p', { class: 'error' }, p.last_error) : null);
}

export async function cdnPage(): Promise<Node> {
  const denied = await adminOnly(t('ops.cdn.title'));
  if (denied) return denied;
  const map = h('div', { class: 'pop-map', id: 'pop-map' });
  const result = h('div', { 'aria-live': 'polite', id: 'cdn-result' });
  const track = h('input', { id: 'cdn-track', type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: '00000000-0000-0000-0000-000000000000' });

  const load = async () => {
    try {
      const hm = await get<{ pops: POPStatus[]; choices: Record<string, string> }>('/v1/cdn/pops');
      const regions = [...new Set(hm.pops.map((p) => p.region))].sort();
      const servedBy = (region: string) => Object.entries(hm.choices).filter(([, r]) => r === region).map(([l]) => l).sort();
      replace(map, regions.map((region) => {
        const listeners = servedBy(region);
        return h('section', { class: 'region', 'aria-label': t('ops.cdn.region', { region }) },
          h('h2', null, region),
          h('p', { class: 'sub' }, listeners.length ? t('ops.cdn.serves', { regions: listeners.join(', ') }) : t('ops.cdn.servesnone')),
          h('ul', { class: 'pops' }, hm.pops.filter((p) => p.region === region).map(popCard)));
      }));
    } catch (e) {
      replace(map, message(errText(e), 'error'));
    }
  };

  const act = async (what: 'purge' | 'warm') => {
    const id = track.value.trim();
    if (!id) {
      replace(result, message(t('ops.cdn.needtrack'), 'error'));
      track.focus();
      return;
    }
    replace(result, message(t('common.loading')));
    try {
      const res = await call<{ track_id: string; pops: POPOutcome[] }>('POST', '/v1/admin/cdn/' + what, { track_id: id }, { auth: true });
      replace(result,
        message(t(what === 'purge' ? 'ops.cdn.purged' : 'ops.cdn.warmed', { track: res.track_id })),
        h('ul', { class: 'outcomes' }, res.pops.map((o) => h('li', { 'data-pop': o.pop, class: o.error ? 'error' : null },
          o.pop + ' (' + o.region + '): ',
          o.error ? o.error
            : what === 'purge' ? t('ops.cdn.purgedn', { n: o.purged ?? 0 })
              : t('ops.cdn.warmedn', { n: o.objects ?? 0, mb: ((o.bytes ?? 0) / 1048576).toFixed(1) })))));
    } catch (e) {
      replace(result, message(errText(e), 'error'));
    }
    await load();
  };

  await load();
  refreshWhileShown(map, 3000, load);
  return h('div', { class: 'ops' },
    opsNav('/admin/cdn'),
    h('h1', null, t('ops.cdn.title')),
    h('p', { class: 'muted' }, t('ops.cdn.intro')),
    map,
    h('h2', null, t('ops.cdn.actions')),
    h('form', { class: 'card', id: 'cdn-form', onsubmit: (e: Event) => { e.preventDefault(); void act('purge'); } },
      h('label', { for: 'cdn-track' }, t('ops.cdn.track')), track,
      h('p', { class: 'buttons' },
        h('button', { type: 'button', id: 'cdn-purge', onclick: () => void act('purge') }, t('ops.cdn.purge')), ' ',
        h('button', { type: 'button', id: 'cdn-warm', onclick: () => void act('warm') }, t('ops.cdn.warm'))),
      result));
}

// ---- Statistics ----

interface TrackDay { date: string; track_id: string; streams: number; listeners: number }
interface Audience { plays: number; streams: number; listeners: number; completion_rate: number; skip_rate: number; premium_share: number }

const isoDay = (d: Date) => d.toISOString().slice(0, 10);

// pool runs f over items, at most n at a time.
async function pool<T, R>(items: T[], n: number, f: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]);
    }
  }));
  return out;
}

function dayLabel(day: string): string {
  return day.slice(8, 10) + '.' + day.slice(5, 7);
}

function extremes(bars: Bar[]): string {
  if (!bars.length) return t('ops.stats.nodata');
  const total = bars.reduce((a, b) => a + b.value, 0);
  const top = bars.reduce((a, b) => (b.value > a.value ? b : a));
  return t('ops.stats.desc', { total, max: top.value, at: top.label });
}

export async function statsPage(): Promise<Node> {
  const denied = await adminOnly(t('ops.stats.title'));
  if (denied) return denied;
  const q = new URLSearchParams(location.search);
  const artist = h('input', { id: 'stats-artist', type: 'text', value: q.get('artist') ?? '', autocomplete: 'off' });
  const days = h('select', { id: 'stats-days' }, [7, 14, 30].map((n) =>
    h('option', { value: String(n), selected: String(n) === (q.get('days') ?? '14') }, t('ops.stats.lastdays', { n }))));
  const out = h('div', { id: 'stats-charts', 'aria-live': 'polite' });

  const draw = async () => {
    replace(out, message(t('common.loading')));
    const n = Number(days.value);
    const to = new Date();
    const dates = Array.from({ length: n }, (_, i) => isoDay(new Date(to.getTime() - (n - 1 - i) * 86400000)));
    const scope = new URLSearchParams();
    if (artist.value.trim()) scope.set('artist', artist.value.trim());
    const range = (from: string, until: string) => {
      const p = new URLSearchParams(scope);
      p.set('from', from);
      p.set('to', until);
      return p.toString();
    };
    try {
      const [streams, total, perDay] = await Promise.all([
        get<{ days: TrackDay[] }>('/v1/dashboard/streams?' + range(dates[0], dates[n - 1]), true),
        get<Audience>('/v1/dashboard/audience?' + range(dates[0], dates[n - 1]), true),
        // Unique listeners of a day are not the sum of each track's:
        // the audience of each day answers them exactly.
        pool(dates, 4, (d) => get<Audience>('/v1/dashboard/audience?' + range(d, d), true)),
      ]);
      const byDay = new Map<string, number>();
      const byTrack = new Map<string, number>();
      for (const d of streams.days) {
        byDay.set(d.date, (byDay.get(d.date) ?? 0) + d.streams);
        byTrack.set(d.track_id, (byTrack.get(d.track_id) ?? 0) + d.streams);
      }
      const streamBars = dates.map((d) => ({ label: dayLabel(d), value: byDay.get(d) ?? 0 }));
      const listenerBars = dates.map((d, i) => ({ label: dayLabel(d), value: perDay[i].listeners }));
      const top = [...byTrack.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10);
      const titles = await pool(top, 4, async ([id]) => {
        try {
          const tr = await get<{ title: string; artists?: { name: string }[] }>('/v1/tracks/' + encodeURIComponent(id));
          return tr.title + (tr.artists?.length ? ' — ' + tr.artists.map((a) => a.name).join(', ') : '');
        } catch {
          return id.slice(0, 8);
        }
      });
      const topBars = top.map(([, v], i) => ({ label: titles[i], value: v }));
      const who = artist.value.trim() || t('ops.stats.catalogue');
      replace(out,
        h('ul', { class: 'summary' },
          h('li', null, h('strong', null, total.streams.toLocaleString()), ' ', t('ops.stats.streams')),
          h('li', null, h('strong', null, total.listeners.toLocaleString()), ' ', t('ops.stats.listeners')),
          h('li', null, h('strong', null, total.plays.toLocaleString()), ' ', t('ops.stats.plays')),
          h('li', null, h('strong', null, pct(total.completion_rate)), ' ', t('ops.stats.completion'))),
        barChart({ id: 'chart-streams', title: t('ops.stats.streamsperday', { who }), desc: extremes(streamBars), bars: streamBars,
          labelHeader: t('ops.stats.day'), valueHeader: t('ops.stats.streams') }),
        barChart({ id: 'chart-listeners', title: t('ops.stats.listenersperday', { who }), desc: extremes(listenerBars), bars: listenerBars,
          labelHeader: t('ops.stats.day'), valueHeader: t('ops.stats.listeners') }),
        topBars.length
          ? barChart({ id: 'chart-top', title: t('ops.stats.toptracks', { who }), desc: extremes(topBars), bars: topBars, horizontal: true,
            labelHeader: t('ops.stats.track'), valueHeader: t('ops.stats.streams') })
          : message(t('ops.stats.notop')));
    } catch (e) {
      replace(out, message(errText(e), 'error'));
    }
  };

  const form = h('form', { class: 'card filters', id: 'stats-form' },
    h('div', null, h('label', { for: 'stats-artist' }, t('ops.stats.artist')), artist),
    h('div', null, h('label', { for: 'stats-days' }, t('ops.stats.period')), days),
    h('div', null, h('button', { type: 'submit', class: 'primary' }, t('ops.stats.show'))));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    if (artist.value.trim()) p.set('artist', artist.value.trim());
    p.set('days', days.value);
    history.replaceState(null, '', '/admin/stats?' + p.toString());
    void draw();
  });
  await draw();
  return h('div', { class: 'ops' },
    opsNav('/admin/stats'),
    h('h1', null, t('ops.stats.title')),
    h('p', { class: 'muted' }, t('ops.stats.intro')),
    form, out);
}
