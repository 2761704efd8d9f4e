// The social pages: home timeline with the live bar, profiles, a post with its replies, and
// the notifications; posts whose counts move live.

import { api } from './api.js';
import { h, initials, mount, toast } from './dom.js';
import { reportButton } from './moderation.js';

/** Outline icons (24 × 24, stroked with the current colour): no emoji font needed. */
const ICONS = {
  reply: 'M4 5h16v11H9l-5 4z',
  repost: 'M7 7h11l-3-3M18 7v4M17 17H6l3 3M6 17v-4',
  like: 'M12 20s-7-4.4-7-10a4 4 0 0 1 7-2.6A4 4 0 0 1 19 10c0 5.6-7 10-7 10z',
  share: 'M14 4h6v6M20 4l-9 9M18 14v6H4V6h6',
  bell: 'M6 16V11a6 6 0 0 1 12 0v5l2 2H4zM10 20a2 2 0 0 0 4 0',
  bellOff: 'M6 16V11a6 6 0 0 1 9-5.2M18 11v5l2 2H8M10 20a2 2 0 0 0 4 0M3 3l18 18',
  person: 'M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4 21a8 8 0 0 1 16 0',
  live: 'M12 12m-3 0a3 3 0 1 0 6 0 3 3 0 1 0-6 0M5 5a10 10 0 0 0 0 14M19 5a10 10 0 0 1 0 14',
  clock: 'M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM12 7v5l3 2',
  shield: 'M12 3l8 3v6c0 4.5-3.4 8.3-8 9-4.6-.7-8-4.5-8-9V6l8-3z',
};

/** An icon by name. */
export function icon(name) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', `ico ico-${name}`);
  const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('d', ICONS[name]);
  svg.append(path);
  return svg;
}

/** "now", "5 min", "3 h", "2 d", or the date. */
function ago(seconds) {
  const d = Date.now() / 1000 - seconds;
  if (d < 60) return 'now';
  if (d < 3600) return `${Math.floor(d / 60)} min`;
  if (d < 86400) return `${Math.floor(d / 3600)} h`;
  if (d < 7 * 86400) return `${Math.floor(d / 86400)} d`;
  return new Date(seconds * 1000).toLocaleDateString([], { dateStyle: 'medium' });
}

