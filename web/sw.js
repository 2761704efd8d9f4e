// The service worker: shows what is pushed to this device (live alerts, reminders, follows,
// likes, replies, reposts), and opens its page when one is clicked.

self.addEventListener('push', (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = {};
  }
  const who = data.host_handle ? `@${data.host_handle}` : 'Someone you follow';
  const actor = data.actor ? `@${data.actor}` : 'Someone';
  const titles = {
    reminder: data.when === 'soon' ? 'Starting in 30 minutes' : 'Starting now',
    live: `${who} is live`,
    follow: `${actor} followed you`,
    like: `${actor} liked your post`,
    reply: `${actor} replied to you`,
    repost: `${actor} reposted your post`,
  };
  const title = titles[data.kind] || 'stentor';
  const spaceKinds = data.kind === 'live' || data.kind === 'reminder';
  event.waitUntil(self.registration.showNotification(title, {
    body: spaceKinds ? (data.title || 'Tap to listen') : 'Tap to see it',
    tag: data.space_id ? `space-${data.space_id}` : (data.post_id ? `post-${data.post_id}` : data.kind),
    data: { url: data.url || '/' },
    icon: '/assets/favicon.svg',
  }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || '/';
  event.waitUntil(self.clients.openWindow(url));
});
