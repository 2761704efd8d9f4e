// The service worker: shows the live alerts and reminders pushed to this device, and opens
// the Space when one is clicked.

self.addEventListener('push', (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = {};
  }
  const who = data.host_handle ? `@${data.host_handle}` : 'Someone you follow';
  const title = data.kind === 'reminder'
    ? (data.when === 'soon' ? 'Starting in 30 minutes' : 'Starting now')
    : `${who} is live`;
  event.waitUntil(self.registration.showNotification(title, {
    body: data.title || 'Tap to listen',
    tag: data.space_id ? `space-${data.space_id}` : undefined,
    data: { url: data.url || '/' },
    icon: '/assets/favicon.svg',
  }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || '/';
  event.waitUntil(self.clients.openWindow(url));
});
