// Errors and notices at the top of the page. Errors stay until dismissed (an error
// is never swallowed); notices fade after a few seconds. At most a few are shown.

import { h } from './dom.js';

const MAX_SHOWN = 4;
const NOTICE_MS = 4000;
let region = null;

/** Where notices go. */
export function initNotices(element) {
  region = element;
}

/** Shows an API error as its code and message, with what was being done. */
export function showError(error, doing) {
  const code = error?.code ?? 'error';
  const message = error?.message ?? String(error);
  add('error', [
    h('strong', { class: 'notice-code', text: code }),
    h('span', { class: 'notice-message', text: message }),
    doing ? h('span', { class: 'notice-context', text: `while ${doing}` }) : null,
  ]);
}

/** Shows a short notice that goes away by itself. */
export function showInfo(text) {
  const el = add('info', [h('span', { class: 'notice-message', text })]);
  setTimeout(() => el.remove(), NOTICE_MS);
}

/** Removes every notice (on sign-out). */
export function clearNotices() {
  region?.replaceChildren();
}

function add(kind, body) {
  const el = h(
    'div',
    { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('div', { class: 'notice-body' }, body),
    h('button', {
      type: 'button',
      class: 'notice-close',
      'aria-label': 'Dismiss',
      text: '×',
      on: { click: () => el.remove() },
    }),
  );
  region?.append(el);
  while (region && region.children.length > MAX_SHOWN) region.firstElementChild.remove();
  return el;
}
