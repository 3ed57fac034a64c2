// router: client-side routes over the History API. ROUTES must list the
// same paths as internal/webapp's Routes (the gateway serves index.html
// for them; TestRoutesMatchTheRouter compares the two).

export const ROUTES = [
  '/', '/signin', '/signup', '/forgot-password', '/reset-password', '/confirm',
  '/search', '/artist/', '/album/', '/track/', '/genres', '/genre/', '/charts', '/history',
  '/queue', '/account', '/premium', '/admin', '/admin/',
];

type Listener = () => void;
const listeners: Listener[] = [];

export function onRoute(f: Listener): void {
  listeners.push(f);
}

export function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  for (const f of listeners) f();
}

window.addEventListener('popstate', () => {
  for (const f of listeners) f();
});

// Links inside the app navigate without a page load.
document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = (e.target as Element).closest('a');
  if (!a || a.target || a.hasAttribute('download')) return;
  const href = a.getAttribute('href');
  if (!href || !href.startsWith('/') || href.startsWith('//') || href.startsWith('/v1/')) return;
  e.preventDefault();
  navigate(href);
});
