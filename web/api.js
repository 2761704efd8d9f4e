// The stentor HTTP API, with problem+json errors as exceptions.

export class ApiError extends Error {
  constructor(status, detail, data = null) {
    super(detail);
    this.status = status;
    this.data = data;
  }
}

/** Longest the app waits in all on a busy server before it gives up, milliseconds. */
const MAX_BUSY_WAIT_MS = 30_000;

/**
 * Fetches, and while the server answers 503 (it is shedding load) or 429 (this address asks
 * too often) with a Retry-After — it did nothing with the request — waits as told and asks
 * again, up to MAX_BUSY_WAIT_MS in all. `onBusy(seconds)` is told each wait, so the page can
 * say so.
 */
export async function fetchPatiently(url, init, onBusy = announceBusy) {
  let waited = 0;
  for (;;) {
    const res = await fetch(url, init);
    const after = Number(res.headers.get('retry-after'));
    const busy = res.status === 503 || res.status === 429;
    if (!busy || !(after > 0) || waited + after * 1000 > MAX_BUSY_WAIT_MS) {
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
  if (!res.ok) throw new ApiError(res.status, (data && data.detail) || res.statusText, data);
  return data;
}

/**
 * A join ticket for a Space. A server under attack answers 401 with a challenge: the
 * ticket then costs a proof of work (docs/protocol.md), solved here and sent with the
 * request again.
 */
export async function joinTicket(spaceId, { unseen = false } = {}) {
  let work = '';
  for (let tries = 0; tries < 3; tries++) {
    try {
      const query = [work, unseen ? 'unseen=true' : ''].filter(Boolean).join('&');
      return await api('POST', `/spaces/${spaceId}/tickets${query ? `?${query}` : ''}`);
    } catch (e) {
      if (e.status !== 401 || !e.data || !e.data.challenge) throw e;
      window.dispatchEvent(new CustomEvent('stentor:work', { detail: { bits: e.data.bits } }));
      const nonce = await solveWork(e.data.challenge, e.data.bits);
      work = `challenge=${encodeURIComponent(e.data.challenge)}&nonce=${nonce}`;
    }
  }
  throw new ApiError(401, 'the proof of work was refused');
}

/** The first nonce such that SHA-256(`challenge:nonce`) starts with `bits` zero bits. */
export async function solveWork(challenge, bits) {
  if (!crypto.subtle) throw new ApiError(401, 'joining under attack needs HTTPS (WebCrypto)');
  const encoder = new TextEncoder();
  const zeroBits = (hash) => {
    let n = 0;
    for (const byte of hash) {
      if (byte !== 0) return n + Math.clz32(byte) - 24;
      n += 8;
    }
    return n;
  };
  // Hashes in batches: WebCrypto works on them side by side.
  const batch = 512;
  for (let start = 0; ; start += batch) {
    const hashes = await Promise.all(
      Array.from({ length: batch }, (_, i) =>
        crypto.subtle.digest('SHA-256', encoder.encode(`${challenge}:${start + i}`)),
      ),
    );
    const found = hashes.findIndex((h) => zeroBits(new Uint8Array(h)) >= bits);
    if (found >= 0) return start + found;
  }
}

/** The signed-in user, or null. */
export function currentUser() {
  return api('GET', '/me');
}
