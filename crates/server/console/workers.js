// Workers of every runtime: filters by runtime and status (kept in the URL), a form
// to start a worker from a runtime's profiles, runtimes that did not answer, runtimes
// with more workers than are listed, and each worker's commands. Polled every few
// seconds while shown.

import { api } from './api.js';
import { badge, fill, h, labelledSelect, preservingFocus } from './dom.js';
import { WORKER_STATUSES, describeExit, formatBytes, formatCount, isEnded, localTime, relativeTime, shortExit } from './format.js';
import { showError, showInfo } from './notices.js';
import { canOperate, refreshSoon, store, subscribe } from './store.js';

const POLL_MS = 2500;
const CONFIRM_MS = 5000;
/**
 * Workers listed of each runtime (`GET /api/workers?limit=`) unless the URL says
 * otherwise (`limit`): the list is fetched and drawn again every few seconds, which
 * must stay light on a runtime with thousands of workers. A runtime with more is
 * named above the list, with what to do.
 */
const LIST_LIMIT = 1000;
/** The most the backend lists of one runtime at once. */
const LIST_LIMIT_MAX = 10000;

/** The URL's `limit`: a whole number from 1 to the backend's cap, else the default. */
function listLimit(text) {
  const n = Number(text);
  return Number.isInteger(n) && n >= 1 ? Math.min(n, LIST_LIMIT_MAX) : LIST_LIMIT;
}

