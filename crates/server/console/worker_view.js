// One worker: its header (status, profile, runtime, exit), its commands, the live
// connection's state, and either its transcript with an input box or, for a pty
// worker, its terminal.

import { api, call, paths, reportForbidden } from './api.js';
import { badge, fill, h } from './dom.js';
import { describeExit, formatBytes, isEnded, localTime, relativeTime } from './format.js';
import { showError, showInfo } from './notices.js';
import { canOperate, profileKind, refreshSoon } from './store.js';
import { WorkerStream } from './stream.js';
import { TranscriptView } from './transcript.js';

const RESTORED_SHOWN_MS = 6000;
const CONFIRM_MS = 5000;
const CLOCK_MS = 10_000;

const CONNECTION_TEXT = {
  idle: 'Not connected',
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  restored: 'Restored',
  ended: 'Disconnected',
};

/** Shows worker `workerId` of runtime `runtimeId` in `main`; returns the unmount. */
export function mountWorkerView(main, { runtimeId, workerId, navigate }) {
  const operate = canOperate();
  let detail = null;
  let mode = null; // 'transcript' | 'terminal'
  let transcript = null;
  let terminal = null;
  let pendingResetNote = null;
  let warnedOffline = false;
  let restoredTimer = null;
  let confirmTimer = null;
  let disposed = false;
  /** Set when the worker can no longer be reached: 'deleted' or 'runtime removed'. */
  let gone = null;

  const title = h('h1', { class: 'worker-title', tabindex: '-1', text: workerId });
  const meta = h('dl', { class: 'worker-meta' });
  const statusSlot = h('span', { class: 'status-slot' });
  const connection = h('span', { class: 'connection', role: 'status', dataset: { state: 'idle' } });
  const connectionHint = h('span', { class: 'connection-hint' });
  const resetInfo = h('span', { class: 'reset-info', role: 'status' });

  const cancelButton = h('button', {
    type: 'button',
    class: 'button',
    text: 'Cancel',
    dataset: { command: 'cancel' },
    title: 'Interrupt in-flight work (Ctrl-C); the worker keeps running',
    on: { click: () => command('cancel', () => api.cancel(runtimeId, workerId)) },
  });
  const stopButton = h('button', {
    type: 'button',
    class: 'button',
    text: 'Stop',
    dataset: { command: 'stop' },
    title: 'End the worker',
    on: {
      click: () => command('stop', () => {
        transcript?.stopRequested();
        return api.stop(runtimeId, workerId);
      }),
    },
  });
  const deleteButton = h('button', {
    type: 'button',
    class: 'button danger',
    text: 'Delete',
    dataset: { command: 'delete' },
    title: 'Remove the ended worker and its transcript',
    on: { click: onDelete },
  });
  const actions = operate
    ? h('div', { class: 'actions', role: 'group', 'aria-label': 'Worker commands' }, cancelButton, stopButton, deleteButton)
    : null;

  const body = h('div', { class: 'worker-body' }, h('p', { class: 'loading', text: 'Connecting to the worker…' }));
  const inputForm = operate ? buildInputForm() : null;

  fill(
    main,
    h(
      'section',
      { class: 'worker-page' },
      h(
        'nav',
        { class: 'crumbs', 'aria-label': 'Breadcrumb' },
        h('a', { href: '#/workers', text: 'Workers' }),
        h('span', { 'aria-hidden': 'true', text: '/' }),
        h('span', { text: runtimeId }),
        h('span', { 'aria-hidden': 'true', text: '/' }),
        h('span', { class: 'mono', text: workerId }),
      ),
      h(
        'header',
        { class: 'worker-head' },
        h('div', { class: 'worker-head-main' }, h('div', { class: 'title-row' }, title, statusSlot), meta),
        h('div', { class: 'worker-head-side' }, h('div', { class: 'connection-row' }, connection, connectionHint, resetInfo), actions),
      ),
      body,
      inputForm?.element,
    ),
  );
  document.title = `${workerId} · Switchyard`;
  title.focus({ preventScroll: true });
  renderHead();

  // The header's age ("Created 3 min ago") stays true while nothing else changes.
  const clock = setInterval(scheduleHead, CLOCK_MS);

  let stream = null;
  // Events are handled one after another, each after the previous one's work
  // (loading the terminal) is done.
  let queue = Promise.resolve();
  const enqueue = (work) => {
    queue = queue.then(work).catch((error) => console.error('switchyard console:', error));
  };
  start();

  async function start() {
    let initial = null;
    try {
      initial = await api.worker(runtimeId, workerId);
    } catch (error) {
      if (error.status >= 400 && error.status < 500) {
        fill(body, errorPanel(error));
        // Nothing here to command or type to.
        actions?.remove();
        inputForm?.element.remove();
        showConnection('ended', { error });
        return;
      }
      // The runtime (or the backend) may be down: say so, with the API's error; the
      // stream keeps trying and paints the worker when it is back.
      fill(
        body,
        h('p', {
          class: 'loading',
          role: 'status',
          text: `Waiting for the worker — ${error.code}: ${error.message}`,
        }),
      );
    }
    if (disposed) return;
    const kind = initial ? profileKind(runtimeId, initial.profile) : null;
    stream = new WorkerStream({
      url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${paths.events(runtimeId, workerId)}`,
      interactive: operate && kind === 'pty',
      probe: () => api.worker(runtimeId, workerId),
      handlers: {
        onEvent: (event) => enqueue(() => onEvent(event)),
        onReset: (reason) =>
          enqueue(() => {
            pendingResetNote = reason;
            resetInfo.textContent = `Repainted from a fresh snapshot (${reason.replaceAll('_', ' ')})`;
          }),
        onState: showConnection,
        onRefused: (error) => {
          // A key or resize the worker refused as it ended: its status follows at
          // once, and says it better. Shown only if the worker still runs.
          if (error?.code === 'worker_not_running') {
            setTimeout(() => {
              if (!disposed && detail && !isEnded(detail.status)) showError(error, 'sending to the terminal');
            }, 1000);
            return;
          }
          showError(error, 'sending to the terminal');
          if (error?.code === 'forbidden') reportForbidden(error);
        },
      },
    });
    stream.start();
  }

  function onEvent(event) {
    switch (event.kind) {
      case 'snapshot':
        // Returned so the queue waits: events after a snapshot apply to the view it
        // builds (the terminal loads asynchronously).
        return applySnapshot(event);
      case 'status':
        if (!detail || event.status === detail.status) return;
        detail.status = event.status;
        transcript?.event(event);
        if (terminal && isEnded(event.status) && event.status !== 'exited') terminal.note(event.status);
        renderHead();
        refreshSoon();
        break;
      case 'input':
        if (!detail) return;
        if (mode !== 'transcript' || transcript.event(event)) detail.input_count += 1;
        scheduleHead();
        break;
      case 'output': {
        if (!detail) return;
        const fresh = mode === 'terminal' ? terminal.output(event) : transcript.event(event);
        if (fresh) detail.output_bytes += new TextEncoder().encode(event.text).length;
        scheduleHead();
        break;
      }
      case 'exited':
        if (!detail) return;
        detail.exit = { code: event.code, signal: event.signal };
        // Its program is gone: no more keys or resizes, whatever the status says yet.
        terminal?.setInputEnabled(false);
        transcript?.event(event);
        terminal?.note(`exited, ${describeExit(event) || 'no code'}`);
        renderHead();
        break;
      case 'interrupted':
      case 'diagnostic':
        transcript?.event(event);
        if (terminal && event.kind === 'diagnostic') terminal.note(`${event.code}: ${event.message}`);
        break;
      case 'resized':
        terminal?.resized(event.cols, event.rows);
        break;
      default:
        break;
    }
  }

  async function applySnapshot(event) {
    detail = { ...event.worker };
    const items = event.transcript ?? [];
    const lastSequence = items.length ? items[items.length - 1].sequence : 0;
    const wantsTerminal = Boolean(event.terminal) || profileKind(runtimeId, detail.profile) === 'pty';
    if (wantsTerminal && operate && !stream.interactive) stream.setInteractive(true);
    renderHead();
    if (wantsTerminal) {
      if (mode !== 'terminal') await showTerminal();
      if (disposed) return;
      terminal.paint(event.terminal ?? null, lastSequence);
    } else {
      if (mode !== 'transcript') showTranscript();
      transcript.snapshot(items);
    }
    if (pendingResetNote) {
      const reason = pendingResetNote.replaceAll('_', ' ');
      if (transcript) transcript.localNote(`repainted after a reset (${reason})`);
      // A terminal whose program runs gets no line of ours (the header says it): it
      // would move the cursor off where the program left it, so what is typed next
      // would echo rows below the prompt, and a full-screen program draw off by two.
      else if (isEnded(detail.status)) terminal?.note(`repainted after a reset (${reason})`);
      pendingResetNote = null;
    }
  }

  function showTranscript() {
    mode = 'transcript';
    transcript = new TranscriptView({
      loadPage: (after, limit) => api.transcript(runtimeId, workerId, after, limit),
      onError: showError,
    });
    fill(body, transcript.element);
    body.classList.remove('terminal-body');
  }

  async function showTerminal() {
    mode = 'terminal';
    const host = h('div', { class: 'terminal-host', 'aria-label': 'Terminal' });
    const hint = operate
      ? h('p', { class: 'hint terminal-hint', text: 'Ctrl+] leaves the terminal; Tab then reaches the commands' })
      : null;
    fill(body, host, hint);
    body.classList.add('terminal-body');
    inputForm?.element.remove();
    try {
      terminal = await openTerminal(host);
    } catch (error) {
      showError({ code: 'terminal_unavailable', message: String(error?.message ?? error) }, 'loading the terminal');
      return;
    }
    if (disposed) terminal.dispose();
    else {
      updateControls();
      if (operate) terminal.focus();
    }
  }

  async function openTerminal(host) {
    const { openTerminal: open } = await import('./terminal.js');
    return open(host, {
      interactive: operate,
      // Ctrl+] (telnet's escape) gives the keyboard back to the page: the title,
      // from where Tab reaches the commands.
      onLeave: () => title.focus(),
      onData: (text) => {
        if (stream?.sendInput(text)) return;
        if (!warnedOffline) {
          warnedOffline = true;
          showError({ code: 'not_connected', message: 'the terminal is reconnecting; typing is not sent until it is back' });
        }
      },
      onResize: (cols, rows) => {
        if (!stream?.send({ type: 'resize', cols, rows })) {
          call('POST', paths.action(runtimeId, workerId, 'resize'), { cols, rows }).catch((error) =>
            showError(error, 'resizing the terminal'),
          );
        }
      },
    });
  }

  function showConnection(state, info) {
    clearTimeout(restoredTimer);
    if (state === 'connected' || state === 'restored') warnedOffline = false;
    connection.dataset.state = state;
    let text = CONNECTION_TEXT[state] ?? state;
    let hint = '';
    if (state === 'reconnecting' && info.cause === 'upstream') {
      text = 'Reconnecting: runtime lost';
      hint = info.error ? `${info.error.code}: ${info.error.message}` : '';
    } else if (state === 'reconnecting') {
      hint = 'the connection to the backend dropped; resuming from the last event';
    } else if (state === 'ended' && info.reason === 'worker_deleted') {
      text = 'Worker deleted';
    } else if (state === 'ended' && info.reason === 'runtime_removed') {
      // Not deleted: the backend no longer has its runtime (a reload took it out).
      text = 'Runtime removed';
      hint = `${info.error.code}: ${info.error.message}`;
    } else if (state === 'ended' && info.error) {
      text = `Disconnected: ${info.error.code}`;
      hint = info.error.message;
      showError(info.error, 'watching the worker');
    }
    fill(connection, h('span', { class: 'dot', 'aria-hidden': 'true' }), h('span', { class: 'connection-text', text }));
    connectionHint.textContent = hint;
    if (state === 'restored') {
      restoredTimer = setTimeout(() => {
        if (stream?.state === 'restored') showConnection('connected', {});
      }, RESTORED_SHOWN_MS);
    }
    if (state === 'ended' && (info.reason === 'worker_deleted' || info.reason === 'runtime_removed')) {
      gone = info.reason === 'worker_deleted' ? 'deleted' : 'runtime removed';
      renderHead();
    }
  }

  let headPending = false;
  /** Redraws the header at most once a frame (output can arrive in floods). */
  function scheduleHead() {
    if (headPending) return;
    headPending = true;
    requestAnimationFrame(() => {
      headPending = false;
      if (!disposed) renderHead();
    });
  }

  function renderHead() {
    if (!detail) {
      fill(statusSlot, gone ? badge('deleted', gone) : null);
      updateControls();
      return;
    }
    title.textContent = detail.label || detail.worker_id;
    document.title = `${detail.label || detail.worker_id} · Switchyard`;
    fill(statusSlot, gone ? badge('deleted', gone) : badge(detail.status));
    const rows = [
      ['Worker', h('span', { class: 'mono', text: detail.worker_id })],
      ['Profile', detail.profile],
      ['Runtime', detail.runtime_id],
      ['Created', h('time', { datetime: detail.created_at, title: localTime(detail.created_at), text: relativeTime(detail.created_at) })],
      ['Inputs', String(detail.input_count)],
      ['Output', formatBytes(detail.output_bytes)],
      detail.owner ? ['Owner', detail.owner] : null,
      detail.exit ? ['Ended with', describeExit(detail.exit)] : null,
    ].filter(Boolean);
    fill(meta, rows.map(([k, v]) => h('div', { class: 'meta-item' }, h('dt', { text: k }), h('dd', {}, v))));
    updateControls();
  }

  function updateControls() {
    const deleted = Boolean(gone);
    const status = detail?.status;
    const running = status === 'running' || status === 'starting';
    cancelButton.disabled = deleted || status !== 'running';
    stopButton.disabled = deleted || !running;
    deleteButton.disabled = deleted || !status || running;
    if (inputForm) {
      const why = gone === 'runtime removed' ? 'out of reach (its runtime was removed)' : gone ?? status;
      inputForm.setEnabled(!deleted && status === 'running', why);
    }
    // An ended worker's terminal takes no keys (each would be refused): its exit,
    // which comes before its status, already says so.
    terminal?.setInputEnabled(!deleted && (status === 'running' || status === 'starting') && !detail?.exit);
  }

  async function command(name, run) {
    try {
      await run();
      refreshSoon();
    } catch (error) {
      showError(error, `${name === 'cancel' ? 'cancelling' : 'stopping'} ${workerId}`);
    }
  }

  async function onDelete() {
    if (deleteButton.dataset.confirm !== 'yes') {
      deleteButton.dataset.confirm = 'yes';
      deleteButton.textContent = 'Confirm delete';
      clearTimeout(confirmTimer);
      confirmTimer = setTimeout(() => {
        delete deleteButton.dataset.confirm;
        deleteButton.textContent = 'Delete';
      }, CONFIRM_MS);
      return;
    }
    clearTimeout(confirmTimer);
    delete deleteButton.dataset.confirm;
    deleteButton.textContent = 'Delete';
    try {
      await api.remove(runtimeId, workerId);
      showInfo(`Deleted ${workerId}`);
      refreshSoon();
      navigate('#/workers');
    } catch (error) {
      showError(error, `deleting ${workerId}`);
    }
  }

  function buildInputForm() {
    const textarea = h('textarea', {
      id: 'input-text',
      rows: '2',
      spellcheck: 'false',
      autocomplete: 'off',
      placeholder: 'Type input for the worker',
      'aria-describedby': 'input-help',
    });
    const newline = h('input', { type: 'checkbox', id: 'input-newline', checked: true });
    const send = h('button', { type: 'submit', class: 'button primary', text: 'Send' });
    const help = h('span', { class: 'hint', id: 'input-help', text: 'Enter sends · Shift+Enter starts a new line' });
    const form = h(
      'form',
      { class: 'input-form', 'aria-label': 'Send input' },
      h('label', { for: 'input-text', class: 'input-label', text: 'Input' }),
      h('div', { class: 'input-row' }, textarea, send),
      h(
        'div',
        { class: 'input-options' },
        h('label', { class: 'check' }, newline, ' End with a newline'),
        help,
      ),
    );
    textarea.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    let sending = false;
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      // Enter submits even while the Send button is disabled: one send at a time,
      // or what is still being sent would go twice.
      if (sending) return;
      const text = textarea.value + (newline.checked ? '\n' : '');
      if (!text) return;
      sending = true;
      send.disabled = true;
      const typed = textarea.value;
      try {
        await api.input(runtimeId, workerId, text);
        // Only what was sent goes: what was typed meanwhile stays in the box.
        textarea.value = textarea.value.startsWith(typed) ? textarea.value.slice(typed.length) : textarea.value;
      } catch (error) {
        showError(error, 'sending input');
      } finally {
        sending = false;
        send.disabled = textarea.disabled;
        textarea.focus();
      }
    });
    return {
      element: form,
      setEnabled(enabled, status) {
        textarea.disabled = !enabled;
        send.disabled = !enabled;
        help.textContent = enabled || !status
          ? 'Enter sends · Shift+Enter starts a new line'
          : `The worker is ${status}; it takes no more input.`;
      },
    };
  }

  function errorPanel(error) {
    return h(
      'div',
      { class: 'error-panel', role: 'alert' },
      h('strong', { class: 'notice-code', text: error.code }),
      h('p', { text: error.message }),
      h('a', { href: '#/workers', text: 'Back to the workers' }),
    );
  }

  return () => {
    disposed = true;
    clearInterval(clock);
    clearTimeout(restoredTimer);
    clearTimeout(confirmTimer);
    stream?.close();
    terminal?.dispose();
  };
}