/** A number as people read it: 4 211, 17.2k, 1.3M. */
export function count(n) {
  if (n < 10_000) return n.toLocaleString();
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 100_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

function avatar(user, size = '') {
  if (user.avatar_url) return h('img', { class: `avatar ${size}`, src: user.avatar_url, alt: '' });
  return h('span', { class: `avatar ${size}`, 'aria-hidden': 'true' }, initials(user.display_name || user.handle));
}

function nameOf(user) {
  return user.display_name || user.handle;
}

async function share(path) {
  const link = `${location.origin}${path}`;
  try {
    await navigator.clipboard.writeText(link);
    toast('Link copied');
  } catch {
    toast(link);
  }
}

/** The card of a Space a post announces, with "remind me" when it is still to come. */
function spaceCard(space, user) {
  const badge = space.state === 'live'
    ? h('span', { class: 'badge live' }, 'Live')
    : space.state === 'ended'
      ? h('span', { class: 'badge' }, 'Ended')
      : h('span', { class: 'badge' }, space.starts_at
        ? new Date(space.starts_at * 1000).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' })
        : 'Scheduled');
  const card = h('div', { class: 'space-card' },
    h('a', { class: 'space-card-link', href: `/s/${space.id}`, 'data-link': true },
      h('span', { class: 'card-meta' }, badge, space.host_handle ? ` @${space.host_handle}` : ''),
      h('span', { class: 'card-title' }, space.title)));
  if (space.state === 'scheduled' && user) card.append(remindButton(space.id));
  return card;
}

/** "Remind me" on a scheduled Space: an alert 30 minutes before and at the start. */
export function remindButton(spaceId) {
  const button = h('button', { class: 'btn tiny ghost', type: 'button', 'aria-pressed': 'false', 'data-testid': `remind-${spaceId}` }, 'Remind me');
  const show = (on) => {
    button.setAttribute('aria-pressed', String(on));
    button.textContent = on ? 'Reminder set' : 'Remind me';
  };
  api('GET', `/spaces/${spaceId}/reminder`).then((r) => show(r.on)).catch(() => {});
  button.addEventListener('click', async (e) => {
    e.preventDefault();
    const on = button.getAttribute('aria-pressed') !== 'true';
    try {
      await api('PUT', `/spaces/${spaceId}/reminder`, { on });
      show(on);
      toast(on ? 'We will remind you 30 minutes before, and at the start' : 'Reminder removed');
    } catch (err) {
      toast(err.message);
    }
  });
  return button;
}

/**
 * Live counts: one EventSource for the posts on the page; each `counts` event updates the
 * buttons of that post. Reopened by the browser when the server ends it.
 */
class LiveCounts {
  constructor() {
    this.views = new Map();
    this.source = null;
  }

  add(id, view) {
    if (!this.views.has(id)) this.views.set(id, []);
    this.views.get(id).push(view);
  }

  start() {
    this.stop();
    const ids = [...this.views.keys()].slice(0, 100);
    if (!ids.length || !window.EventSource) return;
    this.source = new EventSource(`/api/v1/posts/live?ids=${ids.join(',')}`);
    this.source.addEventListener('counts', (e) => {
      const c = JSON.parse(e.data);
      for (const view of this.views.get(c.id) || []) view.update(c);
    });
  }

  stop() {
    if (this.source) this.source.close();
    this.source = null;
  }
}

/** An action button with a count: like, repost. */
function action(label, name, n, on, testid) {
  const num = h('span', { class: 'n' }, count(n));
  const button = h('button', { class: `act${on ? ' on' : ''}`, type: 'button', 'aria-pressed': String(on), 'aria-label': `${label} (${n})`, 'data-testid': testid },
    icon(name), num);
  return {
    button,
    set(value, pressed) {
      num.textContent = count(value);
      button.setAttribute('aria-label', `${label} (${value})`);
      if (pressed !== undefined) {
        button.classList.toggle('on', pressed);
        button.setAttribute('aria-pressed', String(pressed));
      }
    },
  };
}

/** One post, with its actions; `live` gets its counts. */
export function postView(post, user, live, { detail = false } = {}) {
  const shown = post.reposted || post;
  const like = action('Like', 'like', shown.like_count, shown.liked, `like-${shown.id}`);
  const repost = action('Repost', 'repost', shown.repost_count, shown.reposted_by_me, `repost-${shown.id}`);
  const replies = h('a', { class: 'act', href: `/p/${shown.id}`, 'data-link': true, 'aria-label': `Replies (${shown.reply_count})` },
    icon('reply'), h('span', { class: 'n' }, count(shown.reply_count)));
  const state = { likes: shown.like_count, liked: shown.liked, reposts: shown.repost_count, reposted: shown.reposted_by_me };
  live?.add(shown.id, {
    update(c) {
      state.likes = c.like_count;
      state.reposts = c.repost_count;
      like.set(c.like_count);
      repost.set(c.repost_count);
      replies.querySelector('.n').textContent = count(c.reply_count);
      replies.setAttribute('aria-label', `Replies (${c.reply_count})`);
    },
  });
  const signIn = () => toast('Sign in to like, repost and reply');
  like.button.addEventListener('click', async () => {
    if (!user) return signIn();
    const on = !state.liked;
    try {
      const r = await api(on ? 'POST' : 'DELETE', `/posts/${shown.id}/like`);
      state.liked = r.liked;
      state.likes = r.like_count;
      like.set(r.like_count, r.liked);
    } catch (err) {
      toast(err.message);
    }
  });
  repost.button.addEventListener('click', async () => {
    if (!user) return signIn();
    const on = !state.reposted;
    try {
      const r = await api(on ? 'POST' : 'DELETE', `/posts/${shown.id}/repost`);
      state.reposted = r.reposted;
      repost.set(r.repost_count, r.reposted);
      toast(r.reposted ? 'Reposted' : 'Repost removed');
    } catch (err) {
      toast(err.message);
    }
  });
  const shareButton = h('button', { class: 'act', type: 'button', 'aria-label': 'Copy link', onclick: () => share(`/p/${shown.id}`) },
    icon('share'));
  const author = shown.author;
  return h('article', { class: `post${detail ? ' detail' : ''}`, 'data-post': shown.id },
    post.reposted ? h('p', { class: 'repost-note' }, icon('repost'), ' ', h('a', { href: `/u/${post.author.handle}`, 'data-link': true }, nameOf(post.author)), ' reposted') : null,
    h('div', { class: 'post-body' },
      h('a', { href: `/u/${author.handle}`, 'data-link': true, class: 'post-avatar', 'aria-label': `@${author.handle}` }, avatar(author, 'small')),
      h('div', { class: 'post-main' },
        h('p', { class: 'post-head' },
          h('a', { class: 'post-name', href: `/u/${author.handle}`, 'data-link': true }, nameOf(author)),
          h('span', { class: 'muted' }, ` @${author.handle} · `),
          h('a', { class: 'muted', href: `/p/${shown.id}`, 'data-link': true }, h('time', { datetime: new Date(shown.created_at * 1000).toISOString() }, ago(shown.created_at)))),
        shown.reply_to ? h('p', { class: 'muted small' }, 'Replying to ', h('a', { href: `/p/${shown.reply_to}`, 'data-link': true }, 'a post')) : null,
        shown.label ? h('p', { class: 'mod-label', 'data-testid': `label-${shown.id}` }, h('strong', {}, 'Labelled by moderators: '), shown.label) : null,
        shown.removed ? h('p', { class: 'mod-label' }, h('strong', {}, 'Removed by moderators: '), 'only you still see this post.') : null,
        h('p', { class: 'post-text' }, shown.text),
        shown.space ? spaceCard(shown.space, user) : null,
        h('div', { class: 'acts' }, replies, repost.button, like.button, shareButton,
          !user || user.id !== author.id ? reportButton({ kind: 'post', id: String(shown.id) }, user, { label: 'Report', cls: 'act report' }) : null))));
}

/** The form to write a post or a reply; `done(post)` is called with the post written. */
function compose(user, { replyTo = null, placeholder = 'What is happening?', done }) {
  const max = 280;
  const text = h('textarea', { name: 'text', rows: 3, maxlength: 10000, placeholder, 'aria-label': replyTo ? 'Your reply' : 'Your post' });
  const left = h('span', { class: 'muted small' }, String(max));
  const send = h('button', { class: 'btn small', type: 'submit', disabled: true }, replyTo ? 'Reply' : 'Post');
  const form = h('form', { class: 'compose' },
    avatar(user, 'small'),
    h('div', { class: 'compose-main' }, text, h('div', { class: 'row compose-foot' }, left, send)));
  text.addEventListener('input', () => {
    const n = [...text.value.trim()].length;
    left.textContent = String(max - n);
    left.classList.toggle('over', n > max);
    send.disabled = n === 0 || n > max;
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    send.disabled = true;
    try {
      const body = { text: text.value };
      if (replyTo) body.reply_to = replyTo;
      const post = await api('POST', '/posts', body);
      text.value = '';
      left.textContent = String(max);
      done(post);
    } catch (err) {
      toast(err.message);
      send.disabled = false;
    }
  });
  return form;
}

/** A paged list of posts: `load(before)` gives `{items, next}`. */
function feed(user, live, load, empty) {
  const list = h('div', { class: 'feed' });
  const more = h('button', { class: 'btn ghost small more', type: 'button' }, 'Show older');
  let next = null;
  const fill = async (before) => {
    more.disabled = true;
    const page = await load(before);
    for (const post of page.items) list.append(postView(post, user, live));
    next = page.next;
    more.hidden = !next;
    more.disabled = false;
    if (!list.children.length) list.append(h('p', { class: 'muted empty' }, empty));
    live.start();
    return page;
  };
  more.addEventListener('click', () => fill(next));
  return { el: h('div', {}, list, more), fill, list };
}

/** The home of a signed-in user: live bar, compose, timeline; discovery beside it. */
export async function homeTimeline(main, user, discovery) {
  const live = new LiveCounts();
  const bar = h('div', { class: 'live-bar', 'aria-label': 'Live now from accounts you follow' });
  const timeline = feed(user, live, async (before) => {
    const page = await api('GET', `/timeline?limit=20${before ? `&before=${before}` : ''}`);
    if (!before) {
      mount(bar, page.live.map((s) => h('a', { class: 'live-chip', href: `/s/${s.id}`, 'data-link': true, 'data-testid': `live-${s.id}` },
        h('span', { class: 'badge live' }, 'Live'), h('span', { class: 'live-title' }, s.title), h('span', { class: 'muted' }, ` @${s.host_handle}`))));
      bar.hidden = !page.live.length;
    }
    return page;
  }, 'Nothing here yet. Follow people to see their posts, or write the first one.');
  const writer = compose(user, {
    done(post) {
      timeline.list.querySelector('.empty')?.remove();
      timeline.list.prepend(postView(post, user, live));
      toast('Posted');
    },
  });
  mount(main, h('div', { class: 'page home' },
    h('div', { class: 'columns' },
      h('section', { class: 'timeline', 'aria-label': 'Home timeline' }, h('h1', { class: 'sr-only' }, 'Home'), bar, writer, timeline.el),
      h('aside', { class: 'side' }, discovery))));
  await timeline.fill(null);
  return () => live.stop();
}

/** A profile: who, counts, follow and alerts, block and mute; their posts. */
export async function profilePage(main, user, handle, notFound) {
  let p;
  try {
    p = await api('GET', `/users/${encodeURIComponent(handle)}`);
  } catch {
    return notFound();
  }
  const live = new LiveCounts();
  const mine = user && user.id === p.id;
  const followers = h('strong', {}, count(p.followers_count));
  const rel = p.relation || {};
  const followBtn = h('button', { class: `btn small${rel.following ? ' ghost' : ''}`, type: 'button', 'data-testid': 'follow' }, rel.following ? 'Following' : 'Follow');
  const bell = h('button', { class: 'btn small ghost', type: 'button', 'aria-pressed': String(!!rel.alerts), 'data-testid': 'alerts', hidden: !rel.following });
  const showBell = (on) => mount(bell, icon(on ? 'bell' : 'bellOff'), on ? 'Alerts on' : 'Alerts off');
  showBell(!!rel.alerts);
  followBtn.addEventListener('click', async () => {
    if (!user) return toast('Sign in to follow');
    try {
      const r = await api(rel.following ? 'DELETE' : 'POST', `/users/${p.handle}/follow`);
      rel.following = r.following;
      rel.alerts = r.following;
      followers.textContent = count(r.followers_count);
      followBtn.textContent = r.following ? 'Following' : 'Follow';
      followBtn.classList.toggle('ghost', r.following);
      bell.hidden = !r.following;
      showBell(rel.alerts);
    } catch (err) {
      toast(err.message);
    }
  });
  bell.addEventListener('click', async () => {
    try {
      const r = await api('PUT', `/users/${p.handle}/alerts`, { on: !rel.alerts });
      rel.alerts = r.alerts;
      bell.setAttribute('aria-pressed', String(r.alerts));
      showBell(r.alerts);
      toast(r.alerts ? `You will be told when @${p.handle} goes live` : 'Live alerts off');
    } catch (err) {
      toast(err.message);
    }
  });
  const toggle = (what, on, label) => h('button', { class: 'btn tiny ghost', type: 'button', onclick: async () => {
    try {
      await api(on ? 'DELETE' : 'POST', `/users/${p.handle}/${what}`);
      toast(on ? `${label} lifted` : `@${p.handle}: ${label.toLowerCase()}ed`);
      profilePage(main, user, handle, notFound);
    } catch (err) {
      toast(err.message);
    }
  } }, on ? `Un${label.toLowerCase()}` : label);
  const actions = mine
    ? h('div', { class: 'row' }, h('a', { class: 'btn small ghost', href: '/settings', 'data-link': true }, 'Edit profile'))
    : user
      ? h('div', { class: 'row' }, rel.blocking ? null : followBtn, bell, toggle('mute', rel.muting, 'Mute'), toggle('block', rel.blocking, 'Block'))
      : h('div', { class: 'row' }, h('a', { class: 'btn small', href: `/signin?next=/u/${p.handle}`, 'data-link': true }, 'Sign in to follow'));
  const posts = feed(user, live, (before) => api('GET', `/users/${p.handle}/posts?limit=20${before ? `&before=${before}` : ''}`), 'No posts yet.');
  mount(main, h('div', { class: 'page narrowish' },
    h('header', { class: 'profile' },
      avatar(p, 'big'),
      h('div', { class: 'profile-main' },
        h('h1', {}, nameOf(p)),
        h('p', { class: 'muted' }, `@${p.handle}`, rel.followed_by ? h('span', { class: 'badge' }, ' follows you') : null),
        p.bio ? h('p', { class: 'bio' }, p.bio) : null,
        h('p', { class: 'counts' },
          h('span', {}, followers, ' followers'), h('span', {}, h('strong', {}, count(p.following_count)), ' following'),
          h('span', {}, h('strong', {}, count(p.posts_count)), ' posts')),
        p.live_space ? h('a', { class: 'live-chip', href: `/s/${p.live_space}`, 'data-link': true }, h('span', { class: 'badge live' }, 'Live'), ' Listen now') : null,
        actions,
        h('div', { class: 'row' },
          h('button', { class: 'btn tiny ghost', type: 'button', onclick: () => share(`/u/${p.handle}`) }, 'Share profile'),
          mine ? null : reportButton({ kind: 'account', id: p.handle }, user, { label: 'Report account', cls: 'btn tiny ghost' })))),
    h('h2', {}, 'Posts'),
    posts.el));
  await posts.fill(null);
  return () => live.stop();
}

/** One post, its replies, and the form to reply. */
export async function postPage(main, user, id, notFound) {
  let post;
  try {
    post = await api('GET', `/posts/${id}`);
  } catch {
    return notFound();
  }
  const live = new LiveCounts();
  const replies = feed(user, live, (before) => api('GET', `/posts/${id}/replies?limit=20${before ? `&before=${before}` : ''}`), 'No replies yet.');
  const writer = user ? compose(user, {
    replyTo: post.id,
    placeholder: `Reply to @${post.author.handle}`,
    done(reply) {
      replies.list.querySelector('.empty')?.remove();
      replies.list.prepend(postView(reply, user, live));
    },
  }) : h('p', { class: 'muted' }, h('a', { href: `/signin?next=/p/${id}`, 'data-link': true }, 'Sign in'), ' to reply.');
  mount(main, h('div', { class: 'page narrowish' },
    post.reply_to ? h('p', {}, h('a', { href: `/p/${post.reply_to}`, 'data-link': true }, '← The post this replies to')) : null,
    postView(post, user, live, { detail: true }),
    writer,
    h('h2', {}, 'Replies'),
    replies.el));
  await replies.fill(null);
  return () => live.stop();
}

/** What one inbox entry says. */
function describe(item) {
  const who = item.actor ? h('a', { href: `/u/${item.actor.handle}`, 'data-link': true }, `@${item.actor.handle}`) : 'Someone';
  const others = item.others > 0 ? ` and ${count(item.others)} other${item.others === 1 ? '' : 's'}` : '';
  const post = (label) => h('a', { href: `/p/${item.post_id}`, 'data-link': true }, label);
  const space = (label) => h('a', { href: `/s/${item.space_id}`, 'data-link': true }, label);
  switch (item.kind) {
    case 'follow': return [icon('person'), who, others, ' followed you'];
    case 'like': return [icon('like'), who, others, ' liked ', post('your post')];
    case 'repost': return [icon('repost'), who, others, ' reposted ', post('your post')];
    case 'reply': return [icon('reply'), who, ' ', post('replied'), ' to you'];
    case 'live': return [icon('live'), who, ' is live now: ', space('listen')];
    case 'reminder': return [icon('clock'), 'A Space you asked about is starting: ', space('open it')];
    case 'statement': return [icon('shield'), 'Moderators restricted something of yours: ', h('a', { href: `/statements/${item.statement_id}`, 'data-link': true }, 'read why, and appeal')];
    case 'appeal_answer': return [icon('shield'), 'Your appeal was answered: ', h('a', { href: `/statements/${item.statement_id}`, 'data-link': true }, 'see the answer')];
    case 'report_outcome': return [icon('shield'), `Your report #${item.report_id} was decided. Thank you for telling us.`];
    default: return [item.kind];
  }
}

/** Web Push on this device: subscribe with the server's key through the service worker. */
async function enablePush(button) {
  try {
    if (!('serviceWorker' in navigator) || !('PushManager' in window)) throw new Error('this browser cannot receive push alerts');
    const permission = await Notification.requestPermission();
    if (permission !== 'granted') throw new Error('notifications are not allowed for this site');
    const { public_key: key } = await api('GET', '/push/key');
    const reg = await navigator.serviceWorker.register('/sw.js');
    const raw = Uint8Array.from(atob(key.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
    const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: raw });
    await api('POST', '/push/subscriptions', sub.toJSON());
    button.textContent = 'Alerts on this device: on';
    button.disabled = true;
    toast('This device will get live alerts');
  } catch (err) {
    toast(`Push alerts: ${err.message}`);
  }
}

/** The inbox, marked read once shown. */
export async function notificationsPage(main, user, onRead) {
  if (!user) return false;
  const inbox = await api('GET', '/notifications?limit=50');
  const push = h('button', { class: 'btn small ghost', type: 'button' }, 'Get live alerts on this device');
  push.addEventListener('click', () => enablePush(push));
  mount(main, h('div', { class: 'page narrowish' },
    h('div', { class: 'row spread' }, h('h1', {}, 'Notifications'), push),
    inbox.items.length
      ? h('ul', { class: 'inbox' }, inbox.items.map((item) => h('li', { class: `note${item.read ? '' : ' unread'}`, 'data-kind': item.kind },
        h('p', {}, describe(item)),
        h('time', { class: 'muted small', datetime: new Date(item.at).toISOString() }, ago(item.at / 1000)))))
      : h('p', { class: 'muted empty' }, 'Nothing yet. Follows, likes, replies and live alerts show up here.')));
  if (inbox.unread > 0) {
    await api('POST', '/notifications/read', {}).catch(() => {});
    onRead();
  }
  return true;
}

/** Your profile: name, bio, and who may get your live alerts. */
export async function settingsPage(main, user, signOut) {
  const p = await api('GET', `/users/${user.handle}`);
  const error = h('p', { class: 'error', role: 'alert' });
  const name = h('input', { id: 'f-name', name: 'display_name', maxlength: 50, value: p.display_name });
  const bio = h('textarea', { id: 'f-bio', name: 'bio', rows: 3, maxlength: 300 });
  bio.value = p.bio;
  const choice = h('select', { id: 'f-alerts', name: 'alerts_from' },
    [['followers', 'Anyone who follows me'], ['mutuals', 'Only people I follow back'], ['nobody', 'Nobody']]
      .map(([v, label]) => h('option', { value: v, selected: p.alerts_from === v }, label)));
  const picture = h('span', { class: 'avatar-slot' }, avatar(p, 'big'));
  const file = h('input', { id: 'f-avatar', type: 'file', accept: 'image/png,image/jpeg,image/webp', class: 'file' });
  file.addEventListener('change', async () => {
    const chosen = file.files && file.files[0];
    if (!chosen) return;
    try {
      const res = await fetch('/api/v1/me/avatar', { method: 'PUT', credentials: 'same-origin', headers: { 'content-type': chosen.type }, body: chosen });
      const data = await res.json();
      if (!res.ok) throw new Error(data.detail || res.statusText);
      mount(picture, avatar({ ...p, avatar_url: data.avatar_url }, 'big'));
      toast('Picture saved');
    } catch (err) {
      toast(`Picture: ${err.message}`);
    }
  });
  const form = h('form', { class: 'panel form' },
    h('h1', {}, 'Your profile'),
    h('div', { class: 'row' }, picture,
      h('div', { class: 'field' }, h('label', { for: 'f-avatar' }, 'Picture (PNG, JPEG or WebP, up to 2 MB)'), file)),
    h('div', { class: 'field' }, h('label', { for: 'f-name' }, 'Display name'), name),
    h('div', { class: 'field' }, h('label', { for: 'f-bio' }, 'Bio'), bio),
    h('div', { class: 'field' }, h('label', { for: 'f-alerts' }, 'Who may get an alert when you go live'), choice),
    error,
    h('div', { class: 'row spread' },
      h('button', { class: 'btn big', type: 'submit' }, 'Save'),
      h('button', { class: 'btn ghost', type: 'button', onclick: signOut }, 'Sign out')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api('PATCH', '/me/profile', { display_name: name.value, bio: bio.value, alerts_from: choice.value });
      toast('Saved');
    } catch (err) {
      error.textContent = err.message;
    }
  });
  mount(main, h('div', { class: 'page narrow' }, form));
}
