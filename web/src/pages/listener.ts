// listener: search, catalogue pages, charts, history and the queue.

import { h, replace, fmtDuration } from '../dom';
import { t, fmtDateTime } from '../i18n';
import { get, type SearchPage, type ArtistCard, type AlbumCard, type Track, type Chart, type Listen, type NowPlaying, ApiError } from '../api';
import { trackList, message, errText, artistLinks } from '../ui';
import { player } from '../player';
import { session } from '../session';
import { navigate } from '../router';

// searchBox searches as the listener types: one request per pause
// (200 ms), answers of stale queries are dropped.
function searchBox(initial: string, results: HTMLElement): HTMLElement {
  const input = h('input', {
    type: 'search', id: 'q', class: 'search', name: 'q', value: initial, autocomplete: 'off',
    placeholder: t('search.placeholder'), 'aria-controls': 'results',
  });
  let timer = 0;
  let seq = 0;
  const run = async (q: string) => {
    const mine = ++seq;
    try {
      const page = await get<SearchPage>('/v1/search?size=30&q=' + encodeURIComponent(q));
      if (mine !== seq) return;
      results.setAttribute('aria-busy', 'false');
      if (page.hits.length === 0) {
        replace(results, message(q ? t('search.none', { q }) : t('search.none', { q: '' })));
        return;
      }
      replace(results,
        h('p', { class: 'muted', role: 'status' }, q ? t('search.results', { n: page.total }) : t('search.popular')),
        trackList(page.hits, t('nav.search')));
    } catch (e) {
      if (mine === seq) replace(results, message(errText(e), 'error'));
    }
  };
  input.addEventListener('input', () => {
    window.clearTimeout(timer);
    results.setAttribute('aria-busy', 'true');
    timer = window.setTimeout(() => {
      const q = input.value.trim();
      history.replaceState(null, '', q ? '/search?q=' + encodeURIComponent(q) : '/search');
      void run(q);
    }, 200);
  });
  void run(initial.trim());
  return h('form', { role: 'search', onsubmit: (e: Event) => e.preventDefault() },
    h('label', { for: 'q' }, t('search.label')), input);
}

export async function home(): Promise<Node> {
  const results = h('div', { id: 'results' });
  const charts = h('div');
  void get<Chart>('/v1/charts/tracks?period=weekly').then(
    (c) => replace(charts, h('h2', null, t('charts.tracks')), chartTable(c)),
    () => replace(charts));
  return h('div', null, h('h1', null, t('nav.home')), searchBox('', results), results, charts);
}

export function searchPage(q: string): Node {
  const results = h('div', { id: 'results' });
  return h('div', null, h('h1', null, t('nav.search')), searchBox(q, results), results);
}

export async function artistPage(id: string): Promise<Node> {
  const a = await get<ArtistCard>('/v1/artists/' + encodeURIComponent(id));
  return h('div', null,
    h('h1', null, a.name),
    h('h2', null, t('artist.top')),
    trackList(a.top_tracks ?? [], t('artist.top')),
    (a.albums ?? []).length ? [h('h2', null, t('artist.albums')),
      h('ul', null, (a.albums ?? []).map((al) => h('li', null, h('a', { href: '/album/' + al.id }, al.title), al.year ? ' (' + al.year + ')' : '')))] : null);
}

export async function albumPage(id: string): Promise<Node> {
  const a = await get<AlbumCard>('/v1/albums/' + encodeURIComponent(id));
  const tracks = a.tracks ?? [];
  return h('div', null,
    h('h1', null, a.title),
    h('p', { class: 'muted' }, ...(a.artists ?? []).flatMap((ar, i) => [i ? ', ' : '', h('a', { href: '/artist/' + ar.id }, ar.name)]), a.year ? ' · ' + a.year : ''),
    tracks.length ? h('button', { type: 'button', class: 'primary', onclick: () => { if (session.signedIn()) player.playNow(tracks); else navigate('/signin'); } }, t('album.playall')) : null,
    h('h2', null, t('album.tracks')),
    trackList(tracks, t('album.tracks')));
}

export async function trackPage(id: string): Promise<Node> {
  const tr = await get<Track>('/v1/tracks/' + encodeURIComponent(id));
  return h('div', null,
    h('h1', null, tr.title),
    h('p', null, ...artistLinks(tr)),
    h('dl', null,
      tr.album ? [h('dt', null, t('track.album')), h('dd', null, h('a', { href: '/album/' + tr.album.id }, tr.album.title))] : null,
      h('dt', null, t('track.duration')), h('dd', null, fmtDuration(tr.duration_ms)),
      tr.genre ? [h('dt', null, t('track.genre')), h('dd', null, tr.genre.name)] : null),
    trackList([tr], tr.title));
}

function chartTable(c: Chart): Node {
  if (!c.entries.length) return message(t('charts.none'));
  return h('ol', { class: 'tracks' }, c.entries.map((e) => h('li', null,
    h('span', { class: 'muted' }, String(e.rank)),
    h('div', { class: 'meta' },
      e.track_id ? h('a', { class: 'title', href: '/track/' + e.track_id }, e.track_name ?? '') : h('span', { class: 'title' }, e.track_name ?? e.artist_name),
      h('span', { class: 'sub' }, e.track_name ? e.artist_name + ' · ' : '', t('charts.streams', { n: e.count }))))));
}

