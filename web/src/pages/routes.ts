// routes: the page for a path.

import { h } from '../dom';
import { t } from '../i18n';
import { home, searchPage, artistPage, albumPage, trackPage, chartsPage, historyPage, queuePage } from './listener';
import { signIn, signUp, confirmPage, forgotPage, resetPage } from './auth';
import { accountPage, premiumPage } from './account';
import { adminPage } from './admin';
import { deadLettersPage, cdnPage, statsPage } from './ops';
import { genresPage, genrePage } from './genres';

export async function render(path: string, q: URLSearchParams): Promise<Node> {
  const id = (prefix: string) => decodeURIComponent(path.slice(prefix.length));
  try {
    switch (true) {
      case path === '/': return await home();
      case path === '/search': return searchPage(q.get('q') ?? '');
      case path.startsWith('/artist/'): return await artistPage(id('/artist/'));
      case path.startsWith('/album/'): return await albumPage(id('/album/'));
      case path.startsWith('/track/'): return await trackPage(id('/track/'));
      case path === '/genres': return await genresPage();
      case path.startsWith('/genre/'): return await genrePage(id('/genre/'), q.get('page'));
      case path === '/charts': return await chartsPage(q.get('period') === 'weekly' ? 'weekly' : 'daily');
      case path === '/history': return await historyPage();
      case path === '/queue': return queuePage();
      case path === '/signin': return signIn(q.get('next') ?? '/');
      case path === '/signup': return signUp();
      case path === '/confirm': return await confirmPage(q.get('token') ?? '');
      case path === '/forgot-password': return forgotPage();
      case path === '/reset-password': return resetPage(q.get('token') ?? '');
      case path === '/account': return await accountPage();
      case path === '/premium': return await premiumPage();
      case path === '/admin/dead-letters': return await deadLettersPage();
      case path === '/admin/cdn': return await cdnPage();
      case path === '/admin/stats': return await statsPage();
      case path === '/admin' || path.startsWith('/admin/'): return await adminPage();
    }
  } catch (e) {
    return h('div', null, h('h1', null, t('app.name')), h('p', { class: 'error', role: 'alert' },
      t('common.error', { msg: e instanceof Error ? e.message : String(e) })));
  }
  return h('div', null, h('h1', null, t('common.notfound')), h('p', null, h('a', { href: '/' }, t('nav.home'))));
}
