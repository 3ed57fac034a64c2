// account: the account page (language, premium status, scrobbler tokens,
// sign out) and the premium page (subscribe with a sandbox test card, the
// status followed live, cancel at period end).

import { h, replace } from '../dom';
import { t, fmtDate, fmtDateTime, currentLang, setLang, type Lang } from '../i18n';
import { call, get, ApiError, type ListenToken, type Me, type SubscriptionState } from '../api';
import { session } from '../session';
import { navigate } from '../router';
import { message, errText } from '../ui';

function needSignIn(): Node {
  return h('div', null, h('h1', null, t('nav.signin')), h('p', null, t('auth.needed')),
    h('a', { class: 'button primary', href: '/signin?next=' + encodeURIComponent(location.pathname) }, t('nav.signin')));
}

// langNote is what the account page says after a language change, kept
// across the redraw the change causes.
let langNote: string | null = null;

export async function accountPage(): Promise<Node> {
  if (!session.signedIn()) return needSignIn();
  const me = await session.loadMe();
  if (!me) return needSignIn();
  const lang = h('select', { id: 'account-lang', 'aria-describedby': 'lang-status' },
    h('option', { value: 'en', selected: currentLang() === 'en' }, 'English'),
    h('option', { value: 'ru', selected: currentLang() === 'ru' }, 'Русский'));
  const langStatus = h('div', { id: 'lang-status', 'aria-live': 'polite' }, langNote ? message(langNote) : null);
  langNote = null;
  // The account's language is where emails take theirs from: it is saved
  // to the account (PATCH /v1/auth/me), then the app follows.
  lang.addEventListener('change', async () => {
    const l = lang.value as Lang;
    let saved = false;
    try {
      session.me = await call<Me>('PATCH', '/v1/auth/me', { locale: l }, { auth: true });
      saved = true;
    } catch (e) {
      if (!(e instanceof ApiError && (e.status === 404 || e.status === 405))) {
        replace(langStatus, message(errText(e), 'error'));
        return;
      }
    }
    const same = l === currentLang();
    langNote = null;
    setLang(l);
    // A new language redraws the page: the note, in that language, waits
    // for the new page.
    const note = saved ? t('account.language.saved') : t('account.language.local');
    if (same) replace(langStatus, message(note));
    else langNote = note;
  });

  const tokens = h('div', { id: 'tokens' });
  const fresh = h('div', { 'aria-live': 'polite' });
  const drawTokens = async () => {
    try {
      const list = await get<{ tokens: ListenToken[] }>('/v1/me/listen-tokens', true);
      if (!list.tokens.length) {
        replace(tokens, message(t('account.tokens.none')));
        return;
      }
      replace(tokens, h('ul', { class: 'tracks' }, list.tokens.map((tk) => h('li', null,
        h('div', { class: 'meta' }, h('span', { class: 'title' }, tk.name || tk.id),
          h('span', { class: 'sub' }, fmtDateTime(tk.created_at), tk.revoked_at ? ' · ' + t('account.tokens.revoked') : '')),
        tk.revoked_at ? null : h('button', {
          type: 'button', 'aria-label': t('account.tokens.revoke', { name: tk.name || tk.id }),
          onclick: async () => {
            await call('DELETE', '/v1/me/listen-tokens/' + encodeURIComponent(tk.id), undefined, { auth: true });
            replace(fresh);
            await drawTokens();
          },
        }, t('account.tokens.revoke', { name: '' }).trim())))));
    } catch (e) {
      replace(tokens, message(errText(e), 'error'));
    }
  };
  const tokenForm = h('form', null,
    h('label', { for: 'token-name' }, t('account.tokens.name')),
    h('input', { id: 'token-name', type: 'text', maxlength: '100', value: 'scrobbler' }),
    h('p', null, h('button', { type: 'submit' }, t('account.tokens.create'))));
  tokenForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const name = (tokenForm.elements.namedItem('token-name') as HTMLInputElement | null)?.value ?? (document.getElementById('token-name') as HTMLInputElement).value;
      const tk = await call<ListenToken>('POST', '/v1/me/listen-tokens', { name }, { auth: true });
      replace(fresh, h('p', null, t('account.tokens.new')), h('code', { class: 'token', id: 'new-token' }, tk.token ?? ''));
      await drawTokens();
    } catch (err) {
      replace(fresh, message(errText(err), 'error'));
    }
  });
  void drawTokens();

  return h('div', null,
    h('h1', null, t('account.title')),
    h('section', { class: 'card' },
      h('dl', null, h('dt', null, t('account.email')), h('dd', { id: 'account-email' }, me.email),
        h('dt', null, t('account.premium')), h('dd', { id: 'account-premium', 'data-premium': String(me.premium) },
          me.premium ? t('account.premium.yes', { date: fmtDate(me.premium_until) }) : [t('account.premium.no'), ' · ', h('a', { href: '/premium' }, t('premium.offer'))])),
      h('label', { for: 'account-lang' }, t('account.language')), lang, langStatus),
    h('section', { class: 'card', 'aria-labelledby': 'tokens-h' },
      h('h2', { id: 'tokens-h' }, t('account.tokens')),
      h('p', { class: 'muted' }, t('account.tokens.help')),
      tokenForm, fresh, tokens),
    h('p', null,
      h('button', { type: 'button', id: 'signout', onclick: async () => { await session.signOut(); navigate('/', true); } }, t('auth.signout')), ' ',
      h('button', { type: 'button', onclick: async () => { await session.signOut(true); navigate('/', true); } }, t('auth.signout.all'))));
}

