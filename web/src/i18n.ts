// i18n: the app's texts in English and Russian. The language is the
// account's locale when signed in, else the one chosen here, else the
// browser's.

export type Lang = 'en' | 'ru';

import * as catalogText from './text/catalog';
import * as opsText from './text/ops';
import * as listenerText from './text/listener';

// Each area's texts live in web/src/text/<area>.ts (one owner per file);
// the base texts stay here.
const base = {
  'app.name': 'Overture',
  'nav.main': 'Main',
  'nav.home': 'Home',
  'nav.search': 'Search',
  'nav.charts': 'Charts',
  'nav.history': 'History',
  'nav.queue': 'Queue',
  'nav.account': 'Account',
  'nav.premium': 'Premium',
  'nav.admin': 'Admin',
  'nav.signin': 'Sign in',
  'nav.signup': 'Sign up',
  'nav.skip': 'Skip to content',
  'search.label': 'Search tracks, artists, albums',
  'search.placeholder': 'Kino, Группа крови…',
  'search.none': 'Nothing found for “{q}”.',
  'search.results': '{n} results',
  'search.popular': 'Popular now',
  'track.play': 'Play {title}',
  'track.next': 'Play {title} next',
  'track.add': 'Add {title} to the queue',
  'track.by': 'by',
  'track.album': 'Album',
  'track.duration': 'Duration',
  'track.genre': 'Genre',
  'artist.top': 'Top tracks',
  'artist.albums': 'Albums',
  'album.tracks': 'Tracks',
  'album.playall': 'Play the album',
  'charts.title': 'Charts',
  'charts.tracks': 'Top tracks',
  'charts.artists': 'Top artists',
  'charts.daily': 'Today',
  'charts.weekly': 'This week',
  'charts.period': 'Period',
  'charts.none': 'No chart yet for this period.',
  'charts.streams': '{n} streams',
  'history.title': 'History',
  'history.now': 'Now playing',
  'history.nothing': 'Nothing is playing.',
  'history.listens': 'Listens',
  'history.empty': 'No listens yet.',
  'history.more': 'Show more',
  'queue.title': 'Queue',
  'queue.empty': 'The queue is empty: press Play on a track.',
  'queue.up': 'Move {title} up',
  'queue.down': 'Move {title} down',
  'queue.remove': 'Remove {title} from the queue',
  'queue.playing': 'Playing',
  'queue.clear': 'Clear the queue',
  'player.region': 'Player',
  'player.play': 'Play',
  'player.pause': 'Pause',
  'player.prev': 'Previous track',
  'player.next': 'Next track',
  'player.seek': 'Position in the track',
  'player.volume': 'Volume',
  'player.idle': 'Choose a track to play',
  'player.from': 'from {pop}',
  'player.error': 'Playback failed: {msg}',
  'player.signin': 'Sign in to play music.',
  'auth.email': 'Email',
  'auth.password': 'Password',
  'auth.newpassword': 'New password (at least 10 characters)',
  'auth.signin': 'Sign in',
  'auth.signup': 'Create account',
  'auth.signin.title': 'Sign in to Overture',
  'auth.signup.title': 'Create your Overture account',
  'auth.or': 'or',
  'auth.with': 'Continue with {p}',
  'auth.forgot': 'Forgot your password?',
  'auth.forgot.title': 'Reset your password',
  'auth.forgot.send': 'Email me a reset link',
  'auth.forgot.sent': 'If an account with this email exists, a reset link is on its way.',
  'auth.reset.title': 'Choose a new password',
  'auth.reset.save': 'Save the new password',
  'auth.reset.done': 'Your password is changed. Sign in with it.',
  'auth.registered': 'Almost there: we sent a confirmation link to {email}. Open it to finish.',
  'auth.confirm.title': 'Confirming your email',
  'auth.confirm.ok': 'Your email is confirmed. You can sign in now.',
  'auth.confirm.fail': 'This confirmation link does not work: {msg}',
  'auth.noaccount': 'New here? Create an account',
  'auth.haveaccount': 'Have an account? Sign in',
  'auth.signout': 'Sign out',
  'auth.signout.all': 'Sign out everywhere',
  'auth.needed': 'Sign in to see this page.',
  'account.title': 'Your account',
  'account.email': 'Email',
  'account.language': 'Language',
  'account.save': 'Save',
  'account.premium': 'Premium',
  'account.premium.yes': 'Premium until {date}',
  'account.premium.no': 'Free plan',
  'account.tokens': 'Scrobbler tokens',
  'account.tokens.help': 'Tokens let ListenBrainz-compatible players send your listens. A token is shown only once.',
  'account.tokens.name': 'Token name',
  'account.tokens.create': 'Create a token',
  'account.tokens.revoke': 'Revoke {name}',
  'account.tokens.revoked': 'revoked',
  'account.tokens.new': 'Your new token (copy it now):',
  'account.tokens.none': 'No tokens yet.',
  'premium.title': 'Overture Premium',
  'premium.pitch': 'Lossless and 256 kbit/s streams, no limits.',
  'premium.plan': 'Plan',
  'premium.monthly': 'Monthly — 299 ₽',
  'premium.annual': 'Annual — 2 990 ₽',
  'premium.card': 'Card',
  'premium.card.help': 'Sandbox test cards: no real money moves.',
  'premium.pay': 'Pay and subscribe',
  'premium.status': 'Status: {s}',
  'premium.active': 'You are Premium until {date}.',
  'premium.canceled': 'Canceled: Premium stays until {date}, then ends.',
  'premium.pending': 'Processing your payment…',
  'premium.failed': 'The payment failed: {reason}',
  'premium.cancel': 'Cancel at period end',
  'premium.offer': 'Get Premium for 256 kbit/s sound',
  'status.pending': 'processing',
  'status.active': 'active',
  'status.past_due': 'payment overdue',
  'status.canceled': 'canceled',
  'status.expired': 'expired',
  'status.failed': 'failed',
  'common.loading': 'Loading…',
  'common.error': 'Something went wrong: {msg}',
  'common.notfound': 'This page does not exist.',
  'admin.title': 'Admin console',
  'admin.upload': 'Upload audio',
  'admin.files': 'Audio files',
  'admin.folder': 'A folder of audio files',
  'admin.autopublish': 'Publish when ready',
  'admin.start': 'Upload',
  'admin.uploads': 'Uploads',
  'admin.state': 'State',
  'admin.file': 'File',
  'admin.track': 'Track',
  'admin.progress': 'Upload progress of {name}',
  'admin.publish': 'Publish {name}',
  'admin.unpublish': 'Unpublish {name}',
  'admin.forbidden': 'This console is for administrators.',
  'admin.refresh': 'Refresh',
};

