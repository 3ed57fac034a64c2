// admin: the admin console's catalog side (issue 15). /admin uploads files
// or folders straight to storage with a progress bar per file and shows
// the recent uploads with their ingestion states, refreshed while the page
// is open, and why a file failed; /admin/uploads/{id} is one upload's page,
// where its track, album and artists are edited and the track published
// (admin-edit.ts). /admin/catalog lists every track, drafts included, with
// search as you type and a state filter (admin-catalog.ts); /admin/tracks/{id}
// edits any of them with the same forms. The admin role is enforced by the APIs; the page only
// tells others it is for administrators. The operations pages (dead
// letters, CDN, statistics) are ops.ts; the navigation links them.

import './admin.css';
import { h, replace } from '../dom';
import { t, fmtDateTime } from '../i18n';
import { get } from '../api';
import { session } from '../session';
import { message, errText } from '../ui';
import { uploadFile, follow, folderFiles, final, stateText, type AdminUpload } from './admin-upload';
import { uploadPage, trackPage } from './admin-edit';
import { catalogPage } from './admin-catalog';

type TextKey = Parameters<typeof t>[0];

// adminNav links the console's pages: this side's uploads and catalogue,
// and the operations pages.
export function adminNav(): HTMLElement {
  const here = location.pathname;
  const current = (path: string) => here === path || (path === '/admin' && here.startsWith('/admin/uploads/'))
    || (path === '/admin/catalog' && here.startsWith('/admin/tracks/'));
  const link = (path: string, label: string) => h('li', null, h('a', {
    href: path, 'aria-current': current(path) ? 'page' : null,
  }, label));
  return h('nav', { class: 'admin', 'aria-label': t('catalog.nav'), id: 'admin-nav' },
    h('ul', { class: 'refresh' },
      link('/admin', t('catalog.nav.uploads')),
      link('/admin/catalog', t('catalog.nav.catalog')),
      link('/admin/dead-letters', t('catalog.nav.deadletters')),
      link('/admin/cdn', t('catalog.nav.cdn')),
      link('/admin/stats', t('catalog.nav.stats'))));
}

export async function adminPage(): Promise<Node> {
  if (!session.signedIn() || !(await session.loadMe()) || !session.isAdmin()) {
    return h('div', { id: 'admin-forbidden' },
      h('h1', null, t('catalog.forbidden.title')),
      message(t('admin.forbidden'), 'error'),
      session.signedIn() ? null : h('p', null, h('a', { href: '/signin?next=/admin' }, t('catalog.forbidden.signin'))));
  }
  const path = location.pathname;
  if (path.startsWith('/admin/uploads/')) {
    return h('div', null, adminNav(), await uploadPage(decodeURIComponent(path.slice('/admin/uploads/'.length))));
  }
  if (path === '/admin/catalog') {
    return h('div', null, adminNav(), await catalogPage());
  }
  if (path.startsWith('/admin/tracks/')) {
    return h('div', null, adminNav(), await trackPage(decodeURIComponent(path.slice('/admin/tracks/'.length))));
  }
  return h('div', null, adminNav(), await uploadsPage());
}