// The sandbox's test cards (internal/payment/sandbox): the checkout form of
// a real provider would return such a token.
const cards: Array<[string, string]> = [
  ['tok_success', '4111 1111 1111 1111 — succeeds'],
  ['tok_decline', '4000 0000 0000 0002 — declined'],
  ['tok_insufficient_funds', '4000 0000 0000 9995 — insufficient funds'],
  ['tok_slow', '4000 0000 0000 3220 — slow'],
];

export async function premiumPage(): Promise<Node> {
  if (!session.signedIn()) return needSignIn();
  const statusBox = h('div', { id: 'subscription', 'aria-live': 'polite' });
  const form = h('form', { class: 'card', id: 'subscribe-form' },
    h('fieldset', null, h('legend', null, t('premium.plan')),
      h('label', null, h('input', { type: 'radio', name: 'plan', value: 'monthly', checked: true }), ' ', t('premium.monthly')),
      h('label', null, h('input', { type: 'radio', name: 'plan', value: 'annual' }), ' ', t('premium.annual'))),
    h('label', { for: 'card' }, t('premium.card')),
    h('select', { id: 'card', name: 'card', 'aria-describedby': 'card-help' }, cards.map(([v, label]) => h('option', { value: v }, label))),
    h('p', { id: 'card-help', class: 'muted' }, t('premium.card.help')),
    h('p', null, h('button', { type: 'submit', class: 'primary' }, t('premium.pay'))));
  let timer = 0;
  const draw = (st: SubscriptionState | null) => {
    const s = st?.subscription;
    const running = !!s && ['pending', 'active', 'past_due', 'canceled'].includes(s.status) && !(s.status === 'canceled' && !st?.premium);
    form.hidden = running;
    if (!s) {
      replace(statusBox);
      return;
    }
    const parts: Node[] = [h('p', { id: 'sub-status', 'data-status': s.status }, t('premium.status', { s: t(('status.' + s.status) as 'status.active') }))];
    if (s.status === 'pending') parts.push(message(t('premium.pending')));
    if (s.status === 'active' || s.status === 'past_due') {
      parts.push(h('p', null, t('premium.active', { date: fmtDate(s.period_end) })));
      parts.push(h('button', { type: 'button', id: 'cancel', onclick: cancel }, t('premium.cancel')));
    }
    if (s.status === 'canceled' && st?.premium) parts.push(h('p', null, t('premium.canceled', { date: fmtDate(s.period_end) })));
    if (s.status === 'failed') parts.push(message(t('premium.failed', { reason: s.reason ?? '' }), 'error'));
    replace(statusBox, ...parts);
  };
  // poll follows the subscription until it settles; when the entitlement
  // changes, a new access token is fetched so playback sees it at once.
  const poll = async (first = false) => {
    window.clearTimeout(timer);
    let st: SubscriptionState | null = null;
    try {
      st = await get<SubscriptionState>('/v1/subscriptions/me', true);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) {
        replace(statusBox, message(errText(e), 'error'));
        return;
      }
    }
    if (!first && !statusBox.isConnected) return; // the listener left the page
    draw(st);
    // The entitlement follows the payment through auth (an event later):
    // once auth says premium, a new access token carries it to playback.
    const me = await session.loadMe();
    const settling = st && (st.subscription.status === 'pending' || (st.premium && !me?.premium));
    if (settling && (first || statusBox.isConnected)) timer = window.setTimeout(() => void poll(), 1000);
  };
  async function cancel(): Promise<void> {
    try {
      await call('DELETE', '/v1/subscriptions/me', undefined, { auth: true });
    } catch (e) {
      replace(statusBox, message(errText(e), 'error'));
      return;
    }
    await poll();
  }
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const plan = (form.querySelector('input[name=plan]:checked') as HTMLInputElement).value;
    const card = (form.querySelector('#card') as HTMLSelectElement).value;
    try {
      await call('POST', '/v1/subscriptions', { plan, payment_method: card }, { auth: true });
    } catch (err) {
      replace(statusBox, message(errText(err), 'error'));
      return;
    }
    await poll();
  });
  await poll(true);
  return h('div', null, h('h1', null, t('premium.title')), h('p', null, t('premium.pitch')), statusBox, form);
}
