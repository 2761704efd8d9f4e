// The stentor HTTP API, with problem+json errors as exceptions.

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/** Longest the app waits in all on a busy server before it gives up, milliseconds. */
const MAX_BUSY_WAIT_MS = 30_000;

/**
 * Fetches, and while the server answers 503 with a Retry-After (it is shedding load and did
 * nothing with the request) waits as told and asks again, up to MAX_BUSY_WAIT_MS in all.
 * `onBusy(seconds)` is told each wait, so the page can say so.
 */
export async function fetchPatiently(url, init, onBusy = announceBusy) {
  let waited = 0;
  for (;;) {
    const res = await fetch(url, init);
    const after = Number(res.headers.get('retry-after'));
    if (res.status !== 503 || !(after > 0) || waited + after * 1000 > MAX_BUSY_WAIT_MS) {
      return res;
    }
    onBusy(after);
    await new Promise((resolve) => setTimeout(resolve, after * 1000));
    waited += after * 1000;
  }
}

/** Tells the page the server is busy (a `stentor:busy` event with the seconds to wait). */
function announceBusy(seconds) {
  window.dispatchEvent(new CustomEvent('stentor:busy', { detail: { seconds } }));
}

/** Calls /api/v1{path}; resolves to the JSON body (null for 204). */
export async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetchPatiently(`/api/v1${path}`, init);
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) throw new ApiError(res.status, (data && data.detail) || res.statusText);
  return data;
}

/** The signed-in user, or null. */
export function currentUser() {
  return api('GET', '/me');
}
