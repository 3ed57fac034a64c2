// player: the queue and the audio. A track plays as HLS through hls.js from
// the POP the steering service chose (GET /v1/tracks/{id}/playback); the
// token in every media URL is renewed before it expires, the track's
// measured loudness sets the gain, and progress goes to the statistics
// service as docs/stats.md asks: playing_now when a track starts, one
// `single` listen when its play ends, with played_ms, duration_ms and
// end_reason.

import Hls from 'hls.js';
import { call, type Playback, type Track } from './api';
import { session } from './session';

export interface QueueItem { key: number; track: Track }

type Listener = () => void;

// Renew the signed URLs this long before they expire, or a quarter of
// their lifetime before when that is shorter (a platform configured with
// short-lived URLs, CDN_URL_TTL).
const RENEW_BEFORE_MS = 60_000;

// renewDelay is how long to wait before renewing URLs that expire at
// expires: never less than a second, so a clock skew cannot spin.
export function renewDelay(expires: string, now = Date.now()): number {
  const left = new Date(expires).getTime() - now;
  if (!isFinite(left)) return 10_000;
  return Math.max(1_000, left - Math.min(RENEW_BEFORE_MS, left / 4));
}

let nextKey = 1;

class Player {
  readonly audio: HTMLAudioElement;
  queue: QueueItem[] = [];
  index = -1;
  playback: Playback | null = null;
  error = '';
  levels: number[] = [];
  level = -1;
  // reports counts the plays whose end was reported (a `single` listen).
  reports = 0;
  // renewals counts the signed URLs renewed before they expired;
  // networkErrors the playlist or segment loads that failed (a refused,
  // expired token among them), retried or not.
  renewals = 0;
  networkErrors = 0;
  private hls: Hls | null = null;
  private token = '';
  private renewTimer = 0;
  private listeners: Listener[] = [];
  private ctx: AudioContext | null = null;
  private gainNode: GainNode | null = null;
  private gainDB = 0;
  private userVolume = 1;
  // The play being reported.
  private play: { track: Track; startedAt: number; playedMs: number; lastTime: number; reported: boolean } | null = null;

  constructor() {
    this.audio = document.createElement('audio');
    this.audio.id = 'audio';
    this.audio.preload = 'auto';
    this.audio.setAttribute('aria-hidden', 'true');
    this.audio.addEventListener('timeupdate', () => this.onTime());
    this.audio.addEventListener('ended', () => {
      this.finish('completed');
      this.next(false);
    });
    for (const ev of ['play', 'pause', 'durationchange', 'loadedmetadata']) {
      this.audio.addEventListener(ev, () => {
        this.syncMediaSession();
        this.changed();
      });
    }
    window.addEventListener('pagehide', () => this.finish('skipped'));
    this.mediaSession();
  }

  get current(): QueueItem | null {
    return this.index >= 0 && this.index < this.queue.length ? this.queue[this.index] : null;
  }

  onChange(f: Listener): void {
    this.listeners.push(f);
  }

  private changed(): void {
    for (const f of this.listeners) f();
  }

  // playNow puts tracks at the head of the queue and plays the first.
  playNow(tracks: Track[]): void {
    const items = tracks.map((track) => ({ key: nextKey++, track }));
    const at = this.index + 1;
    this.queue.splice(at, 0, ...items);
    void this.start(at);
  }

  playNext(track: Track): void {
    this.queue.splice(this.index + 1, 0, { key: nextKey++, track });
    if (this.index < 0) void this.start(0);
    this.changed();
  }

  enqueue(track: Track): void {
    this.queue.push({ key: nextKey++, track });
    if (this.index < 0) void this.start(this.queue.length - 1);
    this.changed();
  }

  move(from: number, to: number): void {
    if (from < 0 || from >= this.queue.length || to < 0 || to >= this.queue.length || from === to) return;
    const [it] = this.queue.splice(from, 1);
    this.queue.splice(to, 0, it);
    if (this.index === from) this.index = to;
    else if (from < this.index && to >= this.index) this.index--;
    else if (from > this.index && to <= this.index) this.index++;
    this.changed();
  }

  remove(i: number): void {
    if (i < 0 || i >= this.queue.length) return;
    if (i === this.index) {
      this.finish('skipped');
      this.stop();
      this.queue.splice(i, 1);
      if (this.index < this.queue.length) void this.start(this.index);
      else this.index = -1;
    } else {
      this.queue.splice(i, 1);
      if (i < this.index) this.index--;
    }
    this.changed();
  }

  clearQueue(): void {
    this.finish('skipped');
    this.stop();
    this.queue = [];
    this.index = -1;
    this.changed();
  }

  next(skip = true): void {
    if (skip) this.finish('skipped');
    if (this.index + 1 < this.queue.length) void this.start(this.index + 1);
    else {
      this.stop();
      this.changed();
    }
  }

  prev(): void {
    if (this.audio.currentTime > 3 || this.index <= 0) {
      this.audio.currentTime = 0;
      return;
    }
    this.finish('skipped');
    void this.start(this.index - 1);
  }

  toggle(): void {
    if (this.audio.paused) this.resume();
    else this.pause();
  }