export async function chartsPage(period: 'daily' | 'weekly'): Promise<Node> {
  const load = async (kind: string) => {
    try {
      return chartTable(await get<Chart>('/v1/charts/' + kind + '?period=' + period));
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return message(t('charts.none'));
      return message(errText(e), 'error');
    }
  };
  const [tracks, artists] = await Promise.all([load('tracks'), load('artists')]);
  return h('div', null,
    h('h1', null, t('charts.title')),
    h('nav', { 'aria-label': t('charts.period') },
      h('a', { href: '/charts?period=daily', class: 'button', 'aria-current': period === 'daily' ? 'page' : null }, t('charts.daily')), ' ',
      h('a', { href: '/charts?period=weekly', class: 'button', 'aria-current': period === 'weekly' ? 'page' : null }, t('charts.weekly'))),
    h('h2', null, t('charts.tracks')), tracks,
    h('h2', null, t('charts.artists')), artists);
}

function needSignIn(): Node {
  return h('div', null, h('h1', null, t('nav.signin')), h('p', null, t('auth.needed')), h('a', { class: 'button primary', href: '/signin?next=' + encodeURIComponent(location.pathname) }, t('nav.signin')));
}

export async function historyPage(): Promise<Node> {
  if (!session.signedIn()) return needSignIn();
  const [now, listens] = await Promise.all([
    get<{ playing: NowPlaying | null }>('/v1/me/now-playing', true),
    get<{ listens: Listen[]; next_cursor?: string }>('/v1/me/listens?limit=25', true),
  ]);
  const list = h('ol', { class: 'tracks', id: 'listens', 'aria-label': t('history.listens') });
  const add = (ls: Listen[]) => {
    for (const l of ls) {
      list.append(h('li', { 'data-track': l.track_id ?? '' },
        h('div', { class: 'meta' },
          l.track_id ? h('a', { class: 'title', href: '/track/' + l.track_id }, l.track_name) : h('span', { class: 'title' }, l.track_name),
          h('span', { class: 'sub' }, l.artist_name, ' · ', fmtDateTime(l.listened_at)))));
    }
  };
  add(listens.listens);
  let cursor = listens.next_cursor ?? '';
  const more = h('button', { type: 'button', hidden: !cursor }, t('history.more'));
  more.addEventListener('click', async () => {
    const page = await get<{ listens: Listen[]; next_cursor?: string }>('/v1/me/listens?limit=25&cursor=' + encodeURIComponent(cursor), true);
    add(page.listens);
    cursor = page.next_cursor ?? '';
    more.hidden = !cursor;
  });
  const p = now.playing;
  return h('div', null,
    h('h1', null, t('history.title')),
    h('section', { class: 'card', 'aria-labelledby': 'now-h' },
      h('h2', { id: 'now-h' }, t('history.now')),
      h('p', { id: 'now-playing' }, p ? [p.track_id ? h('a', { href: '/track/' + p.track_id }, p.track_name) : p.track_name, ' — ', p.artist_name] : t('history.nothing'))),
    h('h2', null, t('history.listens')),
    listens.listens.length ? list : message(t('history.empty')),
    more);
}

export function queuePage(): Node {
  const box = h('div');
  const draw = () => {
    if (!player.queue.length) {
      replace(box, message(t('queue.empty')));
      return;
    }
    const n = player.queue.length;
    replace(box,
      h('ol', { class: 'tracks', id: 'queue', 'aria-label': t('queue.title') }, player.queue.map((it, i) => h('li', { class: i === player.index ? 'current' : null, 'data-track': it.track.id },
        h('div', { class: 'meta' },
          h('span', { class: 'title' }, it.track.title, i === player.index ? ' · ' + t('queue.playing') : ''),
          h('span', { class: 'sub' }, it.track.artists.map((a) => a.name).join(', '))),
        h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'icon', disabled: i === 0, 'aria-label': t('queue.up', { title: it.track.title }), onclick: () => { player.move(i, i - 1); focusAfter(i - 1, 'up'); } }, '↑'),
          h('button', { type: 'button', class: 'icon', disabled: i === n - 1, 'aria-label': t('queue.down', { title: it.track.title }), onclick: () => { player.move(i, i + 1); focusAfter(i + 1, 'down'); } }, '↓'),
          h('button', { type: 'button', class: 'icon', 'aria-label': t('queue.remove', { title: it.track.title }), onclick: () => player.remove(i) }, '✕'))))),
      h('button', { type: 'button', onclick: () => player.clearQueue() }, t('queue.clear')));
  };
  // Keep keyboard focus on the moved track's button.
  const focusAfter = (i: number, dir: 'up' | 'down') => {
    const li = box.querySelectorAll('#queue li')[i];
    const btn = li?.querySelectorAll('button')[dir === 'up' ? 0 : 1] as HTMLButtonElement | undefined;
    if (btn && !btn.disabled) btn.focus();
  };
  // Redraw only when the queue itself changes, not on every time update
  // (a redraw would take the keyboard focus away).
  let sig = '';
  const sigNow = () => player.queue.map((it) => it.key).join(',') + '@' + player.index;
  player.onChange(() => {
    if (box.isConnected && sigNow() !== sig) {
      sig = sigNow();
      draw();
    }
  });
  sig = sigNow();
  draw();
  return h('div', null, h('h1', null, t('queue.title')), box);
}
