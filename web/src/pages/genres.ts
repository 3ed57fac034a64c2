// genres: every genre with published tracks (GET /v1/genres) and one
// genre's tracks, playable, a page at a time (GET /v1/genres/{id}/tracks).

import { h } from '../dom';
import { t } from '../i18n';
import { get, type GenreCount, type SearchPage } from '../api';
import { trackList, message } from '../ui';
import { player } from '../player';
import { session } from '../session';
import { navigate } from '../router';

// PAGE is how many tracks a genre page shows.
const PAGE = 50;

export async function genresPage(): Promise<Node> {
  const { genres } = await get<{ genres: GenreCount[] }>('/v1/genres');
  return h('div', null,
    h('h1', null, t('genre.title')),
    genres.length
      ? h('ul', { class: 'genres' }, genres.map((g) => h('li', null,
        h('a', { href: '/genre/' + encodeURIComponent(g.id) }, g.name), ' ',
        h('span', { class: 'muted' }, t('genre.tracks', { n: g.track_count })))))
      : message(t('genre.none')));
}

export async function genrePage(id: string, pageParam: string | null): Promise<Node> {
  const page = Math.max(1, Math.min(Number.parseInt(pageParam ?? '1', 10) || 1, 10000 / PAGE));
  const p = await get<SearchPage>('/v1/genres/' + encodeURIComponent(id) + '/tracks?size=' + PAGE + '&page=' + page);
  const name = p.hits.find((tr) => tr.genre)?.genre?.name ?? id;
  const back = h('p', null, h('a', { href: '/genres' }, t('genre.all')));
  if (!p.hits.length) return h('div', null, h('h1', null, name), message(t('genre.empty')), back);
  const pages = Math.min(Math.ceil(p.total / PAGE), 10000 / PAGE);
  const link = (n: number, label: string, rel: string) =>
    h('a', { href: '/genre/' + encodeURIComponent(id) + (n > 1 ? '?page=' + n : ''), class: 'button', rel }, label);
  return h('div', null,
    h('h1', null, name),
    h('p', { class: 'muted' }, t('genre.tracks', { n: p.total })),
    h('button', { type: 'button', class: 'primary', onclick: () => { if (session.signedIn()) player.playNow(p.hits); else navigate('/signin?next=' + encodeURIComponent(location.pathname + location.search)); } }, t('genre.playall')),
    trackList(p.hits, t('genre.list', { genre: name })),
    pages > 1 ? h('nav', { 'aria-label': t('genre.pages') },
      page > 1 ? link(page - 1, t('genre.prev'), 'prev') : null, ' ',
      h('span', { class: 'muted' }, t('genre.page', { page, pages })), ' ',
      page < pages ? link(page + 1, t('genre.next'), 'next') : null) : null,
    back);
}
