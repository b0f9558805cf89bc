// The console's entry point: finds out who is signed in, then routes `#/runtimes`,
// `#/workers[?runtime=&status=&limit=]` and `#/workers/{runtime}/{worker}` to their
// views, with the header's identity, sign-out and backend state.

import { onForbidden, onReachability, onUnauthorized } from './api.js';
import { fill, h } from './dom.js';
import { clearNotices, initNotices, showError, showInfo } from './notices.js';
import { mountRuntimesView } from './runtimes.js';
import { detectSession, showSignIn, signOut } from './session.js';
import { setSession, startPolling, stopPolling, store } from './store.js';
import { mountWorkerView } from './worker_view.js';
import { mountWorkersView } from './workers.js';

const main = document.getElementById('main');
const sections = document.getElementById('sections');
const identity = document.getElementById('identity');
const backendState = document.getElementById('backend-state');
/** The first wait before asking an unreachable backend again, and the longest. */
const BOOT_RETRY_FIRST_MS = 500;
const BOOT_RETRY_MAX_MS = 10_000;
let unmount = null;
let started = false;
let bootTimer = null;
let bootAttempt = 0;
let booting = false;
let unreachablePanel = null;

initNotices(document.getElementById('notices'));
document.getElementById('sign-out').addEventListener('click', onSignOut);
onUnauthorized(() => {
  if (store.session?.auth) requireSignIn('Your session has ended. Sign in again to continue.');
});
onForbidden(recheckSession);
onReachability((reachable) => {
  backendState.hidden = reachable;
  backendState.textContent = reachable ? '' : 'Backend not answering, retrying…';
});
boot();

async function boot() {
  if (booting) return;
  booting = true;
  clearTimeout(bootTimer);
  let session;
  try {
    session = await detectSession();
  } catch (error) {
    booting = false;
    if (!retryable(error)) {
      fill(
        main,
        h(
          'div',
          { class: 'error-panel', role: 'alert' },
          h('strong', { class: 'notice-code', text: error.code ?? 'error' }),
          h('p', { text: error.message }),
          h('button', { type: 'button', class: 'button', text: 'Try again', on: { click: boot } }),
        ),
      );
      return;
    }
    // The backend is down, restarting, or behind a proxy that cannot reach it: ask
    // again by itself, waiting longer each time (up to BOOT_RETRY_MAX_MS), and load
    // as soon as it answers.
    const wait = Math.min(BOOT_RETRY_FIRST_MS * 2 ** bootAttempt, BOOT_RETRY_MAX_MS);
    bootAttempt += 1;
    showUnreachable(error, wait);
    bootTimer = setTimeout(boot, wait);
    return;
  }
  booting = false;
  bootAttempt = 0;
  if (!session.signedIn) requireSignIn();
  else begin(session);
}

/** No answer, or a gateway's 502/503/504: worth asking again. */
function retryable(error) {
  return error?.status === 0 || error?.status === 502 || error?.status === 503 || error?.status === 504;
}

/**
 * Says that the backend does not answer, why, and when the page asks again. Drawn
 * once and then only updated, so that "Try again now" keeps the keyboard's focus.
 */
function showUnreachable(error, wait) {
  if (!unreachablePanel || !main.contains(unreachablePanel.element)) {
    const code = h('strong', { class: 'notice-code' });
    const message = h('span');
    const next = h('p', { class: 'muted', role: 'status' });
    const element = h(
      'div',
      { class: 'error-panel backend-unreachable' },
      h('h1', { text: 'The backend is unreachable' }),
      h('p', {}, code, ' ', message),
      next,
      h('button', { type: 'button', class: 'button', text: 'Try again now', on: { click: boot } }),
    );
    unreachablePanel = { element, code, message, next };
    fill(main, element);
  }
  unreachablePanel.element.dataset.retryMs = String(wait);
  unreachablePanel.code.textContent = error.code ?? 'error';
  unreachablePanel.message.textContent = error.message;
  unreachablePanel.next.textContent = `Trying again in ${Math.max(1, Math.round(wait / 1000))} s; the console loads as soon as the backend answers.`;
}

let rechecking = false;
/**
 * A `403 forbidden`: the session's role may have changed since sign-in (the backend's
 * tokens were reloaded). If it has, the page is drawn again for the new role, so it
 * shows no control the backend would refuse (nor hides one it now allows).
 */
async function recheckSession() {
  if (!store.session?.auth || rechecking) return;
  rechecking = true;
  let session;
  try {
    session = await detectSession();
  } catch {
    return;
  } finally {
    rechecking = false;
  }
  if (!store.session) return;
  if (!session.signedIn) {
    requireSignIn('Your session has ended. Sign in again to continue.');
    return;
  }
  if (session.role === store.session.role && session.name === store.session.name) return;
  setSession(session);
  showIdentity(session);
  showInfo(`Signed in as ${session.name ?? 'anonymous'}, now with the ${session.role} role`);
  route();
}

function requireSignIn(notice) {
  leave();
  showSignIn(main, { notice, onSignedIn: begin });
}

function begin(session) {
  setSession(session);
  showIdentity(session);
  sections.hidden = false;
  startPolling();
  if (!started) {
    started = true;
    window.addEventListener('hashchange', route);
  }
  route();
}

function leave() {
  unmount?.();
  unmount = null;
  stopPolling();
  sections.hidden = true;
  identity.hidden = true;
  setSession(null);
}

async function onSignOut() {
  try {
    await signOut();
  } catch (error) {
    showError(error, 'signing out');
    return;
  }
  clearNotices();
  requireSignIn('Signed out.');
}

function showIdentity(session) {
  // With auth off there is nobody to show and nothing to sign out of.
  identity.hidden = !session.auth;
  document.getElementById('identity-name').textContent = session.name ?? '';
  const role = document.getElementById('identity-role');
  role.textContent = session.role ?? '';
  role.dataset.role = session.role ?? '';
}

/** Goes to `hash` (a `#/...` route). */
function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function route() {
  if (!store.session) return;
  const hash = location.hash || '#/runtimes';
  const [path, search] = hash.slice(1).split('?');
  const parts = path.split('/').filter(Boolean).map(safeDecode);
  unmount?.();
  unmount = null;
  let section = 'runtimes';
  if (parts[0] === 'workers' && parts.length === 3) {
    section = 'workers';
    unmount = mountWorkerView(main, { runtimeId: parts[1], workerId: parts[2], navigate });
  } else if (parts[0] === 'workers') {
    section = 'workers';
    unmount = mountWorkersView(main, { query: new URLSearchParams(search ?? ''), navigate });
  } else {
    unmount = mountRuntimesView(main, { navigate });
  }
  for (const link of sections.querySelectorAll('a')) {
    if (link.dataset.section === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function safeDecode(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
