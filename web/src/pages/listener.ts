// listener: search, catalogue pages, charts, history and the queue.

import { h, replace, fmtDuration } from '../dom';
import { t, fmtDateTime } from '../i18n';
import { get, request, type SearchPage, type ArtistCard, type AlbumCard, type Track, type Chart, type Listen, type NowPlaying, type Feed,
  type FeedEntry, type FeedSection, type RefreshJob, type Similar, type Artist, ApiError } from '../api';
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
      const page = await get<SearchPage>('/v1/search?size=30&q=' + encodeURIComponent(q), session.signedIn());
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

type TextKey = Parameters<typeof t>[0];

// The most tracks of one section the page shows (each may cost a card read).
const SECTION_MAX = 12;

function isTrack(e: FeedEntry | Track): e is Track {
  return typeof (e as Track).id === 'string' && typeof (e as Track).title === 'string';
}

// cardsOf turns entries into track cards: a card the API gave is used as
// is, a bare id is read from the query API (an unpublished track, 404, is
// left out).
async function cardsOf(entries: Array<FeedEntry | Track>, max = SECTION_MAX): Promise<Track[]> {
  const cards = await Promise.all(entries.slice(0, max).map(async (e) => {
    if (isTrack(e)) return e;
    if (e.track) return e.track;
    if (!e.track_id) return null;
    try {
      return await get<Track>('/v1/tracks/' + encodeURIComponent(e.track_id));
    } catch {
      return null;
    }
  }));
  return cards.filter((c): c is Track => c !== null);
}

// loadFeed is the listener's home feed; where the feed API is not there
// (404), their stored recommendations; null when neither is.
async function loadFeed(): Promise<Feed | null> {
  for (const path of ['/v1/me/feed', '/v1/me/recommendations']) {
    try {
      // Revalidated, not taken from the browser's cache as is: the answer
      // may be cacheable for minutes, and a refresh must show at once.
      return (await request<Feed>('GET', path, undefined, { auth: true, cache: 'no-cache' })).data;
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) throw e;
    }
  }
  return null;
}

// sectionHeading is a section's heading in the listener's language: the
// feed names the key of its title in our texts (title); the stored
// recommendations are known by id; else the API's own words.
function sectionHeading(sec: FeedSection): string {
  const known = (key: string): string | null => {
    const k = key as TextKey;
    const text = t(k, { title: sec.because?.title ?? '' });
    return text !== key ? text : null;
  };
  return (sec.title && known(sec.title)) || known('feed.section.' + sec.id) || (sec.title && !sec.title.startsWith('feed.') ? sec.title : '') ||
    known('feed.section.' + (sec.kind ?? '')) || sec.id;
}

// feedSection draws one section: its heading, why it is there, its tracks
// (each playable), and per track the played track that brought it.
async function feedSection(sec: FeedSection): Promise<Node | null> {
  const entries = sec.tracks ?? [];
  const tracks = await cardsOf(entries);
  if (!tracks.length) return null;
  const because = new Map<string, string>();
  const why = entries.filter((e): e is FeedEntry => !isTrack(e) && !!e.because_track_id);
  const played = await cardsOf(why.map((e) => ({ track_id: e.because_track_id })), SECTION_MAX);
  const titleOf = new Map(played.map((p) => [p.id, p.title]));
  for (const e of why) {
    const title = titleOf.get(e.because_track_id!);
    const id = e.track?.id ?? e.track_id;
    if (title && id) because.set(id, t('feed.because.track', { title }));
  }
  const heading = sectionHeading(sec);
  const hid = 'feed-' + sec.id.replace(/[^a-zA-Z0-9_-]/g, '-');
  return h('section', { class: 'feed-section', 'data-section': sec.id, 'aria-labelledby': hid },
    h('h3', { id: hid }, heading),
    sec.reason ? h('p', { class: 'muted reason' }, sec.reason) : null,
    trackList(tracks, heading, because));
}

