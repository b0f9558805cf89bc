// Formatting for people: times, sizes, exits, statuses.

/** Every worker status, in life order. */
export const WORKER_STATUSES = ['starting', 'running', 'exited', 'stopped', 'failed', 'lost'];

/** True once a worker has ended (it can be deleted, not stopped or sent input). */
export function isEnded(status) {
  return status !== 'starting' && status !== 'running';
}

/** "just now", "12 s ago", "3 min ago", "2 h ago", "4 d ago" (or "never"). */
export function relativeTime(iso, now = Date.now()) {
  if (!iso) return 'never';
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return iso;
  const seconds = Math.max(0, Math.round((now - then) / 1000));
  if (seconds < 3) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} d ago`;
}

/** An RFC 3339 time as the reader's local date and time. */
export function localTime(iso) {
  const then = Date.parse(iso ?? '');
  return Number.isNaN(then) ? String(iso ?? '') : new Date(then).toLocaleString();
}

/** "1,000": a count with its thousands marked, the same in every locale. */
export function formatCount(n) {
  return Number.isFinite(n) ? n.toLocaleString('en') : '';
}

/** "512 B", "1.5 KiB", "3.2 MiB". */
export function formatBytes(n) {
  if (!Number.isFinite(n)) return '';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

const SIGNALS = { 1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 6: 'SIGABRT', 9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 15: 'SIGTERM' };

/** "SIGTERM" for 15, "signal 42" for one without a common name. */
export function signalName(signal) {
  return SIGNALS[signal] ?? `signal ${signal}`;
}

/** How a worker ended, from its `exit` ({code, signal}) or an `exited` event. */
export function describeExit(exit) {
  if (!exit) return '';
  if (exit.code !== null && exit.code !== undefined) return `exit code ${exit.code}`;
  if (exit.signal !== null && exit.signal !== undefined) return signalName(exit.signal);
  return '';
}

/** The short form for a list: "3" or "SIGTERM". */
export function shortExit(exit) {
  if (!exit) return '';
  if (exit.code !== null && exit.code !== undefined) return String(exit.code);
  if (exit.signal !== null && exit.signal !== undefined) return signalName(exit.signal);
  return '';
}

/** `code: message` of an API error (or anything thrown). */
export function errorText(error) {
  if (error && error.code) return `${error.code}: ${error.message}`;
  return String(error?.message ?? error);
}
