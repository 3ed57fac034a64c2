// admin: the admin console. Upload files or a folder straight to storage
// (presigned multipart parts from the ingest admin API, one progress bar
// per file), watch the ingestion states, publish and unpublish. The admin
// role is enforced by those APIs; this page only hides itself from others.

import { h, replace } from '../dom';
import { t, fmtDateTime } from '../i18n';
import { call, get, type Upload } from '../api';
import { session } from '../session';
import { message, errText } from '../ui';

// putPart sends one part with XHR (fetch has no upload progress) and
// returns its ETag.
function putPart(url: string, body: Blob, onProgress: (sent: number) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url, true);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve(xhr.getResponseHeader('ETag') ?? '') : reject(new Error('storage answered ' + xhr.status)));
    xhr.onerror = () => reject(new Error('storage unreachable'));
    xhr.send(body);
  });
}

async function uploadFile(file: File, autoPublish: boolean, bar: HTMLProgressElement, status: HTMLElement): Promise<void> {
  const up = await call<Upload>('POST', '/v1/admin/uploads', { filename: file.name, size: file.size, content_type: file.type || undefined, auto_publish: autoPublish }, { auth: true });
  const mp = up.multipart;
  if (!mp) throw new Error('the ingest API gave no part URLs');
  const sent = new Map<number, number>();
  const total = file.size;
  const show = () => {
    let n = 0;
    sent.forEach((v) => (n += v));
    bar.value = Math.min(total, n);
  };
  bar.max = total;
  for (const part of mp.parts) {
    if (part.etag || !part.url) {
      sent.set(part.number, part.size);
      continue;
    }
    await putPart(part.url, file.slice(part.offset, part.offset + part.size), (n) => {
      sent.set(part.number, n);
      show();
    });
    sent.set(part.number, part.size);
    show();
  }
  await call('POST', mp.complete, undefined, { auth: true });
  status.textContent = 'received';
}

export async function adminPage(): Promise<Node> {
  if (!session.signedIn() || !(await session.loadMe()) || !session.isAdmin()) {
    return h('div', null, h('h1', null, t('admin.title')), message(t('admin.forbidden'), 'error'));
  }
  const files = h('input', { id: 'files', type: 'file', multiple: true, accept: 'audio/*' });
  const folder = h('input', { id: 'folder', type: 'file', multiple: true, webkitdirectory: true });
  const auto = h('input', { id: 'autopublish', type: 'checkbox' });
  const progress = h('ul', { class: 'tracks', id: 'upload-progress' });
  const form = h('form', { class: 'card', id: 'upload-form' },
    h('label', { for: 'files' }, t('admin.files')), files,
    h('label', { for: 'folder' }, t('admin.folder')), folder,
    h('label', null, auto, ' ', t('admin.autopublish')),
    h('p', null, h('button', { type: 'submit', class: 'primary' }, t('admin.start'))),
    progress);
  const table = h('tbody');
  const list = async () => {
    try {
      const page = await get<{ uploads: Upload[] }>('/v1/admin/uploads?limit=50', true);
      replace(table, page.uploads.map((u) => {
        const name = u.filename || u.key;
        return h('tr', { 'data-upload': u.id },
          h('td', null, name),
          h('td', { class: u.state === 'failed' ? 'error' : null }, u.state, u.reason ? ' — ' + u.reason + (u.detail ? ': ' + u.detail : '') : ''),
          h('td', null, u.track_id ? h('a', { href: '/track/' + u.track_id }, u.track_id.slice(0, 8)) : ''),
          h('td', null, fmtDateTime(u.created_at)),
          h('td', null, u.track_id && u.state === 'ready' ? [
            h('button', { type: 'button', 'aria-label': t('admin.publish', { name }), onclick: () => void publish(u.track_id!, true) }, '✓'), ' ',
            h('button', { type: 'button', 'aria-label': t('admin.unpublish', { name }), onclick: () => void publish(u.track_id!, false) }, '✕'),
          ] : ''));
      }));
    } catch (e) {
      replace(table, h('tr', null, h('td', { colspan: '5' }, message(errText(e), 'error'))));
    }
  };
  const publish = async (id: string, on: boolean) => {
    try {
      await call('POST', '/v1/admin/tracks/' + encodeURIComponent(id) + (on ? '/publish' : '/unpublish'), undefined, { auth: true });
    } catch (e) {
      alertBox.replaceChildren(message(errText(e), 'error'));
    }
    await list();
  };
  const alertBox = h('div', { 'aria-live': 'polite' });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const all = [...Array.from(files.files ?? []), ...Array.from(folder.files ?? [])];
    replace(progress);
    await Promise.all(all.map(async (f) => {
      const bar = h('progress', { value: '0', max: String(f.size), 'aria-label': t('admin.progress', { name: f.name }) });
      const st = h('span', { class: 'sub' });
      progress.append(h('li', null, h('div', { class: 'meta' }, h('span', { class: 'title' }, f.name), st), bar));
      try {
        await uploadFile(f, auto.checked, bar, st);
      } catch (err) {
        st.textContent = errText(err);
        st.className = 'error';
      }
    }));
    await list();
  });
  // Ingestion states move on their own: refresh while the page is open.
  const tick = window.setInterval(() => {
    if (!table.isConnected) window.clearInterval(tick);
    else void list();
  }, 3000);
  await list();
  return h('div', null,
    h('h1', null, t('admin.title')),
    h('h2', null, t('admin.upload')), form, alertBox,
    h('h2', null, t('admin.uploads')),
    h('table', null, h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, t('admin.file')), h('th', { scope: 'col' }, t('admin.state')), h('th', { scope: 'col' }, t('admin.track')),
      h('th', { scope: 'col' }, 'Date'), h('th', { scope: 'col' }, 'Actions'))), table));
}
