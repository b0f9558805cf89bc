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
/** runtime_id → {runtime, at}: the latest direct answer about a runtime, and when it came. */
const answered = new Map();

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

/** A runtime's own answer (`GET /api/runtimes/{id}`), in place of its entry in the list. */
function updateRuntime(runtime) {
  if (!running || !runtime?.runtime_id) return;
  const i = state.runtimes.findIndex((r) => r.runtime_id === runtime.runtime_id);
  if (i === -1) return;
  answered.set(runtime.runtime_id, { runtime, at: Date.now() });
  state.runtimes = state.runtimes.map((r, j) => (j === i ? runtime : r));
  changed();
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
      // not hold up the list. The answer is the runtime's fresh view: it goes into the
      // list as it is, with no second request for the whole list.
      for (const runtime of state.runtimes.filter((r) => r.state !== 'ready')) {
        api.runtime(runtime.runtime_id).then(updateRuntime, () => {});
      }
    }
    const asked = Date.now();
    const answer = await api.runtimes();
    // A direct answer that came while the list was on its way is newer than the
    // list's view of that runtime.
    state.runtimes = (answer.runtimes ?? []).map((r) => {
      const direct = answered.get(r.runtime_id);
      return direct && direct.at > asked ? direct.runtime : r;
    });
    answered.clear();
    state.runtimesError = null;
    state.loaded = true;
  } catch (error) {
    state.runtimesError = error;
  }
  changed();
  if (running && !document.hidden) timer = setTimeout(poll, POLL_MS);
}
