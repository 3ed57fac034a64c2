// ui: pieces several pages share: track rows with their play/queue
// buttons, links, messages.

import { h } from './dom';
import { t } from './i18n';
import type { Track } from './api';
import { player } from './player';
import { session } from './session';
import { navigate } from './router';

export function artistLinks(track: Track): (Node | string)[] {
  const out: (Node | string)[] = [];
  track.artists.forEach((a, i) => {
    if (i > 0) out.push(', ');
    out.push(h('a', { href: '/artist/' + a.id }, a.name));
  });
  return out;
}

// ensureSignedIn sends an anonymous listener to sign in (playing needs an
// account: steering signs URLs for a listener).
function ensureSignedIn(): boolean {
  if (session.signedIn()) return true;
  navigate('/signin?next=' + encodeURIComponent(location.pathname + location.search));
  return false;
}

export function trackRow(track: Track, list: Track[], i: number, note?: string): HTMLLIElement {
  const playing = player.current?.track.id === track.id;
  return h('li', { class: playing ? 'current' : null, 'data-track': track.id },
    h('div', { class: 'meta' },
      h('a', { class: 'title', href: '/track/' + track.id }, track.title),
      h('span', { class: 'sub' }, ...artistLinks(track),
        track.album ? [' · ', h('a', { href: '/album/' + track.album.id }, track.album.title)] : null),
      note ? h('span', { class: 'sub note' }, note) : null),
    h('div', { class: 'actions' },
      h('button', {
        type: 'button', class: 'primary icon play', 'aria-label': t('track.play', { title: track.title }),
        onclick: () => { if (ensureSignedIn()) player.playNow(list.slice(i)); },
      }, '▶'),
      h('button', {
        type: 'button', class: 'icon next', 'aria-label': t('track.next', { title: track.title }),
        onclick: () => { if (ensureSignedIn()) player.playNext(track); },
      }, '⤴'),
      h('button', {
        type: 'button', class: 'icon add', 'aria-label': t('track.add', { title: track.title }),
        onclick: () => { if (ensureSignedIn()) player.enqueue(track); },
      }, '+')));
}

// trackList is a list of playable tracks; notes says why a track is there
// (by track id), shown under it.
export function trackList(tracks: Track[], label: string, notes?: Map<string, string>): HTMLOListElement {
  return h('ol', { class: 'tracks', 'aria-label': label }, tracks.map((tr, i) => trackRow(tr, tracks, i, notes?.get(tr.id))));
}

export function message(text: string, kind: 'error' | 'notice' = 'notice'): HTMLParagraphElement {
  return h('p', { class: kind, role: kind === 'error' ? 'alert' : 'status' }, text);
}

export function errText(e: unknown): string {
  return t('common.error', { msg: e instanceof Error ? e.message : String(e) });
}