  resume(): void {
    if (!this.current || !this.audio.paused) return;
    this.unlockAudio();
    void this.audio.play().catch((e) => this.fail(String(e)));
  }

  pause(): void {
    this.audio.pause();
  }

  seek(sec: number): void {
    if (isFinite(sec)) this.audio.currentTime = Math.max(0, sec);
  }

  setVolume(v: number): void {
    this.userVolume = Math.min(1, Math.max(0, v));
    this.applyGain();
  }

  get volume(): number {
    return this.userVolume;
  }

  private stop(): void {
    window.clearTimeout(this.renewTimer);
    if (this.hls) {
      this.hls.destroy();
      this.hls = null;
    }
    this.audio.removeAttribute('src');
    this.audio.load();
    this.playback = null;
    this.levels = [];
    this.level = -1;
  }

  private fail(msg: string): void {
    this.error = msg;
    this.changed();
  }

  // start plays queue[i]: playback information from steering, hls.js on
  // the master playlist, and playing_now.
  private async start(i: number): Promise<void> {
    this.stop();
    this.index = i;
    this.error = '';
    this.changed();
    const item = this.queue[i];
    if (!item) return;
    this.unlockAudio();
    let pb: Playback;
    try {
      pb = await call<Playback>('GET', '/v1/tracks/' + encodeURIComponent(item.track.id) + '/playback', undefined, { auth: true });
    } catch (e) {
      this.fail(e instanceof Error ? e.message : String(e));
      return;
    }
    if (this.current !== item) return; // the listener moved on meanwhile
    this.playback = pb;
    this.token = tokenOf(pb.master_url);
    this.gainDB = pb.loudness_gain_db ?? 0;
    this.applyGain();
    this.scheduleRenewal(pb);
    this.updateMediaSession(item.track, pb);
    if (!pb.master_url) {
      this.fail('no HLS rendition');
      return;
    }
    if (Hls.isSupported()) {
      const hls = new Hls({
        // No worker: the Content-Security-Policy allows no blob: scripts.
        enableWorker: false,
        // Fetch at most a minute ahead: audio is small, so hls.js would
        // otherwise fetch the whole track at once, from the CDN, for a
        // listener who may skip it after ten seconds. (It also means the
        // later segments are fetched with renewed URLs.)
        maxBufferLength: 30,
        maxMaxBufferLength: 60,
        // Every request carries the current token, so a renewal reaches
        // playlists and segments fetched after it.
        xhrSetup: (xhr: XMLHttpRequest, url: string) => {
          xhr.open('GET', withToken(url, this.token), true);
        },
      });
      this.hls = hls;
      hls.on(Hls.Events.MANIFEST_PARSED, (_e, d) => {
        this.levels = d.levels.map((l) => l.bitrate);
        // The best variant this listener may play: the master lists only
        // those (premium ones for premium listeners).
        hls.startLevel = d.levels.length - 1;
        this.changed();
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_e, d) => {
        this.level = this.levels[d.level] ?? -1;
        this.changed();
      });
      hls.on(Hls.Events.ERROR, (_e, d) => {
        if (d.type === Hls.ErrorTypes.NETWORK_ERROR) this.networkErrors++;
        if (d.fatal) this.fail(d.details);
        else this.changed();
      });
      hls.loadSource(pb.master_url);
      hls.attachMedia(this.audio);
    } else if (this.audio.canPlayType('application/vnd.apple.mpegurl')) {
      this.audio.src = pb.master_url; // Safari plays HLS natively
    } else {
      this.fail('this browser cannot play HLS');
      return;
    }
    this.play = { track: item.track, startedAt: Math.floor(Date.now() / 1000), playedMs: 0, lastTime: 0, reported: false };
    void this.audio.play().catch((e) => this.fail(String(e)));
    void this.report('playing_now', item.track);
  }

  private scheduleRenewal(pb: Playback): void {
    window.clearTimeout(this.renewTimer);
    this.renewTimer = window.setTimeout(() => void this.renew(pb.track_id), renewDelay(pb.expires));
  }

  // renew asks steering again for the same track and takes the new token.
  private async renew(id: string): Promise<void> {
    try {
      const pb = await call<Playback>('GET', '/v1/tracks/' + encodeURIComponent(id) + '/playback', undefined, { auth: true });
      if (this.playback?.track_id !== id) return;
      this.token = tokenOf(pb.master_url);
      this.playback = { ...pb };
      this.renewals++;
      this.scheduleRenewal(pb);
      this.changed();
    } catch {
      // Try again soon, and well before the current URLs expire.
      if (this.playback?.track_id === id) this.renewTimer = window.setTimeout(() => void this.renew(id), Math.min(10_000, renewDelay(this.playback.expires)));
    }
  }

  private onTime(): void {
    const p = this.play;
    if (!p) return;
    const t = this.audio.currentTime;
    const d = t - p.lastTime;
    // Count what was heard: small forward steps, scaled for a faster
    // playbackRate; a seek is a jump, not listening.
    if (d > 0 && d < Math.max(2, this.audio.playbackRate * 1.5)) p.playedMs += d * 1000;
    p.lastTime = t;
    this.changed();
  }