async function uploadsPage(): Promise<Node> {
  const files = h('input', { id: 'files', type: 'file', multiple: true, accept: 'audio/*,.flac,.wav,.mp3,.ogg,.opus,.m4a,.aiff,.wv' });
  const folder = h('input', { id: 'folder', type: 'file', multiple: true, webkitdirectory: true });
  const auto = h('input', { id: 'autopublish', type: 'checkbox' });
  const status = h('div', { id: 'upload-status', 'aria-live': 'polite' });
  const progress = h('ul', { class: 'tracks', id: 'upload-progress', 'aria-label': t('admin.uploads') });
  const form = h('form', { class: 'card', id: 'upload-form' },
    h('p', { class: 'muted', id: 'upload-help' }, t('catalog.upload.help')),
    h('label', { for: 'files' }, t('admin.files')), files,
    h('label', { for: 'folder' }, t('admin.folder')), folder,
    h('label', { for: 'autopublish' }, auto, ' ', t('admin.autopublish')),
    h('p', null, h('button', { type: 'submit', class: 'primary', 'aria-describedby': 'upload-help' }, t('admin.start'))),
    status, progress);

  const table = h('tbody', { id: 'uploads' });
  const list = async () => {
    try {
      const page = await get<{ uploads: AdminUpload[] }>('/v1/admin/uploads?limit=50', true);
      if (!page.uploads.length) {
        replace(table, h('tr', null, h('td', { colspan: '4' }, t('catalog.upload.empty'))));
        return;
      }
      replace(table, page.uploads.map((u) => {
        const name = u.filename || u.key;
        return h('tr', { 'data-upload': u.id, 'data-state': u.state },
          h('td', null, h('a', { href: '/admin/uploads/' + u.id, 'aria-label': t('catalog.upload.open', { name }) }, name)),
          h('td', { class: u.state === 'failed' ? 'error' : null }, stateText(u)),
          h('td', null, u.track ? [u.track.title, ' (', t(('catalog.track.' + u.track.state) as TextKey), ')'] : ''),
          h('td', null, fmtDateTime(u.created_at)));
      }));
    } catch (e) {
      replace(table, h('tr', null, h('td', { colspan: '4' }, message(errText(e), 'error'))));
    }
  };

  // A row per chosen file: its progress bar, then its ingestion state,
  // followed until final, then a link to edit its track.
  const row = (f: File) => {
    const name = (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name;
    const bar = h('progress', { value: '0', max: String(f.size || 1), 'aria-label': t('admin.progress', { name }) });
    const st = h('span', { class: 'sub' });
    const li = h('li', { 'data-file': name }, h('div', { class: 'meta' }, h('span', { class: 'title' }, name), st), bar);
    progress.append(li);
    const show = (text: string, up?: AdminUpload) => {
      if (up) {
        li.dataset.upload = up.id;
        li.dataset.state = up.state;
        st.className = up.state === 'failed' ? 'sub error' : 'sub';
        replace(st, text, up.state === 'ready' ? [' · ', h('a', { href: '/admin/uploads/' + up.id, 'aria-label': t('catalog.upload.open', { name }) }, t('catalog.upload.edit'))] : null);
      } else {
        st.textContent = text;
      }
    };
    return { file: f, bar, show, li };
  };

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const chosen = Array.from(files.files ?? []);
    const fromFolder = folderFiles(Array.from(folder.files ?? []));
    const all = [...chosen, ...fromFolder.audio];
    replace(progress);
    replace(status, fromFolder.skipped ? message(t('catalog.upload.skipped', { n: fromFolder.skipped })) : null);
    if (!all.length) {
      replace(status, message(t('catalog.upload.none'), 'error'));
      return;
    }
    const rows = all.map(row);
    // Three files at a time: the parts of one file go one after another.
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < rows.length; i = next++) {
        const r = rows[i];
        try {
          const up = await uploadFile(r.file, auto.checked, {
            sent: (n) => (r.bar.value = n),
            state: (text, u) => r.show(text, u),
          });
          r.bar.value = r.file.size;
          r.show(stateText(up), up);
          void list();
          void follow(up.id, (u) => r.show(stateText(u), u), () => r.li.isConnected).then(() => list()).catch((err) => r.show(errText(err)));
        } catch (err) {
          r.li.dataset.state = 'error';
          r.show(errText(err));
          r.li.querySelector('.sub')!.className = 'sub error';
        }
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    form.reset();
  });

  // Ingestion states move on their own: refresh while the page is open,
  // faster while some upload is not final.
  let busy = false;
  const tick = async () => {
    if (!table.isConnected) return;
    await list();
    busy = Array.from(table.querySelectorAll('tr[data-state]')).some((tr) => !final({ state: (tr as HTMLElement).dataset.state } as AdminUpload));
    window.setTimeout(() => void tick(), busy ? 2000 : 5000);
  };
  await list();
  window.setTimeout(() => void tick(), 2000);
  return h('div', null,
    h('h1', null, t('admin.title')),
    h('h2', null, t('admin.upload')), form,
    h('h2', { id: 'uploads-h' }, t('catalog.upload.uploads')),
    h('p', { class: 'muted' }, t('catalog.upload.live')),
    h('div', { class: 'admin-uploads' }, h('table', { 'aria-labelledby': 'uploads-h' }, h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, t('admin.file')), h('th', { scope: 'col' }, t('admin.state')),
      h('th', { scope: 'col' }, t('admin.track')), h('th', { scope: 'col' }, t('catalog.upload.date')))), table)));
}
