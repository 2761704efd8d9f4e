// Small DOM helpers: build elements without innerHTML, so user text is never markup.

/** Creates an element: h('button', {class: 'x', onclick: f}, 'label', child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else if (value !== false && value != null) {
      el.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c != null && c !== false));
}

let toastTimer = 0;
/** Shows a short message in the live region. */
export function toast(message) {
  const el = document.getElementById('toast');
  el.textContent = message;
  el.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove('show'), 4000);
}

/** "in 5 min", "in 2 h 10 min", "now". */
export function until(seconds) {
  if (seconds <= 0) return 'any moment now';
  const d = Math.floor(seconds / 86400);
  const hr = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  if (d > 0) return `in ${d} d ${hr} h`;
  if (hr > 0) return `in ${hr} h ${m} min`;
  if (m > 0) return `in ${m} min ${s} s`;
  return `in ${s} s`;
}

/** Initials for an avatar. */
export function initials(name) {
  return (name || '?').replace(/[^a-z0-9]/gi, '').slice(0, 2).toUpperCase() || '?';
}