  // finish reports the end of the current play once.
  private finish(reason: 'completed' | 'skipped'): void {
    const p = this.play;
    if (!p || p.reported) return;
    p.reported = true;
    this.play = null;
    this.reports++;
    void this.report('single', p.track, {
      listened_at: p.startedAt,
      played_ms: Math.round(p.playedMs),
      end_reason: reason,
    });
  }

  private async report(kind: 'playing_now' | 'single', track: Track, extra?: { listened_at: number; played_ms: number; end_reason: string }): Promise<void> {
    if (!session.signedIn()) return;
    const listen: Record<string, unknown> = {
      track_metadata: {
        artist_name: track.artists.map((a) => a.name).join(', ') || '—',
        track_name: track.title,
        release_name: track.album?.title,
        additional_info: {
          overture_track_id: track.id,
          duration_ms: track.duration_ms,
          submission_client: 'Overture web',
          ...(extra ? { played_ms: extra.played_ms, end_reason: extra.end_reason } : {}),
        },
      },
    };
    if (extra) listen.listened_at = extra.listened_at;
    try {
      await call('POST', '/v1/listens', { listen_type: kind, payload: [listen] }, { auth: true, keepalive: kind === 'single' });
    } catch (e) {
      console.warn('listen report failed', e);
    }
  }

  // unlockAudio routes the element through a GainNode (created on a user
  // gesture, as browsers require). Without Web Audio the gain falls back to
  // the element's volume, which can only attenuate.
  private unlockAudio(): void {
    if (this.ctx || typeof AudioContext === 'undefined') return;
    try {
      this.ctx = new AudioContext();
      const src = this.ctx.createMediaElementSource(this.audio);
      this.gainNode = this.ctx.createGain();
      src.connect(this.gainNode).connect(this.ctx.destination);
      void this.ctx.resume();
    } catch {
      this.ctx = null;
      this.gainNode = null;
    }
    this.applyGain();
  }

  // gain is the linear loudness gain the track's loudness asks for.
  get gain(): number {
    return Math.pow(10, this.gainDB / 20);
  }

  // appliedGain is what the audio path really multiplies by: the GainNode's
  // value times the element's volume (or the volume alone without Web
  // Audio), for display and tests.
  get appliedGain(): number {
    return (this.gainNode ? this.gainNode.gain.value : 1) * this.audio.volume;
  }

  private applyGain(): void {
    const g = this.gain;
    if (this.gainNode) {
      this.gainNode.gain.value = g;
      this.audio.volume = this.userVolume;
    } else {
      this.audio.volume = Math.min(1, g * this.userVolume);
    }
  }

  private mediaSession(): void {
    if (!('mediaSession' in navigator)) return;
    const ms = navigator.mediaSession;
    const set = (a: MediaSessionAction, f: MediaSessionActionHandler) => {
      try {
        ms.setActionHandler(a, f);
      } catch {
        /* unsupported action */
      }
    };
    set('play', () => this.resume());
    set('pause', () => this.pause());
    set('nexttrack', () => this.next());
    set('previoustrack', () => this.prev());
    set('seekto', (d) => this.seek(d.seekTime ?? 0));
    set('seekforward', () => this.seek(this.audio.currentTime + 10));
    set('seekbackward', () => this.seek(this.audio.currentTime - 10));
  }

  // syncMediaSession tells the system whether we play and where we are, so
  // its controls (lock screen, media keys) show the right button and time.
  private syncMediaSession(): void {
    if (!('mediaSession' in navigator)) return;
    const ms = navigator.mediaSession;
    ms.playbackState = !this.current ? 'none' : this.audio.paused ? 'paused' : 'playing';
    const d = this.audio.duration;
    if (isFinite(d) && d > 0 && typeof ms.setPositionState === 'function') {
      try {
        ms.setPositionState({ duration: d, position: Math.min(d, this.audio.currentTime), playbackRate: this.audio.playbackRate || 1 });
      } catch {
        /* an inconsistent state while the element changes source */
      }
    }
  }

  private updateMediaSession(track: Track, pb: Playback): void {
    if (!('mediaSession' in navigator) || typeof MediaMetadata === 'undefined') return;
    const artwork = Object.entries(pb.cover_urls ?? {}).map(([size, src]) => ({ src, sizes: size + 'x' + size, type: 'image/jpeg' }));
    navigator.mediaSession.metadata = new MediaMetadata({
      title: track.title,
      artist: track.artists.map((a) => a.name).join(', '),
      album: track.album?.title ?? '',
      artwork,
    });
  }
}

export function tokenOf(u: string): string {
  try {
    return new URL(u).searchParams.get('t') ?? '';
  } catch {
    return '';
  }
}

// withToken is u with its t parameter set to token (when u has one: the
// POP puts the token in every URI of the playlists it serves).
export function withToken(u: string, token: string): string {
  if (!token) return u;
  try {
    const url = new URL(u);
    if (!url.searchParams.has('t')) return u;
    url.searchParams.set('t', token);
    return url.toString();
  } catch {
    return u;
  }
}

export const player = new Player();
