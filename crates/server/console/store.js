// What every view shares: who is signed in, and the runtimes as last polled. The
// runtimes list is polled every few seconds while the page is visible, and a runtime
// that is not ready is asked directly (which refreshes the backend's view of it), so
// a runtime going down or coming back shows within seconds.

import { api } from './api.js';

const POLL_MS = 2500;
const RECHECK_MS = 5000;

const state = {
  /** {auth, name, role} */
  session: null,
  /** The last `GET /api/runtimes` answer's list. */
  runtimes: [],
  /** The error of the last poll, or null. */
  runtimesError: null,
  /** True once a poll has answered. */
  loaded: false,
};
const listeners = new Set();
let timer = null;
let lastRecheck = 0;
let running = false;

/** The shared state (read only: change it through the functions here). */
export const store = state;

/** Calls `fn()` after every change. Returns an unsubscribe. */
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function changed() {
  for (const fn of listeners) fn();
}

/** Records who is signed in. */
export function setSession(session) {
  state.session = session;
  changed();
}

/** True when the signed-in role may create workers, send input, cancel, stop, delete. */
export function canOperate() {
  const role = state.session?.role;
  return role === 'operator' || role === 'admin';
}

/** The runtime with `id`, if listed. */
export function runtimeById(id) {
  return state.runtimes.find((r) => r.runtime_id === id) ?? null;
}

/** The kind (`echo`, `process`, `pty`) of `profile` on runtime `id`, if known. */
export function profileKind(id, profile) {
  return runtimeById(id)?.profiles?.find((p) => p.name === profile)?.kind ?? null;
}

/** Polls now, then every few seconds while the page is visible. */
export function startPolling() {
  if (running) return;
  running = true;
  document.addEventListener('visibilitychange', onVisibility);
  poll();
}

/** Stops polling (on sign-out). */
export function stopPolling() {
  running = false;
  clearTimeout(timer);
  document.removeEventListener('visibilitychange', onVisibility);
}

/** Polls at once (after a command that changes counts). */
export function refreshSoon() {
  if (!running) return;
  clearTimeout(timer);
  timer = setTimeout(poll, 150);
}

function onVisibility() {
  if (!document.hidden && running) {
    clearTimeout(timer);
    poll();
  }
}

async function poll() {
  clearTimeout(timer);
  try {
    const now = Date.now();
    if (now - lastRecheck >= RECHECK_MS) {
      lastRecheck = now;
      // Runtimes that are not ready are asked directly: the answer refreshes the
      // backend's view, which the backend's own probe, backing off while a runtime
      // is down, may otherwise take a while to do. Not awaited: a silent runtime must
      // not hold up the list.
      for (const runtime of state.runtimes.filter((r) => r.state !== 'ready')) {
        api.runtime(runtime.runtime_id).then(refreshSoon, () => {});
      }
    }
    const answer = await api.runtimes();
    state.runtimes = answer.runtimes ?? [];
    state.runtimesError = null;
    state.loaded = true;
  } catch (error) {
    state.runtimesError = error;
  }
  changed();
  if (running && !document.hidden) timer = setTimeout(poll, POLL_MS);
}
