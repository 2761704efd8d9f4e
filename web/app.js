// The stentor web app: a tiny router and the pages around the Space page.

import { api, currentUser } from './api.js';
import { h, initials, mount, toast } from './dom.js';
import { clock, openSpace } from './space.js';
import { homeTimeline, icon, notificationsPage, postPage, profilePage, remindButton, settingsPage } from './social.js';
import { moderationConsole, reportButton, statementPage, transparencyPage } from './moderation.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
let user = null;
let leavePage = null;

export function navigate(path) {
  history.pushState({}, '', path);
  route();
}

document.addEventListener('click', (e) => {
  const link = e.target.closest('a[data-link]');
  if (!link || e.metaKey || e.ctrlKey || e.shiftKey) return;
  e.preventDefault();
  navigate(link.getAttribute('href'));
});
window.addEventListener('popstate', route);
window.addEventListener('stentor:busy', (e) => {
  toast(`The server is busy; trying again in ${e.detail.seconds} s`);
});
window.addEventListener('stentor:work', () => {
  toast('The server is under attack: your browser solves a small puzzle to get in');
});

async function route() {
  if (leavePage) leavePage();
  leavePage = null;
  try {
    user = await currentUser();
  } catch {
    user = null;
  }
  renderNav();
  const path = location.pathname;
  const space = path.match(/^\/s\/([A-Za-z0-9_-]{1,64})$/);
  const clip = path.match(/^\/c\/([a-z0-9]{1,64})$/);
  const profile = path.match(/^\/u\/([a-z0-9_]{1,30})$/);
  const post = path.match(/^\/p\/([0-9]{1,19})$/);
  const statement = path.match(/^\/statements\/([0-9]{1,19})$/);
  if (path === '/') await home();
  else if (profile) leavePage = await profilePage(main, user, profile[1], notFound);
  else if (post) leavePage = await postPage(main, user, post[1], notFound);
  else if (statement) {
    if (!(await statementPage(main, user, statement[1], notFound))) navigate(`/signin?next=${path}`);
  } else if (path === '/moderation') {
    if (user) await moderationConsole(main, user, notFound);
    else navigate('/signin?next=/moderation');
  } else if (path === '/recommendations') {
    recommendationsPage();
  } else if (path === '/transparency') {
    await transparencyPage(main, notFound);
  } else if (path === '/notifications') {
    if (!(await notificationsPage(main, user, refreshUnread))) navigate('/signin?next=/notifications');
  } else if (path === '/settings') {
    if (user) await settingsPage(main, user, signOut);
    else navigate('/signin?next=/settings');
  } else if (path === '/signin') authPage('signin');
  else if (path === '/signup') authPage('signup');
  else if (path === '/new') newSpace();
  else if (space) leavePage = await openSpace(main, space[1], user);
  else if (clip) await clipPage(clip[1]);
  else notFound();
  main.focus({ preventScroll: true });
}

const unreadBadge = h('span', { class: 'count-badge', hidden: true, 'data-testid': 'unread' });
let unreadTimer = 0;

/** The unread count on the bell, asked for every 30 s while signed in. */
async function refreshUnread() {
  clearTimeout(unreadTimer);
  if (!user) return;
  try {
    const inbox = await api('GET', '/notifications?limit=1');
    unreadBadge.textContent = inbox.unread > 99 ? '99+' : String(inbox.unread);
    unreadBadge.hidden = inbox.unread === 0;
  } catch { /* next time */ }
  unreadTimer = setTimeout(refreshUnread, 30_000);
}

function renderNav() {
  if (user) {
    mount(nav,
      h('a', { class: 'btn small ghost icon-btn', href: '/notifications', 'data-link': true, 'aria-label': 'Notifications' },
        icon('bell'), unreadBadge),
      user.role === 'moderator' || user.role === 'admin'
        ? h('a', { class: 'btn small ghost icon-btn', href: '/moderation', 'data-link': true, 'aria-label': 'Moderation', 'data-testid': 'console' }, icon('shield'))
        : null,
      h('a', { class: 'me-link', href: `/u/${user.handle}`, 'data-link': true, 'aria-label': 'Your profile' },
        h('span', { class: 'avatar small', 'aria-hidden': 'true' }, initials(user.handle)),
        h('span', { class: 'who' }, `@${user.handle}`)),
      h('a', { class: 'btn small', href: '/new', 'data-link': true }, 'New Space'),
      h('button', { class: 'btn small ghost wide-only', type: 'button', onclick: signOut }, 'Sign out'));
    refreshUnread();
  } else {
    mount(nav,
      h('a', { class: 'btn small ghost', href: '/signin', 'data-link': true }, 'Sign in'),
      h('a', { class: 'btn small', href: '/signup', 'data-link': true }, 'Sign up'));
  }
}