const en = { ...base, ...catalogText.en, ...opsText.en, ...listenerText.en };

type Key = keyof typeof en;

const baseRu: Record<keyof typeof base, string> = {
  'app.name': 'Overture',
  'nav.main': 'Главное меню',
  'nav.home': 'Главная',
  'nav.search': 'Поиск',
  'nav.charts': 'Чарты',
  'nav.history': 'История',
  'nav.queue': 'Очередь',
  'nav.account': 'Аккаунт',
  'nav.premium': 'Премиум',
  'nav.admin': 'Админка',
  'nav.signin': 'Войти',
  'nav.signup': 'Регистрация',
  'nav.skip': 'К содержимому',
  'search.label': 'Поиск треков, исполнителей, альбомов',
  'search.placeholder': 'Кино, Gruppa krovi…',
  'search.none': 'По запросу «{q}» ничего не нашлось.',
  'search.results': 'Найдено: {n}',
  'search.popular': 'Популярное сейчас',
  'track.play': 'Слушать «{title}»',
  'track.next': 'Поставить «{title}» следующим',
  'track.add': 'Добавить «{title}» в очередь',
  'track.by': '—',
  'track.album': 'Альбом',
  'track.duration': 'Длительность',
  'track.genre': 'Жанр',
  'artist.top': 'Популярные треки',
  'artist.albums': 'Альбомы',
  'album.tracks': 'Треки',
  'album.playall': 'Слушать альбом',
  'charts.title': 'Чарты',
  'charts.tracks': 'Лучшие треки',
  'charts.artists': 'Лучшие исполнители',
  'charts.daily': 'Сегодня',
  'charts.weekly': 'За неделю',
  'charts.period': 'Период',
  'charts.none': 'Чарта за этот период пока нет.',
  'charts.streams': 'Прослушиваний: {n}',
  'history.title': 'История',
  'history.now': 'Сейчас играет',
  'history.nothing': 'Сейчас ничего не играет.',
  'history.listens': 'Прослушивания',
  'history.empty': 'Прослушиваний пока нет.',
  'history.more': 'Показать ещё',
  'queue.title': 'Очередь',
  'queue.empty': 'Очередь пуста: нажмите «Слушать» у трека.',
  'queue.up': 'Поднять «{title}»',
  'queue.down': 'Опустить «{title}»',
  'queue.remove': 'Убрать «{title}» из очереди',
  'queue.playing': 'Играет',
  'queue.clear': 'Очистить очередь',
  'player.region': 'Плеер',
  'player.play': 'Играть',
  'player.pause': 'Пауза',
  'player.prev': 'Предыдущий трек',
  'player.next': 'Следующий трек',
  'player.seek': 'Позиция в треке',
  'player.volume': 'Громкость',
  'player.idle': 'Выберите трек',
  'player.from': 'с {pop}',
  'player.error': 'Не удалось воспроизвести: {msg}',
  'player.signin': 'Войдите, чтобы слушать музыку.',
  'auth.email': 'Электронная почта',
  'auth.password': 'Пароль',
  'auth.newpassword': 'Новый пароль (не короче 10 символов)',
  'auth.signin': 'Войти',
  'auth.signup': 'Создать аккаунт',
  'auth.signin.title': 'Вход в Overture',
  'auth.signup.title': 'Регистрация в Overture',
  'auth.or': 'или',
  'auth.with': 'Войти через {p}',
  'auth.forgot': 'Забыли пароль?',
  'auth.forgot.title': 'Сброс пароля',
  'auth.forgot.send': 'Прислать ссылку для сброса',
  'auth.forgot.sent': 'Если такой аккаунт есть, ссылка для сброса уже в пути.',
  'auth.reset.title': 'Новый пароль',
  'auth.reset.save': 'Сохранить пароль',
  'auth.reset.done': 'Пароль изменён. Войдите с новым паролем.',
  'auth.registered': 'Почти готово: мы отправили ссылку на {email}. Откройте её, чтобы закончить.',
  'auth.confirm.title': 'Подтверждение почты',
  'auth.confirm.ok': 'Почта подтверждена. Теперь можно войти.',
  'auth.confirm.fail': 'Ссылка не работает: {msg}',
  'auth.noaccount': 'Впервые здесь? Зарегистрируйтесь',
  'auth.haveaccount': 'Уже есть аккаунт? Войдите',
  'auth.signout': 'Выйти',
  'auth.signout.all': 'Выйти на всех устройствах',
  'auth.needed': 'Войдите, чтобы открыть эту страницу.',
  'account.title': 'Ваш аккаунт',
  'account.email': 'Почта',
  'account.language': 'Язык',
  'account.save': 'Сохранить',
  'account.premium': 'Премиум',
  'account.premium.yes': 'Премиум до {date}',
  'account.premium.no': 'Бесплатный тариф',
  'account.tokens': 'Токены для скробблеров',
  'account.tokens.help': 'Токен позволяет плеерам, совместимым с ListenBrainz, отправлять ваши прослушивания. Токен показывается один раз.',
  'account.tokens.name': 'Название токена',
  'account.tokens.create': 'Создать токен',
  'account.tokens.revoke': 'Отозвать {name}',
  'account.tokens.revoked': 'отозван',
  'account.tokens.new': 'Ваш новый токен (скопируйте сейчас):',
  'account.tokens.none': 'Токенов пока нет.',
  'premium.title': 'Overture Премиум',
  'premium.pitch': 'Звук без потерь и 256 кбит/с, без ограничений.',
  'premium.plan': 'Тариф',
  'premium.monthly': 'Месяц — 299 ₽',
  'premium.annual': 'Год — 2 990 ₽',
  'premium.card': 'Карта',
  'premium.card.help': 'Тестовые карты песочницы: настоящие деньги не списываются.',
  'premium.pay': 'Оплатить подписку',
  'premium.status': 'Статус: {s}',
  'premium.active': 'Премиум действует до {date}.',
  'premium.canceled': 'Подписка отменена: Премиум действует до {date}.',
  'premium.pending': 'Обрабатываем платёж…',
  'premium.failed': 'Платёж не прошёл: {reason}',
  'premium.cancel': 'Отменить в конце периода',
  'premium.offer': 'Оформите Премиум для звука 256 кбит/с',
  'status.pending': 'обработка',
  'status.active': 'активна',
  'status.past_due': 'просрочен платёж',
  'status.canceled': 'отменена',
  'status.expired': 'истекла',
  'status.failed': 'не оплачена',
  'common.loading': 'Загрузка…',
  'common.error': 'Что-то пошло не так: {msg}',
  'common.notfound': 'Такой страницы нет.',
  'admin.title': 'Админка',
  'admin.upload': 'Загрузка аудио',
  'admin.files': 'Аудиофайлы',
  'admin.folder': 'Папка с аудиофайлами',
  'admin.autopublish': 'Опубликовать после обработки',
  'admin.start': 'Загрузить',
  'admin.uploads': 'Загрузки',
  'admin.state': 'Состояние',
  'admin.file': 'Файл',
  'admin.track': 'Трек',
  'admin.progress': 'Загрузка {name}',
  'admin.publish': 'Опубликовать {name}',
  'admin.unpublish': 'Снять с публикации {name}',
  'admin.forbidden': 'Эта страница только для администраторов.',
  'admin.refresh': 'Обновить',
};

