// The runtimes: each one's state, when it last answered, its last error, what it can
// do, its profiles (with a button to start a worker from each) and its worker counts.
// Redrawn from the shared store on every poll.

import { api } from './api.js';
import { badge, fill, h, preservingFocus } from './dom.js';
import { WORKER_STATUSES, localTime, relativeTime } from './format.js';
import { showError } from './notices.js';
import { canOperate, refreshSoon, store, subscribe } from './store.js';

/** Shows the runtimes in `main`; returns the unmount. */
export function mountRuntimesView(main, { navigate }) {
  const summary = h('p', { class: 'page-summary muted', role: 'status' });
  const grid = h('div', { class: 'runtime-grid' });
  const title = h('h1', { tabindex: '-1', text: 'Runtimes' });
  fill(
    main,
    h(
      'section',
      { class: 'runtimes-page' },
      h('header', { class: 'page-head' }, h('div', {}, title, summary)),
      grid,
    ),
  );
  document.title = 'Runtimes · Switchyard';
  title.focus({ preventScroll: true });

  const render = () => preservingFocus(grid, () => draw());
  function draw() {
    const { runtimes, loaded, runtimesError } = store;
    if (!loaded) {
      fill(grid, runtimesError ? errorBox(runtimesError) : h('p', { class: 'loading', text: 'Loading runtimes…' }));
      summary.textContent = '';
      return;
    }
    const ready = runtimes.filter((r) => r.state === 'ready').length;
    summary.textContent = `${runtimes.length} runtime${runtimes.length === 1 ? '' : 's'} · ${ready} ready`;
    if (runtimes.length === 0) {
      fill(grid, h('p', { class: 'empty', text: 'This backend has no runtimes configured.' }));
      return;
    }
    fill(grid, runtimes.map((runtime) => card(runtime, navigate)));
  }
  render();
  const unsubscribe = subscribe(render);
  const clock = setInterval(render, 5000);
  return () => {
    unsubscribe();
    clearInterval(clock);
  };
}

function card(runtime, navigate) {
  const id = runtime.runtime_id;
  const counts = WORKER_STATUSES.filter((s) => (runtime.workers?.[s] ?? 0) > 0);
  const total = WORKER_STATUSES.reduce((n, s) => n + (runtime.workers?.[s] ?? 0), 0);
  const operate = canOperate();
  return h(
    'article',
    {
      class: `runtime-card state-${runtime.state}`,
      'aria-labelledby': `runtime-${id}-name`,
      dataset: { runtimeId: id, state: runtime.state },
    },
    h(
      'header',
      { class: 'runtime-head' },
      h(
        'div',
        { class: 'runtime-names' },
        h('h2', { id: `runtime-${id}-name`, text: runtime.display_name || id }),
        h('p', { class: 'runtime-id' }, h('span', { class: 'mono', text: id }), ' · ', runtime.source),
      ),
      badge(runtime.state, runtime.state.replaceAll('_', ' '), 'runtime-state'),
    ),
    h(
      'dl',
      { class: 'runtime-facts' },
      h(
        'div',
        {},
        h('dt', { text: 'Last seen' }),
        h('dd', {}, runtime.last_seen
          ? h('time', { datetime: runtime.last_seen, title: localTime(runtime.last_seen), text: relativeTime(runtime.last_seen) })
          : 'never'),
      ),
      h(
        'div',
        {},
        h('dt', { text: 'Workers' }),
        h('dd', {}, h('a', { href: `#/workers?runtime=${encodeURIComponent(id)}`, text: `${total} in all`, dataset: { focusKey: `${id}/workers` } })),
      ),
    ),
    runtime.last_error
      ? h(
          'p',
          { class: 'last-error', role: 'note' },
          h('strong', { class: 'notice-code', text: runtime.last_error.code }),
          ' ',
          h('span', { text: runtime.last_error.message }),
        )
      : null,
    h(
      'ul',
      { class: 'count-chips', 'aria-label': 'Workers by status' },
      counts.length
        ? counts.map((s) => h('li', { class: `count count-${s}` }, h('span', { class: 'count-n', text: String(runtime.workers[s]) }), ` ${s}`))
        : h('li', { class: 'count count-none', text: 'no workers' }),
    ),
    h('h3', { text: 'Profiles' }),
    runtime.profiles?.length
      ? h(
          'ul',
          { class: 'profiles' },
          runtime.profiles.map((profile) =>
            h(
              'li',
              { class: 'profile' },
              h(
                'div',
                { class: 'profile-text' },
                h('span', { class: 'profile-name mono', text: profile.name }),
                h('span', { class: `kind kind-${profile.kind}`, text: profile.kind }),
                profile.description ? h('p', { class: 'profile-description', text: profile.description }) : null,
              ),
              operate
                ? h('button', {
                    type: 'button',
                    class: 'button small',
                    text: 'Start',
                    'aria-label': `Start a ${profile.name} worker on ${id}`,
                    dataset: { focusKey: `${id}/start/${profile.name}` },
                    disabled: starting.has(`${id}/${profile.name}`),
                    on: { click: (event) => start(event.currentTarget, id, profile.name, navigate) },
                  })
                : null,
            ),
          ),
        )
      : h('p', { class: 'muted small', text: runtime.state === 'ready' ? 'No profiles.' : 'Not known until it answers.' }),
    runtime.capabilities?.length
      ? h(
          'div',
          { class: 'capabilities' },
          h('h3', { text: 'Capabilities' }),
          h('ul', { class: 'chips' }, runtime.capabilities.map((c) => h('li', { class: 'chip mono', text: c }))),
        )
      : null,
  );
}

/**
 * The starts still in flight, by `runtime/profile`: a card redrawn meanwhile (every
 * 5 s, or on a refresh) keeps its button disabled, so a slow answer is not taken
 * for a lost click and a second worker started.
 */
const starting = new Set();

async function start(button, runtimeId, profile, navigate) {
  const key = `${runtimeId}/${profile}`;
  if (starting.has(key)) return;
  starting.add(key);
  button.disabled = true;
  try {
    const worker = await api.create(runtimeId, profile);
    starting.delete(key);
    refreshSoon();
    navigate(`#/workers/${encodeURIComponent(runtimeId)}/${encodeURIComponent(worker.worker_id)}`);
  } catch (error) {
    starting.delete(key);
    showError(error, `starting a ${profile} worker on ${runtimeId}`);
    button.disabled = false;
    // A card redrawn meanwhile holds another button: enable that one too.
    for (const again of document.querySelectorAll(`[data-focus-key="${CSS.escape(`${runtimeId}/start/${profile}`)}"]`)) {
      again.disabled = false;
    }
  }
}

function errorBox(error) {
  return h(
    'div',
    { class: 'error-panel', role: 'alert' },
    h('strong', { class: 'notice-code', text: error.code }),
    h('p', { text: error.message }),
  );
}
