// admin-edit: a track's edit page in the admin console, reached two ways:
// one upload's page (/admin/uploads/{id}; while ingestion runs it follows
// the state, then the track comes with the upload) and any catalogue
// track's page (/admin/tracks/{id}, read with GET /v1/admin/tracks/{id}).
// Both show the catalog's track, album and artists as the same forms (the
// catalog admin API: PATCH /v1/admin/tracks|albums|artists/{id}) and
// publish or unpublish the track. A 422 problem's field errors are shown next to their field (the
// input is aria-invalid and described by its message); any other problem
// below the form.

import { h, replace } from '../dom';
import { t } from '../i18n';
import { call, get, ApiError } from '../api';
import { message, errText } from '../ui';
import { follow, final, stateText, type AdminUpload, type AdminTrack } from './admin-upload';

type Key = Parameters<typeof t>[0];

// Reload draws the page again from the API and then shows text in the
// status of the form (or section) with that id.
type Reload = (id: string, text: string) => Promise<void>;

// Field is one labelled input of a form and where its error goes.
interface Field {
  name: string; // the API's field name
  input: HTMLInputElement | HTMLTextAreaElement;
  error: HTMLElement;
  value(): unknown;
}

// field builds a labelled input whose error paragraph follows it.
function field(form: string, name: string, label: string, value: string, opts: { area?: boolean; inputmode?: string; autocomplete?: string } = {}): [Field, Node[]] {
  const id = form + '-' + name;
  const input = opts.area
    ? h('textarea', { id, name, rows: '4', cols: '40' })
    : h('input', { id, name, type: 'text', inputmode: opts.inputmode ?? null, autocomplete: opts.autocomplete ?? 'off' });
  input.value = value;
  const error = h('p', { id: id + '-error', class: 'error field-error', hidden: true });
  const f: Field = { name, input, error, value: () => input.value };
  return [f, [h('label', { for: id }, label), input, error]];
}

// nullable: an empty input clears the field.
const nullable = (f: Field): Field => ({ ...f, value: () => (f.input.value.trim() === '' ? null : f.input.value.trim()) });

// integer: a whole number, else the text as typed, so that the API says
// what is wrong with it.
const integer = (f: Field): Field => ({
  ...f,
  value: () => {
    const v = f.input.value.trim();
    if (v === '') return null;
    return /^-?\d+$/.test(v) ? Number(v) : v;
  },
});