/** Shows the workers in `main`, filtered by `query` (runtime, status, limit); returns the unmount. */
export function mountWorkersView(main, { query, navigate }) {
  const filters = { runtime: query.get('runtime') ?? '', status: query.get('status') ?? '' };
  let limit = listLimit(query.get('limit'));
  const operate = canOperate();
  let answer = null;
  /** The status and limit `answer` was asked for. */
  let asked = null;
  let error = null;
  let timer = null;
  let stopped = false;
  let confirming = null;
  let confirmTimer = null;

  const title = h('h1', { tabindex: '-1', text: 'Workers' });
  const summary = h('p', { class: 'page-summary muted', role: 'status' });
  const filterBar = h('div', { class: 'filters', role: 'group', 'aria-label': 'Filters' });
  const createForm = operate ? buildCreateForm() : null;
  const unavailable = h('div', { class: 'unavailable' });
  const truncated = h('div', { class: 'truncated' });
  const list = h('div', { class: 'worker-list' });
  // One table for the view's life, and one row per worker kept while the worker is
  // unchanged: the list is polled every few seconds and may hold thousands of workers,
  // and building every row again each time froze the page for most of a second per
  // poll at 5,000 rows. A kept row has only its age ("12 s ago") brought up to date.
  const tbody = h('tbody', {});
  const workersTable = h(
    'table',
    { class: 'workers-table' },
    h('caption', { class: 'visually-hidden', text: 'Workers' }),
    h(
      'thead',
      {},
      h('tr', {}, ['Worker', 'Runtime', 'Profile', 'Status', 'Created', 'Activity', operate ? 'Commands' : null].filter(Boolean).map((t) => h('th', { scope: 'col', text: t }))),
    ),
    tbody,
  );
  /** `runtime/worker` → {sig, tr}: the rows drawn last, with what each was drawn from. */
  let rowCache = new Map();
  fill(
    main,
    h(
      'section',
      { class: 'workers-page' },
      h('header', { class: 'page-head' }, h('div', {}, title, summary), createForm?.element),
      filterBar,
      unavailable,
      truncated,
      list,
    ),
  );
  document.title = 'Workers · Switchyard';
  title.focus({ preventScroll: true });

  function setFilter(name, value) {
    filters[name] = value;
    showInUrl();
  }

  function setLimit(value) {
    limit = value;
    showInUrl();
  }

  /** Puts the filters and the limit (when not the default) in the URL, then lists anew. */
  function showInUrl() {
    const params = new URLSearchParams();
    if (filters.runtime) params.set('runtime', filters.runtime);
    if (filters.status) params.set('status', filters.status);
    if (limit !== LIST_LIMIT) params.set('limit', String(limit));
    const hash = `#/workers${params.size ? `?${params}` : ''}`;
    history.replaceState(null, '', hash);
    poll();
  }

  let filtersDrawn = '';
  function drawFilters() {
    const key = JSON.stringify([filters, store.runtimes.map((r) => [r.runtime_id, r.display_name, r.state])]);
    if (key === filtersDrawn) return;
    filtersDrawn = key;
    const runtimeOptions = [['', 'All runtimes'], ...store.runtimes.map((r) => [r.runtime_id, r.state === 'ready' ? r.display_name || r.runtime_id : `${r.display_name || r.runtime_id} (${r.state.replaceAll('_', ' ')})`])];
    if (filters.runtime && !store.runtimes.some((r) => r.runtime_id === filters.runtime)) {
      runtimeOptions.push([filters.runtime, filters.runtime]);
    }
    preservingFocus(filterBar, () =>
      fill(
        filterBar,
        labelledSelect({
          id: 'filter-runtime',
          label: 'Runtime',
          options: runtimeOptions,
          value: filters.runtime,
          onChange: (v) => setFilter('runtime', v),
        }),
        labelledSelect({
          id: 'filter-status',
          label: 'Status',
          options: [['', 'Any status'], ...WORKER_STATUSES.map((s) => [s, s])],
          value: filters.status,
          onChange: (v) => setFilter('status', v),
        }),
      ),
    );
    filterBar.querySelector('#filter-runtime').dataset.focusKey = 'filter-runtime';
    filterBar.querySelector('#filter-status').dataset.focusKey = 'filter-status';
  }

  let generation = 0;
  async function poll() {
    clearTimeout(timer);
    // Only the latest poll draws: a filter change must not be undone by an older answer.
    const mine = ++generation;
    const asking = { status: filters.status, limit };
    try {
      const fresh = await api.allWorkers(asking.status || null, asking.limit);
      if (mine !== generation) return;
      answer = fresh;
      asked = asking;
      error = null;
    } catch (failure) {
      if (mine !== generation) return;
      error = failure;
    }
    if (stopped) return;
    draw();
    // A hidden page is not polled (the list may be thousands of workers of every
    // runtime); it is listed again as soon as it is shown.
    if (!document.hidden) timer = setTimeout(poll, POLL_MS);
  }

  function onVisibility() {
    if (stopped) return;
    if (document.hidden) clearTimeout(timer);
    else poll();
  }
  document.addEventListener('visibilitychange', onVisibility);

  function draw() {
    if (error && !answer) {
      fill(list, h('div', { class: 'error-panel', role: 'alert' }, h('strong', { class: 'notice-code', text: error.code }), h('p', { text: error.message })));
      return;
    }
    if (!answer) {
      fill(list, h('p', { class: 'loading', text: 'Loading workers…' }));
      return;
    }
    const workers = (answer.workers ?? []).filter((w) => !filters.runtime || w.runtime_id === filters.runtime);
    const missing = (answer.unavailable ?? []).filter((u) => !filters.runtime || u.runtime_id === filters.runtime);
    const cut = (answer.truncated ?? []).filter((id) => !filters.runtime || id === filters.runtime);
    summary.textContent = `${workers.length} worker${workers.length === 1 ? '' : 's'}${filters.runtime || filters.status || cut.length ? ' shown' : ''}${error ? ` · last refresh failed: ${error.code}` : ''}`;
    fill(
      unavailable,
      missing.length
        ? h(
            'div',
            { class: 'unavailable-box', role: 'note' },
            h('h2', { text: 'Runtimes that did not answer' }),
            h(
              'ul',
              {},
              missing.map((u) =>
                h('li', {}, h('span', { class: 'mono', text: u.runtime_id }), ' ', h('strong', { class: 'notice-code', text: u.error?.code ?? 'unavailable' }), ' ', h('span', { text: u.error?.message ?? '' })),
              ),
            ),
            h('p', { class: 'muted small', text: 'Their workers are not listed until they answer again.' }),
          )
        : null,
    );
    drawTruncated(cut);
    const place = focusPlace();
    preservingFocus(list, () => {
      if (workers.length) {
        drawRows(workers);
        if (workersTable.parentNode !== list) fill(list, workersTable);
      } else {
        rowCache = new Map();
        tbody.replaceChildren();
        fill(list, h('p', { class: 'empty', text: filters.runtime || filters.status ? 'No workers match these filters.' : 'No workers yet. Start one from a runtime’s profiles.' }));
      }
    });
    if (place && !list.contains(document.activeElement)) focusNear(place);
  }

  /** The row and command that have the keyboard's focus, if one in the list has it. */
  function focusPlace() {
    const focused = document.activeElement;
    const tr = list.contains(focused) ? focused.closest('tr') : null;
    if (!tr || tr.parentNode !== tbody) return null;
    return { index: [...tbody.children].indexOf(tr), command: focused.dataset.focusKey?.split('/').pop() ?? '' };
  }

  /**
   * A redraw took away the focused control: its worker was deleted, or the command is
   * gone (Stop, once the worker ended). The focus goes to the same command in the row
   * now at that place (the next one), else to that row's first command or link, else
   * to the row before; with no row left, to the page's heading. Never to nothing.
   */
  function focusNear({ index, command }) {
    const rows = workersTable.parentNode === list ? [...tbody.children] : [];
    const tr = rows[Math.min(index, rows.length - 1)];
    if (!tr) {
      title.focus();
      return;
    }
    const target =
      (command && tr.querySelector(`[data-focus-key$="/${CSS.escape(command)}"]:not([disabled])`)) ||
      tr.querySelector('.actions button:not([disabled])') ||
      tr.querySelector('.worker-link');
    target.focus();
  }

  // Runtimes with more workers than the answer holds (`truncated`): which, and how to
  // see the rest. Drawn again only when that changes, so that a poll never takes the
  // focus off its button; gone once an answer holds them all.
  let truncatedDrawn = '';
  function drawTruncated(runtimes) {
    const key = JSON.stringify([runtimes, asked]);
    if (key === truncatedDrawn) return;
    truncatedDrawn = key;
    if (!runtimes.length) {
      // Its button may have had the focus: give it to the page's heading, not to nothing.
      const focused = truncated.contains(document.activeElement);
      fill(truncated);
      if (focused) title.focus({ preventScroll: true });
      return;
    }
    const { status, limit: listed } = asked;
    const which = `${formatCount(listed)}${status ? ` ${status}` : ''} worker${listed === 1 ? '' : 's'}`;
    fill(
      truncated,
      h(
        'div',
        { class: 'truncated-box', role: 'note', 'aria-labelledby': 'truncated-title' },
        h('h2', { id: 'truncated-title', text: 'Not every worker is listed' }),
        h('p', { text: `The list holds the first ${which} of each runtime, by worker id (usually the oldest). ${runtimes.length === 1 ? 'This runtime has' : 'These runtimes have'} more:` }),
        h(
          'ul',
          {},
          runtimes.map((id) =>
            h(
              'li',
              { dataset: { runtimeId: id } },
              h('span', { class: 'mono', text: id }),
              ' · list them all from a terminal: ',
              h('code', { class: 'mono', text: `switchyard ls --runtime ${id}${status ? ` --status ${status}` : ''}` }),
            ),
          ),
        ),
        h(
          'div',
          { class: 'truncated-actions' },
          status ? null : h('p', { class: 'muted small', text: 'Choose a status above to narrow the list.' }),
          listed < LIST_LIMIT_MAX
            ? h('button', {
                type: 'button',
                class: 'button small',
                text: `List up to ${formatCount(LIST_LIMIT_MAX)} per runtime`,
                on: { click: () => setLimit(LIST_LIMIT_MAX) },
              })
            : null,
        ),
      ),
    );
  }

  function drawRows(workers) {
    const now = Date.now();
    const next = new Map();
    const rows = workers.map((worker) => {
      const key = `${worker.runtime_id}/${worker.worker_id}`;
      const sig = `${confirming === key}|${JSON.stringify(worker)}`;
      const cached = rowCache.get(key);
      if (cached && cached.sig === sig) {
        for (const time of cached.tr.querySelectorAll('time[datetime]')) {
          const text = relativeTime(time.getAttribute('datetime'), now);
          if (time.textContent !== text) time.textContent = text;
        }
        next.set(key, cached);
        return cached.tr;
      }
      const tr = row(worker);
      next.set(key, { sig, tr });
      return tr;
    });
    rowCache = next;
    const shown = tbody.children;
    if (shown.length === rows.length && rows.every((tr, i) => shown[i] === tr || !tr.parentNode)) {
      // The same workers in the same order: only the rows that changed are swapped.
      rows.forEach((tr, i) => {
        if (shown[i] !== tr) tbody.replaceChild(tr, shown[i]);
      });
    } else {
      tbody.replaceChildren(...rows);
    }
  }

  function row(worker) {
    const key = `${worker.runtime_id}/${worker.worker_id}`;
    const href = `#/workers/${encodeURIComponent(worker.runtime_id)}/${encodeURIComponent(worker.worker_id)}`;
    const ended = isEnded(worker.status);
    return h(
      'tr',
      { dataset: { workerId: worker.worker_id, runtimeId: worker.runtime_id, status: worker.status } },
      h(
        'td',
        { class: 'cell-worker', 'data-label': 'Worker' },
        h(
          'div',
          { class: 'worker-cell' },
          h('a', { href, class: 'worker-link', dataset: { focusKey: `${key}/open` } }, worker.label || worker.worker_id),
          worker.label ? h('span', { class: 'worker-id mono', text: worker.worker_id }) : null,
        ),
      ),
      h('td', { 'data-label': 'Runtime' }, worker.runtime_id),
      h('td', { 'data-label': 'Profile', class: 'mono' }, worker.profile),
      h('td', { 'data-label': 'Status' }, badge(worker.status), worker.exit ? h('span', { class: 'exit muted', title: describeExit(worker.exit), text: shortExit(worker.exit) }) : null),
      h('td', { 'data-label': 'Created' }, h('time', { datetime: worker.created_at, title: localTime(worker.created_at), text: relativeTime(worker.created_at) })),
      h('td', { 'data-label': 'Activity', class: 'muted' }, `${worker.input_count} in · ${formatBytes(worker.output_bytes)} out`),
      operate
        ? h(
            'td',
            { class: 'cell-actions', 'data-label': 'Commands' },
            h(
              'div',
              { class: 'actions', role: 'group', 'aria-label': `Commands for ${worker.label || worker.worker_id}` },
              ended
                ? null
                : [
                    h('button', { type: 'button', class: 'button small', text: 'Cancel', disabled: worker.status !== 'running', dataset: { focusKey: `${key}/cancel` }, 'aria-label': `Cancel ${worker.worker_id}`, on: { click: () => command(worker, 'cancel') } }),
                    h('button', { type: 'button', class: 'button small', text: 'Stop', dataset: { focusKey: `${key}/stop` }, 'aria-label': `Stop ${worker.worker_id}`, on: { click: () => command(worker, 'stop') } }),
                  ],
              ended
                ? h('button', {
                    type: 'button',
                    class: `button small danger${confirming === key ? ' confirming' : ''}`,
                    text: confirming === key ? 'Confirm delete' : 'Delete',
                    dataset: { focusKey: `${key}/delete` },
                    'aria-label': confirming === key ? `Confirm deleting ${worker.worker_id}` : `Delete ${worker.worker_id}`,
                    on: { click: () => remove(worker, key) },
                  })
                : null,
            ),
          )
        : null,
    );
  }

  async function command(worker, name) {
    try {
      await (name === 'cancel' ? api.cancel : api.stop)(worker.runtime_id, worker.worker_id);
      refreshSoon();
    } catch (failure) {
      showError(failure, `${name === 'cancel' ? 'cancelling' : 'stopping'} ${worker.worker_id}`);
    }
    poll();
  }

  async function remove(worker, key) {
    clearTimeout(confirmTimer);
    if (confirming !== key) {
      confirming = key;
      confirmTimer = setTimeout(() => {
        confirming = null;
        draw();
      }, CONFIRM_MS);
      draw();
      return;
    }
    confirming = null;
    try {
      await api.remove(worker.runtime_id, worker.worker_id);
      showInfo(`Deleted ${worker.worker_id}`);
      refreshSoon();
    } catch (failure) {
      showError(failure, `deleting ${worker.worker_id}`);
    }
    poll();
  }

  function buildCreateForm() {
    const runtimeSelect = h('select', { id: 'create-runtime', required: true });
    const profileSelect = h('select', { id: 'create-profile', required: true });
    const label = h('input', { id: 'create-label', type: 'text', maxlength: '200', placeholder: 'optional', autocomplete: 'off' });
    const submit = h('button', { type: 'submit', class: 'button primary', text: 'Start worker' });
    const form = h(
      'form',
      { class: 'create-form', 'aria-label': 'Start a worker' },
      h('div', { class: 'field' }, h('label', { for: 'create-runtime', text: 'Runtime' }), runtimeSelect),
      h('div', { class: 'field' }, h('label', { for: 'create-profile', text: 'Profile' }), profileSelect),
      h('div', { class: 'field' }, h('label', { for: 'create-label', text: 'Label' }), label),
      h('div', { class: 'field field-submit' }, submit),
    );
    let drawn = '';
    function update() {
      const runtimes = store.runtimes;
      const key = JSON.stringify(runtimes.map((r) => [r.runtime_id, r.state, r.profiles]));
      if (key === drawn) return;
      drawn = key;
      // The runtime chosen before, while it is still listed (a reload may remove it).
      const listed = (id) => (id && runtimes.some((r) => r.runtime_id === id) ? id : null);
      const chosen = listed(runtimeSelect.value) || listed(filters.runtime) || runtimes.find((r) => r.state === 'ready')?.runtime_id || runtimes[0]?.runtime_id || '';
      runtimeSelect.replaceChildren(...runtimes.map((r) => h('option', { value: r.runtime_id, text: r.state === 'ready' ? r.runtime_id : `${r.runtime_id} (${r.state.replaceAll('_', ' ')})` })));
      runtimeSelect.value = chosen;
      updateProfiles();
    }
    function updateProfiles() {
      const runtime = store.runtimes.find((r) => r.runtime_id === runtimeSelect.value);
      const chosen = profileSelect.value;
      const profiles = runtime?.profiles ?? [];
      profileSelect.replaceChildren(...profiles.map((p) => h('option', { value: p.name, text: p.name === p.kind ? p.name : `${p.name} (${p.kind})` })));
      if (profiles.some((p) => p.name === chosen)) profileSelect.value = chosen;
      profileSelect.disabled = profiles.length === 0;
      submit.disabled = profiles.length === 0;
    }
    runtimeSelect.addEventListener('change', updateProfiles);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      submit.disabled = true;
      try {
        const worker = await api.create(runtimeSelect.value, profileSelect.value, label.value.trim() || null);
        label.value = '';
        refreshSoon();
        navigate(`#/workers/${encodeURIComponent(worker.runtime_id)}/${encodeURIComponent(worker.worker_id)}`);
      } catch (failure) {
        showError(failure, `starting a ${profileSelect.value} worker on ${runtimeSelect.value}`);
      } finally {
        submit.disabled = profileSelect.disabled;
      }
    });
    return { element: form, update };
  }

  const onStore = () => {
    drawFilters();
    createForm?.update();
  };
  onStore();
  const unsubscribe = subscribe(onStore);
  poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
    clearTimeout(confirmTimer);
    document.removeEventListener('visibilitychange', onVisibility);
    unsubscribe();
  };
}
