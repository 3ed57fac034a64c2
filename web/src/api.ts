// api: every call the app makes goes through here, to the public HTTP API
// of this origin (the gateway). Errors are RFC 9457 problems; their detail
// is what the listener reads.

import { session } from './session';

export class ApiError extends Error {
  constructor(public status: number, public slug: string, message: string, public body: unknown) {
    super(message);
  }
}

export interface CallOptions {
  auth?: boolean;
  keepalive?: boolean;
  // cache is the fetch cache mode: 'no-cache' revalidates (ETag) an answer
  // the browser keeps, e.g. recommendations after a refresh.
  cache?: RequestCache;
}

async function send(method: string, path: string, body: unknown, opts: CallOptions, token: string | null): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers['Authorization'] = 'Bearer ' + token;
  return fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    keepalive: opts.keepalive,
    cache: opts.cache,
    credentials: 'same-origin',
  });
}

// call sends a request; with auth, it carries the access token and, on a
// 401, refreshes the session once and tries again.
export async function call<T>(method: string, path: string, body?: unknown, opts: CallOptions = {}): Promise<T> {
  return (await request<T>(method, path, body, opts)).data;
}

// Answer is a successful answer with its status and headers (a 202's
// Location, an ETag).
export interface Answer<T> { status: number; headers: Headers; data: T }

// request is call that also hands back the status and headers.
export async function request<T>(method: string, path: string, body?: unknown, opts: CallOptions = {}): Promise<Answer<T>> {
  let token = opts.auth ? await session.accessToken() : null;
  let resp = await send(method, path, body, opts, token);
  if (resp.status === 401 && opts.auth && session.signedIn()) {
    token = await session.accessToken(true);
    resp = await send(method, path, body, opts, token);
  }
  const text = await resp.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!resp.ok) {
    const p = (data && typeof data === 'object' ? data : {}) as { detail?: string; title?: string; type?: string };
    const slug = (p.type || '').split('/').pop() || String(resp.status);
    throw new ApiError(resp.status, slug, p.detail || p.title || resp.statusText || String(resp.status), data);
  }
  return { status: resp.status, headers: resp.headers, data: data as T };
}

export const get = <T>(path: string, auth = false) => call<T>('GET', path, undefined, { auth });

// Types of the answers the app reads (internal/api/openapi/*.json).

export interface Artist { id: string; name: string }
export interface Album { id: string; title: string; year?: number }
export interface Track {
  id: string;
  title: string;
  album?: Album;
  artists: Artist[];
  genre?: { id: string; name: string };
  duration_ms: number;
  popularity: number;
  explicit: boolean;
  renditions: string[];
  similar?: Similar | Array<FeedEntry | Track>;
}
export interface GenreCount { id: string; name: string; track_count: number }
export interface SearchPage { total: number; page: number; size: number; hits: Track[] }
export interface ArtistCard extends Artist { track_count?: number; top_tracks?: Track[]; albums?: Album[]; similar?: Similar | Artist[] }
export interface AlbumCard extends Album { artists?: Artist[]; tracks?: Track[] }

export interface Rendition { kind: string; codec?: string; bitrate?: number; premium: boolean; playable: boolean; url?: string }
export interface Playback {
  track_id: string;
  master_url: string;
  pop: string;
  region: string;
  renditions: Rendition[];
  loudness_gain_db: number | null;
  waveform_url?: string;
  cover_urls?: Record<string, string>;
  listener_premium: boolean;
  expires: string;
}

export interface Me {
  user_id: string;
  email: string;
  locale: string;
  roles: string[];
  confirmed: boolean;
  premium: boolean;
  premium_until: string | null;
  providers?: string[];
}

// The home feed (GET /v1/me/feed) and the stored recommendations (GET
// /v1/me/recommendations) share this shape: sections, each with why it is
// there. An entry is a track id with its score, or the track's card.
export interface FeedEntry { track_id?: string; score?: number; because_track_id?: string; track?: Track }
// The home feed's sections also say their kind, the key of their title in
// the app's texts (title), and for "because you listened" the played track.
export interface FeedSection {
  id: string;
  kind?: string;
  title?: string;
  reason?: string;
  model?: string;
  because?: Track;
  tracks?: Array<FeedEntry | Track>;
}
export interface Feed { model?: string; made_at?: string; cold_start?: boolean; sections: FeedSection[] }
// RefreshJob is the status of an asked-for recomputation of the
// listener's recommendations (POST /v1/me/recommendations/refresh).
export interface RefreshJob { id?: string; state: 'queued' | 'running' | 'done' | 'failed'; status_url?: string; error?: string }

// Similar items a catalogue card may carry (the query API's `similar`).
export interface Similar { tracks?: Array<FeedEntry | Track>; artists?: Artist[] }

export interface Tokens { access_token: string; refresh_token: string; expires_in: number; user_id?: string }

export interface Listen {
  id: string;
  listened_at: string;
  artist_name: string;
  track_name: string;
  release_name?: string;
  track_id?: string;
  played_ms?: number;
  stream?: boolean;
  scrobble?: boolean;
  skipped?: boolean;
}

export interface NowPlaying { artist_name: string; track_name: string; release_name?: string; track_id?: string; duration_ms?: number; since: string }

export interface ChartEntry { rank: number; artist_name: string; track_name?: string; track_id?: string; count: number; listeners: number }
export interface Chart { period: string; period_start: string; kind: string; entries: ChartEntry[] }

export interface Subscription {
  id: string;
  plan: string;
  status: string;
  period_end?: string;
  reason?: string;
}
export interface SubscriptionState { subscription: Subscription; premium: boolean }

export interface ListenToken { id: string; name: string; created_at: string; revoked_at?: string; token?: string }

export interface Upload {
  id: string;
  key: string;
  filename?: string;
  state: string;
  reason?: string;
  detail?: string;
  track_id?: string;
  published: boolean;
  size?: number;
  created_at: string;
  multipart?: {
    part_size: number;
    complete: string;
    parts: Array<{ number: number; offset: number; size: number; url?: string; etag?: string }>;
  };
}