// editForm is a form that PATCHes its fields to path and shows the API's
// answer: field errors next to the fields, other problems below.
function editForm(id: string, heading: string, fields: Array<[Field, Node[]]>, extra: Node[], save: string, path: string,
  body: (fs: Field[]) => Record<string, unknown>, saved: Reload): HTMLFormElement {
  const fs = fields.map(([f]) => f);
  const status = h('div', { class: 'form-status', 'aria-live': 'polite' });
  const form = h('form', { class: 'card', id, 'aria-labelledby': id + '-h', novalidate: true },
    h('h2', { id: id + '-h' }, heading),
    fields.map(([, nodes]) => nodes), extra,
    h('p', null, h('button', { type: 'submit', class: 'primary' }, save)), status);
  const clear = () => {
    for (const f of fs) {
      f.error.hidden = true;
      f.error.textContent = '';
      f.input.removeAttribute('aria-invalid');
      f.input.removeAttribute('aria-describedby');
    }
    replace(status);
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear();
    const button = form.querySelector('button[type=submit]') as HTMLButtonElement;
    button.disabled = true;
    try {
      await call('PATCH', path, body(fs), { auth: true });
      replace(status, message(t('catalog.saved')));
      await saved(id, t('catalog.saved'));
    } catch (err) {
      const errs = err instanceof ApiError && err.status === 422 ? (err.body as { errors?: Record<string, string> }).errors : undefined;
      let first: Field | undefined;
      const rest: string[] = [];
      if (errs) {
        for (const [name, msg] of Object.entries(errs)) {
          const f = fs.find((x) => x.name === name);
          if (!f) {
            rest.push(name + ': ' + msg);
            continue;
          }
          f.error.textContent = msg;
          f.error.hidden = false;
          f.input.setAttribute('aria-invalid', 'true');
          f.input.setAttribute('aria-describedby', f.error.id);
          first ??= f;
        }
      }
      if (first) {
        replace(status, message(t('catalog.invalid') + (rest.length ? ' ' + rest.join('; ') : ''), 'error'));
        first.input.focus();
      } else {
        replace(status, message(errText(err), 'error'));
      }
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function trackSection(tr: AdminTrack, reload: Reload): Node {
  const state = h('p', { id: 'track-state', 'data-state': tr.state }, t('catalog.track.state', { state: t(('catalog.track.' + tr.state) as Key) }));
  const done = h('div', { 'aria-live': 'polite', id: 'publish-status' });
  const act = async (publish: boolean) => {
    try {
      await call('POST', '/v1/admin/tracks/' + encodeURIComponent(tr.id) + (publish ? '/publish' : '/unpublish'), undefined, { auth: true });
      await reload('publishing', t(publish ? 'catalog.published.done' : 'catalog.unpublished.done'));
    } catch (err) {
      replace(done, message(errText(err), 'error'));
    }
  };
  // What the catalog says beside the forms: the genre, and the audio
  // publishing needs.
  const audio = (tr.renditions ?? []).map((r) => r.kind + (r.premium ? ' (' + t('catalog.track.premium') + ')' : '')).join(', ');
  const facts = h('p', { class: 'muted', id: 'track-facts' },
    tr.genre ? t('catalog.track.genre', { genre: tr.genre.name }) + ' · ' : '',
    tr.renditions ? (audio ? t('catalog.track.audio', { kinds: audio }) : t('catalog.track.noaudio')) : '');
  const publishing = h('section', { class: 'card', id: 'publishing', 'aria-labelledby': 'publishing-h' },
    h('h2', { id: 'publishing-h' }, t('catalog.track') + ': ' + tr.title), state, facts,
    h('p', { class: 'refresh' },
      tr.state === 'published'
        ? h('button', { type: 'button', id: 'unpublish', onclick: () => void act(false) }, t('catalog.unpublish'))
        : h('button', { type: 'button', id: 'publish', class: 'primary', onclick: () => void act(true) }, t('catalog.publish')),
      tr.state === 'published' ? h('a', { href: '/track/' + tr.id }, t('catalog.track.listen')) : null),
    done);

  const title = field('track', 'title', t('catalog.field.title'), tr.title);
  const position = field('track', 'position', t('catalog.field.position'), tr.position?.toString() ?? '', { inputmode: 'numeric' });
  const explicit = h('input', { id: 'track-explicit', type: 'checkbox', checked: tr.explicit });
  const trackForm = editForm('track-form', t('catalog.track'), [title, [integer(position[0]), position[1]]],
    [h('label', { for: 'track-explicit' }, explicit, ' ', t('catalog.field.explicit'))], t('catalog.save.track'),
    '/v1/admin/tracks/' + encodeURIComponent(tr.id),
    (fs) => ({ title: fs[0].value(), position: fs[1].value(), explicit: explicit.checked }), reload);

  let albumForm: Node = h('p', { class: 'muted' }, t('catalog.noalbum'));
  if (tr.album) {
    const at = field('album', 'title', t('catalog.field.albumtitle'), tr.album.title);
    const year = field('album', 'release_year', t('catalog.field.year'), tr.album.release_year?.toString() ?? '', { inputmode: 'numeric' });
    albumForm = editForm('album-form', t('catalog.album'), [at, [integer(year[0]), year[1]]], [], t('catalog.save.album'),
      '/v1/admin/albums/' + encodeURIComponent(tr.album.id),
      (fs) => ({ title: fs[0].value(), release_year: fs[1].value() }), reload);
  }

  const artistForms = tr.artists.map((a, i) => {
    const id = 'artist-' + i;
    const name = field(id, 'name', t('catalog.field.name'), a.name);
    const country = field(id, 'country', t('catalog.field.country'), a.country ?? '', { autocomplete: 'country' });
    const bio = field(id, 'bio', t('catalog.field.bio'), a.bio ?? '', { area: true });
    const form = editForm(id + '-form', t('catalog.artist', { name: a.name }), [name, [nullable(country[0]), country[1]], [nullable(bio[0]), bio[1]]], [],
      t('catalog.save.artist'), '/v1/admin/artists/' + encodeURIComponent(a.id),
      (fs) => ({ name: fs[0].value(), country: fs[1].value(), bio: fs[2].value() }), reload);
    form.dataset.artist = a.id;
    return form;
  });
  return h('div', { id: 'track-edit', 'data-track': tr.id }, publishing, trackForm, albumForm, artistForms);
}

// redrawn makes the Reload of a page whose forms draw() replaces: the
// message goes to the form (or section) that was used, and the keyboard
// focus back to its first button.
function redrawn(draw: () => Promise<unknown>, body: HTMLElement): Reload {
  return async (where, text) => {
    try {
      await draw();
    } catch (err) {
      replace(body, message(errText(err), 'error'));
      return;
    }
    const at = document.getElementById(where);
    const status = at?.querySelector('[aria-live]');
    if (status) replace(status, message(text));
    at?.querySelector('button')?.focus();
  };
}

// trackPage is /admin/tracks/{id}: any track of the catalog, drafts
// included.
export async function trackPage(id: string): Promise<Node> {
  const heading = h('h1', null, t('catalog.track'));
  const body = h('div');
  const root = h('div', { id: 'catalog-track-page' }, h('p', null, h('a', { href: '/admin/catalog' }, t('catalog.list.back'))), heading, body);
  const draw = async () => {
    const tr = await get<AdminTrack>('/v1/admin/tracks/' + encodeURIComponent(id), true);
    heading.textContent = t('catalog.track.title', { title: tr.title });
    replace(body, trackSection(tr, reload));
  };
  const reload = redrawn(draw, body);
  try {
    await draw();
  } catch (err) {
    replace(body, message(errText(err), 'error'));
  }
  return root;
}

// uploadPage is /admin/uploads/{id}.
export async function uploadPage(id: string): Promise<Node> {
  const heading = h('h1', null, t('admin.title'));
  const state = h('p', { id: 'upload-state', 'aria-live': 'polite' });
  const body = h('div');
  const root = h('div', { id: 'upload-page' }, h('p', null, h('a', { href: '/admin' }, t('catalog.back'))), heading, state, body);
  const show = (u: AdminUpload) => {
    heading.textContent = t('catalog.upload.title', { name: u.filename || u.key });
    root.dataset.state = u.state;
    state.className = u.state === 'failed' ? 'error' : '';
    state.textContent = t('catalog.upload.state', { state: stateText(u) });
  };
  // draw replaces the forms with the track as the catalog has it now.
  const draw = async () => {
    const u = await get<AdminUpload>('/v1/admin/uploads/' + encodeURIComponent(id), true);
    show(u);
    if (!final(u)) {
      replace(body, h('p', { class: 'muted' }, t('catalog.upload.waiting')));
      return u;
    }
    if (!u.track) {
      replace(body, h('p', { class: 'muted' }, t('catalog.upload.notrack')));
      return u;
    }
    replace(body, u.duplicate ? h('p', { class: 'notice' }, t('catalog.upload.duplicate')) : null, trackSection(u.track, reload));
    return u;
  };
  const reload = redrawn(draw, body);
  let u: AdminUpload;
  try {
    u = await draw();
  } catch (err) {
    replace(body, message(errText(err), 'error'));
    return root;
  }
  if (!final(u)) {
    void follow(id, show, () => root.isConnected).then(() => (root.isConnected ? draw() : undefined)).catch((err) => replace(body, message(errText(err), 'error')));
  }
  return root;
}