export async function signOut() {
  await api('DELETE', '/sessions').catch(() => {});
  navigate('/');
}

function card(space) {
  const when = space.state === 'live'
    ? h('span', { class: 'badge live' }, 'Live')
    : h('span', { class: 'badge' }, space.starts_at
      ? new Date(space.starts_at * 1000).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' })
      : 'Scheduled');
  const remind = user && space.state === 'scheduled' && space.host !== user.id ? remindButton(space.id) : null;
  return h('li', { class: 'card-item' },
    h('a', { class: 'card', href: `/s/${space.id}`, 'data-link': true },
      h('span', { class: 'card-title' }, space.title),
      h('span', { class: 'card-meta' }, when, space.host_handle ? ` hosted by @${space.host_handle}` : '',
        space.listeners != null ? ` · ${space.listeners} listening` : '')),
    remind);
}

function section(title, spaces, empty, extra = null) {
  return h('section', { class: 'section', 'aria-label': title },
    h('div', { class: 'section-head' }, h('h2', {}, title), extra),
    spaces.length ? h('ul', { class: 'cards', 'data-list': title }, spaces.map(card)) : h('p', { class: 'muted' }, empty));
}

const ORDER_KEY = 'stentor.order';
const ORDERS = { listeners: 'Most listened', newest: 'Newest' };

/** How the lists are ordered, and the choice of the other order (DSA Art. 27). */
function orderChoice(order) {
  return h('div', { class: 'order', role: 'group', 'aria-label': 'Order of the lists' },
    Object.entries(ORDERS).map(([value, label]) => h('button', {
      class: `btn tiny ${value === order ? '' : 'ghost'}`, type: 'button', 'aria-pressed': value === order ? 'true' : 'false',
      'data-testid': `order-${value}`,
      onclick: () => { localStorage.setItem(ORDER_KEY, value); home(); },
    }, label)),
    h('a', { class: 'small', href: '/recommendations', 'data-link': true }, 'Why this order?'));
}

async function home() {
  mount(main, h('div', { class: 'page' }, h('p', { class: 'muted' }, 'Loading…')));
  const order = ORDERS[localStorage.getItem(ORDER_KEY)] ? localStorage.getItem(ORDER_KEY) : 'listeners';
  const spaces = await api('GET', `/spaces?order=${order}`).catch(() => []);
  const mine = user ? await api('GET', '/me/spaces').catch(() => []) : [];
  const live = spaces.filter((s) => s.state === 'live');
  const scheduled = spaces.filter((s) => s.state === 'scheduled');
  if (user) {
    leavePage = await homeTimeline(main, user, h('div', { class: 'discovery' },
      h('a', { class: 'btn', href: '/new', 'data-link': true }, 'Start a Space'),
      section('Live now', live, 'Nothing is live right now.', orderChoice(order)),
      section('Scheduled', scheduled, 'Nothing is scheduled yet.'),
      section('Your Spaces', mine, 'You have not hosted a Space yet.')));
    return;
  }
  mount(main, h('div', { class: 'page' },
    h('div', { class: 'hero' },
      h('h1', {}, 'Live audio for crowds'),
      h('p', { class: 'lead' }, 'Open a Space, bring up to a dozen voices, and let anyone listen — in the browser or any audio player.'),
      user
        ? h('a', { class: 'btn big', href: '/new', 'data-link': true }, 'Start a Space')
        : h('a', { class: 'btn big', href: '/signup', 'data-link': true }, 'Create an account to host')),
    section('Live now', live, 'Nothing is live right now.', orderChoice(order)),
    section('Scheduled', scheduled, 'Nothing is scheduled yet.'),
    user ? section('Your Spaces', mine, 'You have not hosted a Space yet.') : null));
}

