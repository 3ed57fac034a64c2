// Overture's web app: the listener app and the admin console in one
// bundle. main builds the frame (header, navigation, player bar) and
// renders the page of the current route into <main>.

import './app.css';
import { h, replace } from './dom';
import { t, currentLang, setLang, onLangChange, type Lang } from './i18n';
import { onRoute } from './router';
import { session } from './session';
import { playerBar } from './playerbar';
import { render } from './pages/routes';

// Unhandled errors are kept for the browser tests' failure reports.
const errors: string[] = [];
(window as unknown as { overtureErrors: string[] }).overtureErrors = errors;
window.addEventListener('error', (e) => errors.push(String(e.message)));
window.addEventListener('unhandledrejection', (e) => errors.push(String(e.reason)));

const root = document.getElementById('app')!;
const main = h('main', { id: 'main', tabindex: '-1' });
const header = h('header', { class: 'top' });
const bar = playerBar();

function navLink(path: string, label: string): HTMLLIElement {
  const here = location.pathname === path || (path !== '/' && location.pathname.startsWith(path));
  return h('li', null, h('a', { href: path, 'aria-current': here ? 'page' : null }, label));
}

function drawHeader(): void {
  const signed = session.signedIn();
  const lang = h('select', { id: 'lang', 'aria-label': t('account.language') },
    h('option', { value: 'en', selected: currentLang() === 'en' }, 'English'),
    h('option', { value: 'ru', selected: currentLang() === 'ru' }, 'Русский'));
  lang.addEventListener('change', () => setLang(lang.value as Lang));
  replace(header,
    h('a', { class: 'skip', href: '#main' }, t('nav.skip')),
    h('a', { class: 'brand', href: '/' }, t('app.name')),
    h('nav', { class: 'main', 'aria-label': t('nav.main') },
      h('ul', null,
        navLink('/search', t('nav.search')),
        navLink('/genres', t('genre.nav')),
        navLink('/charts', t('nav.charts')),
        signed ? navLink('/history', t('nav.history')) : null,
        navLink('/queue', t('nav.queue')),
        signed ? navLink('/premium', t('nav.premium')) : null,
        signed ? navLink('/account', t('nav.account')) : null,
        session.isAdmin() ? navLink('/admin', t('nav.admin')) : null,
        signed ? null : navLink('/signin', t('nav.signin')),
        signed ? null : navLink('/signup', t('nav.signup')))),
    h('div', { class: 'lang' }, lang));
}

let renderSeq = 0;

async function draw(): Promise<void> {
  const seq = ++renderSeq;
  drawHeader();
  const page = await render(location.pathname, new URLSearchParams(location.search));
  if (seq !== renderSeq) return;
  replace(main, page);
  document.title = (main.querySelector('h1')?.textContent || '') + ' · Overture';
}

root.append(header, main, bar);
onRoute(() => {
  void draw().then(() => main.focus({ preventScroll: true }));
  window.scrollTo(0, 0);
});
onLangChange(() => void draw());
session.onChange(() => drawHeader());

async function boot(): Promise<void> {
  if (session.signedIn()) {
    const me = await session.loadMe();
    if (me && (me.locale === 'ru' || me.locale === 'en') && !localStorage.getItem('overture.lang')) setLang(me.locale);
  }
  await draw();
  document.body.dataset.ready = 'true';
}

void boot();
