// auth: sign in (email and password, or a provider), sign up, the emailed
// confirmation link and the password reset form.

import { h, replace } from '../dom';
import { t, currentLang } from '../i18n';
import { call, ApiError, type Tokens } from '../api';
import { session } from '../session';
import { navigate } from '../router';
import { message, errText } from '../ui';

function field(id: string, label: string, type: string, autocomplete: string, extra: Record<string, string> = {}): HTMLElement[] {
  return [h('label', { for: id }, label), h('input', { id, name: id, type, autocomplete, required: true, ...extra })];
}

function val(form: HTMLFormElement, name: string): string {
  return (form.elements.namedItem(name) as HTMLInputElement).value;
}

// providers are the sign-in buttons: each starts the provider's redirect
// flow at the auth API with return_to, the page the auth API sends the
// browser back to with a one-time code in the fragment (docs/auth.md, "The
// browser flow").
const providers: Array<[string, string]> = [['local', 'Overture ID (local)'], ['google', 'Google'], ['vk', 'VK ID'], ['yandex', 'Yandex ID']];

function safeNext(next: string): string {
  return next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/';
}

// providerStart is where a provider button goes.
function providerStart(id: string, next: string): string {
  const back = '/signin' + (safeNext(next) === '/' ? '' : '?next=' + encodeURIComponent(safeNext(next)));
  return '/v1/auth/oauth/' + encodeURIComponent(id) + '/start?return_to=' + encodeURIComponent(back);
}

// finishProviderSignIn completes a provider's sign-in when the auth API
// sent the browser back here: the fragment carries a one-time code
// (oauth_code), which is exchanged for tokens with a POST, or the refusal
// (oauth_error, detail). The fragment leaves the address bar at once.
async function finishProviderSignIn(next: string, status: HTMLElement): Promise<void> {
  const f = new URLSearchParams(location.hash.slice(1));
  const code = f.get('oauth_code');
  const failed = f.get('oauth_error');
  if (!code && !failed) return;
  history.replaceState(null, '', location.pathname + location.search);
  if (failed) {
    replace(status, message(t('auth.oauth.failed', { msg: f.get('detail') || failed }), 'error'));
    return;
  }
  replace(status, message(t('auth.oauth.progress')));
  try {
    const tokens = await call<Tokens>('POST', '/v1/auth/oauth/exchange', { code });
    await session.set(tokens);
    navigate(safeNext(next), true);
  } catch (err) {
    const msg = err instanceof ApiError && err.slug === 'invalid-code' ? t('auth.oauth.expired') : (err instanceof Error ? err.message : String(err));
    replace(status, message(t('auth.oauth.failed', { msg }), 'error'));
  }
}

export function signIn(next: string): Node {
  const status = h('div', { 'aria-live': 'polite', id: 'signin-status' });
  void finishProviderSignIn(next, status);
  const form = h('form', { class: 'card', id: 'signin-form', novalidate: false },
    ...field('email', t('auth.email'), 'email', 'username'),
    ...field('password', t('auth.password'), 'password', 'current-password'),
    h('p', null, h('button', { type: 'submit', class: 'primary' }, t('auth.signin'))),
    status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    replace(status);
    try {
      const tokens = await call<Tokens>('POST', '/v1/auth/login', { email: val(form, 'email'), password: val(form, 'password') });
      await session.set(tokens);
      navigate(safeNext(next), true);
    } catch (err) {
      replace(status, message(errText(err), 'error'));
    }
  });
  return h('div', null,
    h('h1', null, t('auth.signin.title')),
    form,
    h('p', null, t('auth.or')),
    h('div', { class: 'providers' }, providers.map(([id, name]) =>
      h('a', { class: 'button', 'data-provider': id, href: providerStart(id, next) }, t('auth.with', { p: name })))),
    h('p', null, h('a', { href: '/forgot-password' }, t('auth.forgot'))),
    h('p', null, h('a', { href: '/signup' }, t('auth.noaccount'))));
}

export function signUp(): Node {
  const status = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'card', id: 'signup-form' },
    ...field('email', t('auth.email'), 'email', 'email'),
    ...field('password', t('auth.newpassword'), 'password', 'new-password', { minlength: '10' }),
    h('p', null, h('button', { type: 'submit', class: 'primary' }, t('auth.signup'))),
    status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    replace(status);
    const email = val(form, 'email');
    try {
      await call('POST', '/v1/auth/register', { email, password: val(form, 'password'), locale: currentLang() });
      replace(form, message(t('auth.registered', { email })));
    } catch (err) {
      replace(status, message(errText(err), 'error'));
    }
  });
  return h('div', null, h('h1', null, t('auth.signup.title')), form, h('p', null, h('a', { href: '/signin' }, t('auth.haveaccount'))));
}

// confirmPage is where the emailed confirmation link lands: it confirms
// through the API and says so.
export async function confirmPage(token: string): Promise<Node> {
  let result: Node;
  try {
    await call('GET', '/v1/auth/confirm?token=' + encodeURIComponent(token));
    result = h('div', null, message(t('auth.confirm.ok')), h('p', null, h('a', { class: 'button primary', href: '/signin' }, t('auth.signin'))));
  } catch (err) {
    result = message(t('auth.confirm.fail', { msg: err instanceof Error ? err.message : String(err) }), 'error');
  }
  // The token is spent: keep it out of the history and the address bar.
  history.replaceState(null, '', '/confirm');
  return h('div', { id: 'confirm' }, h('h1', null, t('auth.confirm.title')), result);
}

export function forgotPage(): Node {
  const status = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'card' },
    ...field('email', t('auth.email'), 'email', 'email'),
    h('p', null, h('button', { type: 'submit', class: 'primary' }, t('auth.forgot.send'))),
    status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await call('POST', '/v1/auth/password/forgot', { email: val(form, 'email') });
      replace(form, message(t('auth.forgot.sent')));
    } catch (err) {
      replace(status, message(errText(err), 'error'));
    }
  });
  return h('div', null, h('h1', null, t('auth.forgot.title')), form);
}

// resetPage is where the emailed reset link lands: a form for the new
// password, posted with the link's token.
export function resetPage(token: string): Node {
  const status = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'card', id: 'reset-form' },
    ...field('password', t('auth.newpassword'), 'password', 'new-password', { minlength: '10' }),
    h('p', null, h('button', { type: 'submit', class: 'primary' }, t('auth.reset.save'))),
    status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await call('POST', '/v1/auth/password/reset', { token, password: val(form, 'password') });
      session.clear();
      replace(form, message(t('auth.reset.done')), h('p', null, h('a', { class: 'button primary', href: '/signin' }, t('auth.signin'))));
    } catch (err) {
      replace(status, message(errText(err), 'error'));
    }
  });
  return h('div', null, h('h1', null, t('auth.reset.title')), form);
}
