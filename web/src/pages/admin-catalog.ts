// admin-catalog: the admin console's Catalogue (/admin/catalog). Every
// track of the catalog, drafts and unpublished ones included, from the
// catalog admin API's GET /v1/admin/tracks: search as you type (part of
// the title or of an artist's name), a state filter, pages of 50 ("More"
// follows the API's cursor). Each row links to the track's edit page
// (/admin/tracks/{id}, admin-edit.ts) and publishes or unpublishes it in
// place. The search and filter are kept in the address (?q=&state=), so
// Back returns to the same list.

import { h, replace } from '../dom';
import { t } from '../i18n';
import { call, get } from '../api';
import { message, errText } from '../ui';
import type { AdminTrack } from './admin-upload';

type Key = Parameters<typeof t>[0];

interface TrackPage { tracks: AdminTrack[]; next?: string }

const STATES = ['draft', 'published', 'unpublished'] as const;

// DEBOUNCE is how long typing pauses before the list is asked for.
const DEBOUNCE = 250;

export async function catalogPage(): Promise<Node> {
  const params = new URLSearchParams(location.search);
  const q = h('input', { id: 'catalog-q', type: 'search', autocomplete: 'off', spellcheck: 'false', 'aria-controls': 'catalog-tracks', 'aria-describedby': 'catalog-q-help' });
  q.value = params.get('q') ?? '';
  const state = h('select', { id: 'catalog-state', 'aria-controls': 'catalog-tracks' },
    h('option', { value: '' }, t('catalog.list.all')),
    STATES.map((s) => h('option', { value: s }, t(('catalog.track.' + s) as Key))));
  state.value = STATES.includes(params.get('state') as (typeof STATES)[number]) ? params.get('state')! : '';
  const count = h('p', { id: 'catalog-count', class: 'muted', 'aria-live': 'polite' });
  const status = h('div', { id: 'catalog-status', 'aria-live': 'polite' });
  const body = h('tbody', { id: 'catalog-tracks' });
  const more = h('button', { type: 'button', id: 'catalog-more', hidden: true }, t('catalog.list.more'));

  // Each search is numbered; an answer to an older one is dropped, so a
  // slow answer cannot overwrite the list of what is typed now.
  let seq = 0;
  let next: string | undefined;
  let shown = 0;

  const query = (before?: string) => {
    const p = new URLSearchParams();
    const text = q.value.trim();
    if (text) p.set('q', text);
    if (state.value) p.set('state', state.value);
    p.set('limit', '50');
    if (before) p.set('before', before);
    return '/v1/admin/tracks?' + p.toString();
  };

  const row = (tr: AdminTrack): HTMLTableRowElement => {
    const artists = tr.artists.map((a) => a.name).join(', ');
    const act = async (publish: boolean, button: HTMLButtonElement) => {
      button.disabled = true;
      try {
        const path = '/v1/admin/tracks/' + encodeURIComponent(tr.id) + (publish ? '/publish' : '/unpublish');
        await call('POST', path, undefined, { auth: true });
        const fresh = await get<AdminTrack>('/v1/admin/tracks/' + encodeURIComponent(tr.id), true);
        const again = row(fresh);
        tr_.replaceWith(again);
        replace(status, message(t(publish ? 'catalog.list.published' : 'catalog.list.unpublished', { title: fresh.title })));
        again.querySelector<HTMLButtonElement>('button')?.focus();
      } catch (err) {
        button.disabled = false;
        replace(status, message(t('catalog.list.failed', { title: tr.title }) + ' ' + errText(err), 'error'));
      }
    };
    const published = tr.state === 'published';
    const button: HTMLButtonElement = h('button', {
      type: 'button', class: published ? null : 'primary', 'data-action': published ? 'unpublish' : 'publish',
      'aria-label': t(published ? 'catalog.list.unpublish' : 'catalog.list.publish', { title: tr.title }),
      onclick: () => void act(!published, button),
    }, t(published ? 'catalog.unpublish' : 'catalog.publish'));
    const tr_ = h('tr', { 'data-track': tr.id, 'data-state': tr.state },
      h('td', null, h('a', { href: '/admin/tracks/' + encodeURIComponent(tr.id), 'aria-label': t('catalog.list.open', { title: tr.title }) }, tr.title)),
      h('td', null, artists),
      h('td', null, tr.album ? tr.album.title + (tr.album.release_year ? ' (' + tr.album.release_year + ')' : '') : ''),
      h('td', null, t(('catalog.track.' + tr.state) as Key)),
      h('td', null, button));
    return tr_;
  };

  const load = async (append: boolean) => {
    const mine = ++seq;
    try {
      const page = await get<TrackPage>(query(append ? next : undefined), true);
      if (mine !== seq) return;
      next = page.next;
      more.hidden = !next;
      if (append) {
        body.append(...page.tracks.map(row));
        shown += page.tracks.length;
      } else {
        replace(body, page.tracks.length ? page.tracks.map(row) : h('tr', null, h('td', { colspan: '5' }, t('catalog.list.none'))));
        shown = page.tracks.length;
        replace(status);
      }
      count.textContent = t(next ? 'catalog.list.countmore' : 'catalog.list.count', { n: shown });
    } catch (err) {
      if (mine !== seq) return;
      replace(status, message(errText(err), 'error'));
    }
  };

  // The address follows the search, so Back and a reload keep it.
  const remember = () => {
    const p = new URLSearchParams();
    if (q.value.trim()) p.set('q', q.value.trim());
    if (state.value) p.set('state', state.value);
    const s = p.toString();
    history.replaceState(null, '', '/admin/catalog' + (s ? '?' + s : ''));
  };
  let timer = 0;
  q.addEventListener('input', () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => {
      remember();
      void load(false);
    }, DEBOUNCE);
  });
  state.addEventListener('change', () => {
    remember();
    void load(false);
  });
  more.addEventListener('click', () => void load(true));
  const form = h('form', { class: 'card', id: 'catalog-search', role: 'search' },
    h('label', { for: 'catalog-q' }, t('catalog.list.search')), q,
    h('p', { class: 'muted', id: 'catalog-q-help' }, t('catalog.list.searchhelp')),
    h('label', { for: 'catalog-state' }, t('catalog.list.state')), state);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    window.clearTimeout(timer);
    remember();
    void load(false);
  });

  await load(false);
  return h('div', { id: 'catalog-page' },
    h('h1', null, t('catalog.list.title')),
    form, count, status,
    h('div', { class: 'admin-uploads' }, h('table', { 'aria-label': t('catalog.list.title'), id: 'catalog-table' },
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, t('catalog.field.title')), h('th', { scope: 'col' }, t('catalog.list.artists')),
        h('th', { scope: 'col' }, t('catalog.album')), h('th', { scope: 'col' }, t('catalog.list.state')),
        h('th', { scope: 'col' }, t('catalog.list.actions')))), body)),
    h('p', null, more));
}
