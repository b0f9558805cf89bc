// A worker's live events over the backend's event WebSocket, kept alive across drops.
//
// The stream remembers the cursor of the last event it handed on. After any drop it
// reconnects with capped, jittered backoff and `?cursor=<last>`, so the backend sends
// exactly the events that were missed: nothing is lost and nothing is repeated. When
// the backend cannot resume (a cursor too old, a restarted runtime) it sends `reset`
// and a fresh `snapshot`, which the view repaints from.
//
// States, as `onState(state, detail)` reports them:
//   connecting    the first connection is being made
//   connected     events are flowing
//   reconnecting  the connection dropped (detail.cause "connection"), or the backend
//                 lost the runtime (detail.cause "upstream", detail.error)
//   restored      flowing again after a drop, resumed from the cursor
//   ended         for good: the worker was deleted (detail.reason "worker_deleted"),
//                 its runtime was removed from the backend ("runtime_removed", with
//                 detail.error), or the backend refused the stream (detail.error)
//
// This module touches no DOM, so it also runs under node's test runner with a fake
// WebSocket.

const BACKOFF_INITIAL_MS = 250;
const BACKOFF_MAX_MS = 5000;

/**
 * The most UTF-8 bytes of input one frame carries. Keys and pastes go to the worker as
 * input frames, and a paste can be any size: the runtime refuses an input over its
 * `max_input_bytes` (64 KiB by default) and the backend closes the socket with 1009 on
 * a frame over its body limit (1 MiB by default). A longer text goes in several
 * frames, which the backend carries out in order.
 */
export const INPUT_FRAME_BYTES = 16 * 1024;

/** `text` in pieces of at most `maxBytes` bytes of UTF-8, never splitting a character. */
export function inputChunks(text, maxBytes = INPUT_FRAME_BYTES) {
  if (text.length * 3 <= maxBytes) return [text];
  const chunks = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < text.length; i += 1) {
    const unit = text.charCodeAt(i);
    // A surrogate pair is one character of four bytes, counted at its first half.
    let size = 3;
    if (unit < 0x80) size = 1;
    else if (unit < 0x800) size = 2;
    else if (unit >= 0xd800 && unit <= 0xdbff) size = 4;
    else if (unit >= 0xdc00 && unit <= 0xdfff) size = 0;
    if (size > 0 && i > start && bytes + size > maxBytes) {
      chunks.push(text.slice(start, i));
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
  chunks.push(text.slice(start));
  return chunks;
}

/** Close codes of the backend's event WebSocket. */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_BIG: 1009,
  WORKER_NOT_FOUND: 4404,
  SLOW_CONSUMER: 4408,
};

export class WorkerStream {
  /**
   * `url`: the events WebSocket URL without query. `handlers`: `onEvent(event)`,
   * `onReset(reason)`, `onState(state, detail)`, `onRefused(error)` (an interactive
   * frame the backend refused). `probe()`: resolves when the worker is reachable over
   * REST, rejects with the API's error otherwise (used to explain a refused upgrade).
   */
  constructor({ url, interactive = false, handlers, probe, WebSocketImpl, backoff }) {
    this.url = url;
    this.interactive = interactive;
    this.handlers = handlers;
    this.probe = probe ?? (() => Promise.resolve());
    this.WebSocketImpl = WebSocketImpl ?? globalThis.WebSocket;
    this.backoff = { initial: BACKOFF_INITIAL_MS, max: BACKOFF_MAX_MS, ...backoff };
    this.cursor = null;
    this.state = 'idle';
    this.socket = null;
    this.delay = this.backoff.initial;
    this.timer = null;
    this.failedUpgrades = 0;
    this.dropped = false;
    this.stopped = false;
  }

  /** Opens the first connection. */
  start() {
    this.setState('connecting');
    this.connect();
  }