// refreshButton asks for the listener's recommendations to be recomputed
// (202 and a status URL), follows the job until it is done, then redraws.
function refreshButton(redraw: () => Promise<void>): Node {
  const status = h('div', { 'aria-live': 'polite', id: 'refresh-status' });
  const btn = h('button', { type: 'button', id: 'refresh-recs' }, t('feed.refresh'));
  const follow = async (url: string): Promise<RefreshJob> => {
    for (let n = 0; ; n++) {
      await new Promise((r) => window.setTimeout(r, Math.min(500 * (n + 1), 3000)));
      const job = (await request<RefreshJob>('GET', url, undefined, { auth: true, cache: 'no-store' })).data;
      if (job.state !== 'queued' && job.state !== 'running') return job;
      if (!btn.isConnected) return job;
    }
  };
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    replace(status, message(t('feed.refreshing')));
    try {
      const ans = await request<RefreshJob>('POST', '/v1/me/recommendations/refresh', undefined, { auth: true });
      const url = ans.headers.get('Location') || ans.data?.status_url || '';
      const job = url ? await follow(url) : ans.data;
      if (!btn.isConnected) return;
      if (job.state === 'failed') {
        replace(status, message(t('feed.refresh.failed', { msg: job.error || job.state }), 'error'));
        return;
      }
      await redraw();
      replace(status, message(t('feed.refreshed')));
    } catch (e) {
      const text = e instanceof ApiError && (e.status === 404 || e.status === 405) ? t('feed.refresh.unavailable') : errText(e);
      replace(status, message(text, 'error'));
    } finally {
      btn.disabled = false;
    }
  });
  return h('div', { class: 'refresh' }, btn, status);
}

// forYou is the signed-in listener's part of the home page: the feed's
// sections with their reasons, or the charts when there is no feed.
function forYou(charts: () => void): Node {
  const box = h('div', { id: 'feed', 'aria-busy': 'true' });
  const draw = async () => {
    box.setAttribute('aria-busy', 'true');
    let feed: Feed | null;
    try {
      feed = await loadFeed();
    } catch (e) {
      replace(box, message(errText(e), 'error'));
      box.setAttribute('aria-busy', 'false');
      return;
    }
    if (!feed) {
      replace(box);
      box.setAttribute('aria-busy', 'false');
      charts();
      return;
    }
    const sections = (await Promise.all(feed.sections.map(feedSection))).filter((n): n is Node => n !== null);
    replace(box, sections.length ? sections : message(t('feed.empty')));
    box.dataset.source = feed.model ?? '';
    box.setAttribute('aria-busy', 'false');
  };
  void draw();
  return h('section', { 'aria-labelledby': 'feed-h' }, h('h2', { id: 'feed-h' }, t('feed.title')), refreshButton(draw), box);
}

export async function home(): Promise<Node> {
  const results = h('div', { id: 'results' });
  const charts = h('div', { id: 'home-charts' });
  const showCharts = () => void get<Chart>('/v1/charts/tracks?period=weekly').then(
    (c) => replace(charts, h('h2', null, t('charts.tracks')), chartTable(c)),
    () => replace(charts));
  if (!session.signedIn()) showCharts();
  return h('div', null, h('h1', null, t('nav.home')),
    session.signedIn() ? forYou(showCharts) : null,
    searchBox('', results), results, charts);
}

// similarOf reads a card's `similar` field (the query API's neighbours):
// tracks and artists, whichever it has.
function similarOf(v: Similar | Array<FeedEntry | Track> | Artist[] | undefined): { tracks: Array<FeedEntry | Track>; artists: Artist[] } {
  if (!v) return { tracks: [], artists: [] };
  if (Array.isArray(v)) {
    const artists = v.filter((x): x is Artist => typeof (x as Artist).name === 'string' && !('title' in x));
    const tracks = v.filter((x) => !artists.includes(x as Artist)) as Array<FeedEntry | Track>;
    return { tracks, artists };
  }
  return { tracks: v.tracks ?? [], artists: v.artists ?? [] };
}

// similarBlock draws similar tracks (playable) and artists (links).
function similarBlock(v: Parameters<typeof similarOf>[0]): Node {
  const { tracks, artists } = similarOf(v);
  const box = h('div', { id: 'similar' });
  if (tracks.length) {
    void cardsOf(tracks).then((cards) => {
      if (cards.length) box.prepend(h('h2', null, t('similar.tracks')), trackList(cards, t('similar.tracks')));
    });
  }
  if (artists.length) {
    box.append(h('h2', null, t('similar.artists')),
      h('ul', { class: 'similar-artists' }, artists.map((a) => h('li', null, h('a', { href: '/artist/' + a.id }, a.name)))));
  }
  return box;
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
      h('ul', null, (a.albums ?? []).map((al) => h('li', null, h('a', { href: '/album/' + al.id }, al.title), al.year ? ' (' + al.year + ')' : '')))] : null,
    similarBlock(a.similar));
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
      tr.genre ? [h('dt', null, t('track.genre')), h('dd', null, h('a', { href: '/genre/' + encodeURIComponent(tr.genre.id) }, tr.genre.name))] : null),
    trackList([tr], tr.title),
    similarBlock(tr.similar));
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