/** The main parameters of what orders the lists (DSA Art. 27), for everyone. */
function recommendationsPage() {
  const item = (title, ...text) => h('section', { class: 'panel statement-part' }, h('h2', {}, title), text.map((t) => h('p', {}, t)));
  mount(main, h('div', { class: 'page narrow statement', 'data-testid': 'recommendations' },
    h('h1', {}, 'How stentor orders what you see'),
    h('p', { class: 'muted' }, 'Nothing here is personalised from what you do elsewhere, and nothing is ordered by payment.'),
    item('Live now',
      'By default, the live Spaces with the most people listening right now come first; among Spaces with as many listeners, the one that started last comes first.',
      'Choose "Newest" above the list to see them in the order they started, newest first, whatever their audience. Your choice is kept in this browser.'),
    item('Scheduled', 'The soonest start comes first ("Most listened"), or the most recently announced ("Newest").'),
    item('Your timeline', 'Posts of the accounts you follow and your own, newest first, under a bar of their live Spaces (the last started first). Nothing else is mixed in.'),
    item('Replies', 'Newest first, without accounts you muted or blocked.'),
    item('Content moderators demoted',
      'A Space demoted by a moderation decision is kept out of Live now and Scheduled; a demoted reply is shown only to its author\'s followers. Followers still see a demoted Space in the live bar of their timeline, and anyone with its link can open it. The author receives a statement of reasons and can appeal.',
      'Every such decision is counted in the transparency report.'),
    h('p', {}, h('a', { href: '/transparency', 'data-link': true }, 'The transparency report'), ' · ', h('a', { href: '/', 'data-link': true }, 'Back to the Spaces'))));
}

function field(label, attrs) {
  const id = `f-${attrs.name}`;
  return h('div', { class: 'field' }, h('label', { for: id }, label), h('input', { id, ...attrs }));
}

function authPage(kind) {
  const signup = kind === 'signup';
  const error = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { class: 'panel form', novalidate: true },
    h('h1', {}, signup ? 'Create your account' : 'Welcome back'),
    field('Handle', { name: 'handle', autocomplete: 'username', required: true, minlength: 3, maxlength: 30, pattern: '[a-z0-9_]+', placeholder: 'e.g. ada_l' }),
    field('Password', { name: 'password', type: 'password', autocomplete: signup ? 'new-password' : 'current-password', required: true, minlength: 8 }),
    error,
    h('button', { class: 'btn big', type: 'submit' }, signup ? 'Sign up' : 'Sign in'),
    h('p', { class: 'muted' }, signup ? 'Have an account? ' : 'New here? ',
      h('a', { href: signup ? '/signin' : '/signup', 'data-link': true }, signup ? 'Sign in' : 'Create an account')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    try {
      await api('POST', signup ? '/accounts' : '/sessions', { handle: data.handle.trim().toLowerCase(), password: data.password });
      const next = new URLSearchParams(location.search).get('next');
      navigate(next && next.startsWith('/') ? next : '/');
    } catch (err) {
      error.textContent = err.message;
    }
  });
  mount(main, h('div', { class: 'page narrow' }, form));
}

function newSpace() {
  if (!user) return navigate('/signin?next=/new');
  const error = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { class: 'panel form' },
    h('h1', {}, 'Start a Space'),
    field('Title', { name: 'title', required: true, maxlength: 120, placeholder: 'What will you talk about?' }),
    field('Start time (optional)', { name: 'starts_at', type: 'datetime-local' }),
    h('p', { class: 'muted' }, 'Without a start time, you go live from the Space page when you are ready.'),
    error,
    h('button', { class: 'btn big', type: 'submit' }, 'Create Space'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const body = { title: data.title };
    if (data.starts_at) body.starts_at = Math.floor(new Date(data.starts_at).getTime() / 1000);
    try {
      const space = await api('POST', '/spaces', body);
      toast('Your Space is ready');
      navigate(`/s/${space.id}`);
    } catch (err) {
      error.textContent = err.message;
    }
  });
  mount(main, h('div', { class: 'page narrow' }, form));
}

/** A clip: its player and a link to share. */
async function clipPage(id) {
  let clip;
  try {
    clip = await api('GET', `/clips/${id}`);
  } catch {
    return notFound();
  }
  const link = `${location.origin}/c/${clip.id}`;
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(link);
      toast('Link copied');
    } catch {
      toast(link);
    }
  };
  mount(main, h('div', { class: 'page clip' },
    h('p', { class: 'muted' }, `A ${clock(clip.seconds)} clip from`),
    h('h1', {}, clip.title),
    h('audio', { controls: true, preload: 'metadata', src: clip.url, 'data-testid': 'clip-audio', 'aria-label': `Clip from ${clip.title}` }),
    h('div', { class: 'row' },
      h('button', { class: 'btn', type: 'button', onclick: copy }, 'Copy link'),
      h('a', { class: 'btn ghost', href: `/s/${clip.space}`, 'data-link': true }, 'Go to the Space'),
      reportButton({ kind: 'clip', id: clip.id }, user, { label: 'Report', cls: 'btn ghost' }))));
}

function notFound() {
  mount(main, h('div', { class: 'page narrow' },
    h('h1', {}, 'Nothing here'),
    h('p', {}, h('a', { href: '/', 'data-link': true }, 'Back to the live Spaces'))));
}

route();