  /** Closes for good. */
  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    const socket = this.socket;
    this.socket = null;
    if (socket && socket.readyState <= 1) socket.close(CloseCode.NORMAL);
  }

  /** Sends a client frame on an interactive stream; false when it could not be sent. */
  send(frame) {
    if (!this.interactive || !this.socket || this.socket.readyState !== 1) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  /**
   * Sends keys or a paste on an interactive stream, in frames of at most
   * INPUT_FRAME_BYTES; false when it could not be sent.
   */
  sendInput(text) {
    if (!this.interactive || !this.socket || this.socket.readyState !== 1) return false;
    for (const chunk of inputChunks(text)) this.socket.send(JSON.stringify({ type: 'input', text: chunk }));
    return true;
  }

  /** Switches interactive mode on or off, reconnecting from the cursor. */
  setInteractive(interactive) {
    if (this.interactive === interactive) return;
    this.interactive = interactive;
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close(CloseCode.NORMAL);
      this.connect();
    }
  }

  /** The URL of the next connection: with the cursor to resume from. */
  nextUrl() {
    const query = [];
    if (this.cursor) query.push(`cursor=${encodeURIComponent(this.cursor)}`);
    if (this.interactive) query.push('interactive=true');
    return query.length ? `${this.url}?${query.join('&')}` : this.url;
  }

  connect() {
    if (this.stopped) return;
    const socket = new this.WebSocketImpl(this.nextUrl());
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      if (socket !== this.socket) return;
      opened = true;
      this.failedUpgrades = 0;
      this.delay = this.backoff.initial;
      if (this.dropped && this.cursor) this.setState('restored', { cause: 'connection' });
    };
    socket.onmessage = (message) => {
      if (socket !== this.socket) return;
      this.onFrame(message.data);
    };
    socket.onclose = (close) => {
      if (socket !== this.socket) return;
      this.socket = null;
      this.onClose(close.code, opened);
    };
    socket.onerror = () => {};
  }

  onFrame(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    switch (frame.type) {
      case 'event':
        this.cursor = frame.cursor ?? this.cursor;
        if (this.state === 'connecting' || (this.state === 'reconnecting' && !this.dropped)) {
          this.setState('connected');
        } else if (this.state === 'reconnecting' && this.dropped) {
          this.setState('restored', { cause: 'connection' });
        }
        this.dropped = false;
        this.handlers.onEvent?.(frame.event);
        break;
      case 'reset':
        this.handlers.onReset?.(frame.reason);
        break;
      case 'upstream':
        if (frame.state === 'lost') {
          this.setState('reconnecting', { cause: 'upstream', error: frame.error ?? null });
        } else if (frame.state === 'restored') {
          this.setState('restored', { cause: 'upstream' });
        }
        break;
      case 'error':
        this.handlers.onRefused?.(frame.error);
        break;
      default:
        break;
    }
  }

  async onClose(code, opened) {
    if (this.stopped) return;
    if (code === CloseCode.WORKER_NOT_FOUND) {
      // The worker is gone from this backend: deleted, or its whole runtime removed
      // from the backend's configuration (a reload), which closes with 4404 too while
      // the worker may run on. The REST answer says which.
      let error = null;
      try {
        await this.probe();
      } catch (failure) {
        error = failure;
      }
      if (this.stopped) return;
      if (error?.code === 'runtime_not_found') {
        this.end({ reason: 'runtime_removed', error: { code: error.code, message: error.message } });
      } else {
        this.end({ reason: 'worker_deleted' });
      }
      return;
    }
    if (code === CloseCode.POLICY) {
      this.end({
        reason: 'refused',
        error: { code: 'policy_violation', message: 'the backend closed the stream (1008)' },
      });
      return;
    }
    if (code === CloseCode.TOO_BIG) {
      // A frame of ours was over the backend's size limit: it was not carried out.
      // Said, not swallowed; the stream reconnects from its cursor as after any drop.
      this.handlers.onRefused?.({
        code: 'payload_too_large',
        message: 'the backend closed the connection on a frame over its size limit (1009); what it carried was not sent',
      });
    }
    let cause = { cause: 'connection', code };
    if (!opened) {
      // The upgrade was refused or the backend is down; the browser does not say
      // which. Ask over REST: a 4xx there is the reason, and retrying will not help.
      let reachable = false;
      try {
        await this.probe();
        reachable = true;
      } catch (error) {
        // Closed meanwhile: a 401 here ends the session, and the page that owned the
        // stream is gone with it; its refusal is not news to anyone.
        if (this.stopped) return;
        if (error && error.status >= 400 && error.status < 500) {
          this.end({ reason: 'refused', error });
          return;
        }
        // The backend answers but cannot reach the worker's runtime: say so, with
        // its error, rather than blame the connection to the backend. (Another 5xx,
        // a proxy's 502 or the backend's own `overloaded`, is the connection's.)
        if (error && error.status >= 500 && String(error.code ?? '').startsWith('runtime_')) {
          cause = { cause: 'upstream', error: { code: error.code, message: error.message } };
        }
      }
      if (this.stopped) return;
      // The worker answers over REST but the upgrade keeps failing: the cursor itself
      // may be refused (`invalid_cursor`). Start over from a snapshot instead of
      // looping. Only upgrades refused while the worker answers count: while the
      // backend or the runtime is down every upgrade fails, and the cursor is still
      // good for when they are back.
      this.failedUpgrades = reachable ? this.failedUpgrades + 1 : 0;
      if (this.failedUpgrades >= 2 && this.cursor) {
        this.cursor = null;
        this.handlers.onReset?.('cursor_refused');
      }
    }
    this.dropped = true;
    this.setState('reconnecting', cause);
    const jitter = this.delay * 0.2 * Math.random();
    this.timer = setTimeout(() => this.connect(), this.delay + jitter);
    this.delay = Math.min(this.delay * 2, this.backoff.max);
  }

  end(detail) {
    this.stopped = true;
    this.setState('ended', detail);
  }

  setState(state, detail = {}) {
    this.state = state;
    this.handlers.onState?.(state, detail);
  }
}
