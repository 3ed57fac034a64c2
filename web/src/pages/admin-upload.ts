// admin-upload: the admin console's browser upload. Each file is announced
// to the ingest admin API (POST /v1/admin/uploads), which answers presigned
// multipart part URLs; the parts go straight to storage with XHR (fetch has
// no upload progress), cross-origin: the uploads bucket's CORS rule allows
// the gateway's origin and exposes ETag, and the page's CSP names the
// storage origin in connect-src (docs/webapp.md). Then POST …/complete,
// and ingestion takes over; the page follows the upload's state.

import { call, get, type Upload } from '../api';
import { t } from '../i18n';

// AdminTrack is a track as the catalog has it now, drafts included: the
// catalog admin API's GET /v1/admin/tracks[/{id}] (catalog.TrackView, in
// internal/catalog/read.go), which the ingest admin API also adds to each
// ready upload. A list page leaves the artists' bio out.
export interface AdminTrack {
  id: string;
  title: string;
  state: 'draft' | 'published' | 'unpublished';
  explicit: boolean;
  position?: number;
  duration_ms?: number;
  published_at?: string;
  created_at?: string;
  updated_at?: string;
  album?: { id: string; title: string; release_year?: number };
  artists: Array<{ id: string; name: string; country?: string; bio?: string }>;
  genre?: { id: string; name: string };
  renditions?: Array<{ kind: string; premium: boolean; bytes?: number }>;
}

export interface AdminUpload extends Upload {
  duplicate?: boolean;
  track?: AdminTrack;
}

// AUDIO are the extensions a folder is filtered by (as `overture upload`
// walks directories); files chosen one by one go whatever their name.
const AUDIO = /\.(mp3|mp2|flac|wav|aiff?|ogg|oga|opus|m4a|mp4|aac|alac|wv)$/i;

// folderFiles keeps a folder's audio files, skipping hidden ones.
export function folderFiles(files: File[]): { audio: File[]; skipped: number } {
  const audio = files.filter((f) => {
    const path = (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name;
    return AUDIO.test(f.name) && !path.split('/').some((seg) => seg.startsWith('.'));
  });
  return { audio, skipped: files.length - audio.length };
}

class StorageError extends Error {}

// putPart sends one part and resolves when storage stored it.
function putPart(url: string, body: Blob, n: number, onProgress: (sent: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url, true);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300
      ? resolve()
      : reject(new StorageError(t('catalog.upload.storage', { n, status: xhr.status }))));
    xhr.onerror = () => reject(new StorageError(t('catalog.upload.unreachable', { n })));
    xhr.send(body);
  });
}

export interface Progress {
  // sent is called with the bytes stored so far (of file.size).
  sent(bytes: number): void;
  // state is called with each text to show: progress, then the upload's
  // state once storage has it.
  state(text: string, up?: AdminUpload): void;
}

// uploadFile sends file and resolves with the upload once the API took it
// (state received or later). A part is tried twice: a dropped connection
// does not lose the file.
export async function uploadFile(file: File, autoPublish: boolean, p: Progress): Promise<AdminUpload> {
  const up = await call<AdminUpload>('POST', '/v1/admin/uploads',
    { filename: file.name, size: file.size, content_type: file.type || undefined, auto_publish: autoPublish }, { auth: true });
  const mp = up.multipart;
  if (!mp) throw new Error('the ingest API gave no part URLs');
  const sent = new Map<number, number>();
  const show = () => {
    let n = 0;
    sent.forEach((v) => (n += v));
    p.sent(Math.min(file.size, n));
    p.state(t('catalog.upload.sending', { pct: file.size ? Math.floor((100 * n) / file.size) : 100 }));
  };
  p.state(t('catalog.upload.sending', { pct: 0 }));
  for (const part of mp.parts) {
    if (part.etag || !part.url) {
      sent.set(part.number, part.size);
      continue;
    }
    const body = file.slice(part.offset, part.offset + part.size);
    const onProgress = (n: number) => {
      sent.set(part.number, n);
      show();
    };
    try {
      await putPart(part.url, body, part.number, onProgress);
    } catch (e) {
      if (!(e instanceof StorageError)) throw e;
      await putPart(part.url, body, part.number, onProgress);
    }
    sent.set(part.number, part.size);
    show();
  }
  p.state(t('catalog.upload.completing'));
  return await call<AdminUpload>('POST', mp.complete, undefined, { auth: true });
}

// final reports whether ingestion is done with the upload.
export const final = (u: Upload): boolean => u.state === 'ready' || u.state === 'failed';

// follow asks for the upload's state every 1.5 s until it is final or
// stillWanted() says the page went away, reporting each answer.
export async function follow(id: string, report: (u: AdminUpload) => void, stillWanted: () => boolean): Promise<void> {
  for (;;) {
    const u = await get<AdminUpload>('/v1/admin/uploads/' + encodeURIComponent(id), true);
    report(u);
    if (final(u) || !stillWanted()) return;
    await new Promise((r) => window.setTimeout(r, 1500));
  }
}

type Key = Parameters<typeof t>[0];

// stateText is an upload's ingestion state in words, with the failure
// reason (in words when known) and the detail the pipeline recorded.
export function stateText(u: AdminUpload): string {
  const state = t(('catalog.state.' + u.state) as Key);
  if (u.state !== 'failed') return state === 'catalog.state.' + u.state ? u.state : state;
  const known = u.reason ? t(('catalog.reason.' + u.reason) as Key) : '';
  const reason = !u.reason ? '' : known === 'catalog.reason.' + u.reason ? u.reason : known + ' (' + u.reason + ')';
  return [state, reason, u.detail].filter(Boolean).join(': ');
}
