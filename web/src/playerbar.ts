// playerbar: the fixed player at the bottom: previous / play-pause / next,
// what plays and from which POP, the waveform seek bar (a labelled range
// input over a canvas drawn from the peaks JSON) and the volume.

import { h, replace, fmtDuration } from './dom';
import { t, onLangChange } from './i18n';
import { player } from './player';
import { artistLinks } from './ui';

interface Waveform { version: number; channels?: number; length: number; data: number[]; bits?: number }

export function playerBar(): HTMLElement {
  const region = h('section', { id: 'player', 'aria-label': t('player.region') });
  const prev = h('button', { type: 'button', class: 'icon', id: 'prev' }, '◀◀');
  const play = h('button', { type: 'button', class: 'icon primary', id: 'playpause' }, '▶');
  const next = h('button', { type: 'button', class: 'icon', id: 'next' }, '▶▶');
  const now = h('div', { class: 'now', 'aria-live': 'polite' });
  const volume = h('input', { type: 'range', class: 'volume', id: 'volume', min: '0', max: '1', step: '0.05', value: '1' });
  const canvas = h('canvas', { 'aria-hidden': 'true' });
  const seek = h('input', { type: 'range', id: 'seek', min: '0', max: '0', step: '0.1', value: '0' });
  const pos = h('span', null, '0:00');
  const dur = h('span', null, '0:00');
  region.append(
    h('div', { class: 'row' }, prev, play, next, now, volume),
    h('div', { class: 'seek' }, canvas, seek),
    h('div', { class: 'times' }, pos, dur),
    player.audio,
  );
  prev.addEventListener('click', () => player.prev());
  next.addEventListener('click', () => player.next());
  play.addEventListener('click', () => player.toggle());
  volume.addEventListener('input', () => player.setVolume(Number(volume.value)));
  seek.addEventListener('input', () => player.seek(Number(seek.value)));

  let peaks: number[] = [];
  let peaksFor = '';
  const drawWave = () => {
    const w = canvas.clientWidth || 300;
    const hgt = canvas.clientHeight || 40;
    canvas.width = w;
    canvas.height = hgt;
    const g = canvas.getContext('2d');
    if (!g) return;
    g.clearRect(0, 0, w, hgt);
    if (peaks.length < 2) return;
    const pairs = peaks.length / 2;
    const played = player.audio.duration > 0 ? player.audio.currentTime / player.audio.duration : 0;
    for (let x = 0; x < w; x++) {
      const i = Math.floor((x / w) * pairs) * 2;
      const lo = peaks[i], hi = peaks[i + 1];
      g.fillStyle = x / w < played ? '#f5b83d' : '#6f6c85';
      const y1 = hgt / 2 - (hi * hgt) / 2, y2 = hgt / 2 - (lo * hgt) / 2;
      g.fillRect(x, y1, 1, Math.max(1, y2 - y1));
    }
  };
  const loadWave = async (url: string) => {
    peaksFor = url;
    peaks = [];
    try {
      const resp = await fetch(url);
      if (!resp.ok) return;
      const wf = (await resp.json()) as Waveform;
      if (peaksFor !== url) return;
      const scale = Math.pow(2, (wf.bits ?? 8) - 1);
      peaks = wf.data.map((v) => v / scale);
      region.dataset.waveform = String(wf.data.length / 2);
    } catch {
      /* no waveform: the plain range still seeks */
    }
    drawWave();
  };

  const update = () => {
    const cur = player.current;
    const pb = player.playback;
    const paused = player.audio.paused;
    prev.setAttribute('aria-label', t('player.prev'));
    next.setAttribute('aria-label', t('player.next'));
    play.setAttribute('aria-label', paused ? t('player.play') : t('player.pause'));
    play.textContent = paused ? '▶' : '❚❚';
    volume.setAttribute('aria-label', t('player.volume'));
    seek.setAttribute('aria-label', t('player.seek'));
    const d = isFinite(player.audio.duration) ? player.audio.duration : (cur ? cur.track.duration_ms / 1000 : 0);
    seek.max = String(d || 0);
    seek.value = String(player.audio.currentTime || 0);
    seek.setAttribute('aria-valuetext', fmtDuration(player.audio.currentTime * 1000) + ' / ' + fmtDuration(d * 1000));
    pos.textContent = fmtDuration(player.audio.currentTime * 1000);
    dur.textContent = fmtDuration(d * 1000);
    // What tests and curious listeners can read: the POP, the variants the
    // master offered and the one playing.
    region.dataset.pop = pb?.pop ?? '';
    region.dataset.levels = player.levels.join(',');
    region.dataset.level = String(player.level);
    region.dataset.premium = String(pb?.listener_premium ?? false);
    region.dataset.gain = player.gain.toFixed(3);
    region.dataset.gainApplied = player.appliedGain.toFixed(3);
    region.dataset.renewals = String(player.renewals);
    region.dataset.networkErrors = String(player.networkErrors);
    region.dataset.expires = pb?.expires ?? '';
    region.dataset.reports = String(player.reports);
    region.dataset.queue = player.index + '/' + player.queue.length;
    if (cur) {
      replace(now,
        h('div', { class: 'title' }, cur.track.title),
        h('div', { class: 'sub' }, ...artistLinks(cur.track),
          pb ? ' · ' + t('player.from', { pop: pb.pop }) : '',
          pb && !pb.listener_premium && pb.renditions.some((r) => r.premium)
            ? [' · ', h('a', { href: '/premium' }, t('premium.offer'))] : ''),
        player.error ? h('div', { class: 'error', role: 'alert' }, t('player.error', { msg: player.error })) : null);
    } else {
      replace(now, h('div', { class: 'sub' }, t('player.idle')));
    }
    if (pb?.waveform_url && peaksFor !== pb.waveform_url && !peaksFor.startsWith(pb.waveform_url.split('?')[0])) void loadWave(pb.waveform_url);
    if (!pb) {
      peaks = [];
      peaksFor = '';
    }
    drawWave();
  };
  player.onChange(update);
  onLangChange(update);
  window.addEventListener('resize', drawWave);
  update();
  return region;
}
