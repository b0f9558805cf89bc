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
let unmount = null;
let started = false;

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
  let session;
  try {
    session = await detectSession();
  } catch (error) {
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
  if (!session.signedIn) requireSignIn();
  else begin(session);
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
