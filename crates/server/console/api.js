// The backend API over same-origin fetch: JSON bodies with Content-Type
// application/json, the session cookie (never a token in storage), and every failure
// as an ApiError carrying the API's code and message.

/** An error answer of the backend (or `network_error` when it did not answer). */
export class ApiError extends Error {
  constructor(status, code, message, detail) {
    super(message);
    this.name = 'ApiError';
    /** HTTP status; 0 when the backend did not answer. */
    this.status = status;
    /** The contract's snake_case code. */
    this.code = code;
    /** The whole `error` object (may carry runtime_id, worker_id, retry_after_ms). */
    this.detail = detail ?? null;
  }
}

const listeners = { unauthorized: new Set(), reachability: new Set(), forbidden: new Set() };

/** Calls `fn()` whenever a call answers 401 (the session ended). Returns an unsubscribe. */
export function onUnauthorized(fn) {
  listeners.unauthorized.add(fn);
  return () => listeners.unauthorized.delete(fn);
}

/**
 * Calls `fn(error)` whenever the backend refuses something as `403 forbidden`: the
 * signed-in role may have changed since the page asked (a reload of the backend's
 * tokens). Returns an unsubscribe.
 */
export function onForbidden(fn) {
  listeners.forbidden.add(fn);
  return () => listeners.forbidden.delete(fn);
}

/** Reports a `forbidden` refusal that did not come through `call` (a WebSocket frame's). */
export function reportForbidden(error) {
  for (const fn of listeners.forbidden) fn(error);
}

/** Calls `fn(reachable)` when the backend stops or starts answering. */
export function onReachability(fn) {
  listeners.reachability.add(fn);
  return () => listeners.reachability.delete(fn);
}

let reachable = true;
function setReachable(value) {
  if (value === reachable) return;
  reachable = value;
  for (const fn of listeners.reachability) fn(value);
}

/**
 * `method path` with an optional JSON `body`. Resolves to the decoded answer (null
 * for 204); rejects with ApiError. `quiet401` skips the session-ended callbacks (for
 * the session probe itself).
 */
export async function call(method, path, body, { quiet401 = false } = {}) {
  const init = {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { Accept: 'application/json' },
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    setReachable(false);
    throw new ApiError(0, 'network_error', `the backend did not answer (${error.message})`);
  }
  setReachable(true);
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const detail = data && typeof data.error === 'object' ? data.error : null;
    const error = new ApiError(
      response.status,
      detail?.code ?? `http_${response.status}`,
      detail?.message ?? (text.slice(0, 200) || response.statusText),
      detail,
    );
    if (response.status === 401 && !quiet401) {
      for (const fn of listeners.unauthorized) fn(error);
    }
    if (response.status === 403 && error.code === 'forbidden') reportForbidden(error);
    throw error;
  }
  return data;
}

const seg = encodeURIComponent;

/** Paths of the backend API. */
export const paths = {
  session: '/api/session',
  runtimes: '/api/runtimes',
  runtime: (rt) => `/api/runtimes/${seg(rt)}`,
  allWorkers: (status, limit) => {
    const query = [status ? `status=${seg(status)}` : null, limit ? `limit=${seg(limit)}` : null].filter(Boolean);
    return `/api/workers${query.length ? `?${query.join('&')}` : ''}`;
  },
  workers: (rt) => `/api/runtimes/${seg(rt)}/workers`,
  worker: (rt, w) => `/api/runtimes/${seg(rt)}/workers/${seg(w)}`,
  action: (rt, w, action) => `/api/runtimes/${seg(rt)}/workers/${seg(w)}/${action}`,
  // Without `limit` the runtime serves its default page (100 items, or its own
  // maximum if that is less).
  transcript: (rt, w, after, limit) =>
    `/api/runtimes/${seg(rt)}/workers/${seg(w)}/transcript?after=${after}${limit ? `&limit=${limit}` : ''}`,
  events: (rt, w) => `/api/runtimes/${seg(rt)}/workers/${seg(w)}/events/ws`,
};

/** The worker API, one function per call. */
export const api = {
  runtimes: () => call('GET', paths.runtimes),
  runtime: (rt) => call('GET', paths.runtime(rt)),
  allWorkers: (status, limit) => call('GET', paths.allWorkers(status, limit)),
  worker: (rt, w) => call('GET', paths.worker(rt, w)),
  create: (rt, profile, label) =>
    call('POST', paths.workers(rt), label ? { profile, label } : { profile }),
  input: (rt, w, text) => call('POST', paths.action(rt, w, 'input'), { text }),
  cancel: (rt, w) => call('POST', paths.action(rt, w, 'cancel')),
  stop: (rt, w) => call('POST', paths.action(rt, w, 'stop')),
  remove: (rt, w) => call('DELETE', paths.worker(rt, w)),
  transcript: (rt, w, after, limit) => call('GET', paths.transcript(rt, w, after, limit)),
};