const ru: Record<Key, string> = { ...baseRu, ...catalogText.ru, ...opsText.ru, ...listenerText.ru };

const dicts: Record<Lang, Record<Key, string>> = { en, ru };
const listeners: Array<() => void> = [];

function initial(): Lang {
  const saved = localStorage.getItem('overture.lang');
  if (saved === 'en' || saved === 'ru') return saved;
  return navigator.language.toLowerCase().startsWith('ru') ? 'ru' : 'en';
}

let lang: Lang = initial();

export function currentLang(): Lang {
  return lang;
}

export function setLang(l: Lang): void {
  if (l === lang) return;
  lang = l;
  localStorage.setItem('overture.lang', l);
  document.documentElement.lang = l;
  for (const f of listeners) f();
}

export function onLangChange(f: () => void): void {
  listeners.push(f);
}

export function t(key: Key, vars?: Record<string, string | number>): string {
  let s = dicts[lang][key] ?? en[key] ?? key;
  if (vars) {
    for (const [k, v] of Object.entries(vars)) s = s.split('{' + k + '}').join(String(v));
  }
  return s;
}

export function fmtDate(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  return d.toLocaleDateString(lang === 'ru' ? 'ru-RU' : 'en-GB', { day: 'numeric', month: 'long', year: 'numeric' });
}

export function fmtDateTime(iso: string): string {
  const d = new Date(iso);
  return d.toLocaleString(lang === 'ru' ? 'ru-RU' : 'en-GB', { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
}

document.documentElement.lang = lang;
