// A worker's transcript on the page: inputs, stdout, stderr and system notes told
// apart, consecutive output of one stream run together, older items loaded on demand,
// and every input or output shown once: anything at or below the last sequence shown
// is a duplicate and is dropped. Escape sequences in the output are read per stream
// (ansi.js): SGR colours and styles show as classes, every other sequence is dropped.

import { AnsiParser } from './ansi.js';
import { h } from './dom.js';
import { describeExit, localTime } from './format.js';

/** Items fetched per "load earlier" click. */
const PAGE = 200;
/** Beyond this much text the oldest blocks leave the page (and can be loaded again). */
const MAX_TEXT = 2_000_000;
/** Output runs into one block up to this size, then a new block starts. */
const MAX_BLOCK = 64_000;

export class TranscriptView {
  /** `loadPage(after, limit)` fetches a transcript page (the API's shape). */
  constructor({ loadPage, onError }) {
    this.loadPage = loadPage;
    this.onError = onError;
    this.firstSequence = 0;
    this.lastSequence = 0;
    this.textLength = 0;
    /** Stream → the AnsiParser that has read its output so far. */
    this.parsers = new Map();
    // Set when this page asked for the stop: only then is a live stop "on request"
    // (an idle timeout or a runtime's shutdown stops a worker too, and the live
    // status event does not say which; the runtime's transcript note does).
    this.stopAsked = false;
    // Set once the runtime refused PAGE items in one page (`limit_too_large`).
    this.pageLimitRefused = false;
    this.earlier = h('button', {
      type: 'button',
      class: 'button small quiet load-earlier',
      text: 'Load earlier output',
      hidden: true,
      on: { click: () => this.loadEarlier() },
    });
    this.list = h('div', {
      class: 'transcript-list',
      role: 'log',
      'aria-label': 'Transcript',
      'aria-live': 'polite',
    });
    this.empty = h('p', { class: 'transcript-empty muted', text: 'Nothing here yet.' });
    this.element = h(
      'div',
      { class: 'transcript', tabindex: '0', 'aria-label': 'Transcript, scrollable' },
      this.earlier,
      this.empty,
      this.list,
    );
  }

  /** Replaces everything with a snapshot's items. */
  snapshot(items) {
    this.list.replaceChildren();
    this.textLength = 0;
    this.parsers = new Map();
    this.firstSequence = items.length ? items[0].sequence : 0;
    this.lastSequence = 0;
    for (const item of items) this.appendItem(item);
    this.lastSequence = items.length ? items[items.length - 1].sequence : 0;
    this.updateChrome();
    this.scrollToEnd();
  }

  /** Notes that this page asked for the worker to stop. */
  stopRequested() {
    this.stopAsked = true;
  }

  /** Adds a live event; returns false for a duplicate that was dropped. */
  event(event) {
    const stick = this.atEnd();
    switch (event.kind) {
      case 'input':
      case 'output':
        if (event.sequence <= this.lastSequence) return false;
        this.appendItem(event);
        this.lastSequence = event.sequence;
        if (!this.firstSequence) this.firstSequence = event.sequence;
        break;
      case 'status':
        this.appendNote(statusNote(event, this.stopAsked), `note-${event.status}`);
        break;
      case 'interrupted':
        this.appendNote('interrupted', 'note-interrupted');
        break;
      case 'exited':
        this.appendNote(`exited (${describeExit(event) || 'no code'})`, 'note-exited');
        break;
      case 'diagnostic':
        this.appendNote(`${event.code}: ${event.message}`, `note-diagnostic severity-${event.severity}`);
        break;
      default:
        return false;
    }
    this.trim();
    this.updateChrome();
    if (stick) this.scrollToEnd();
    return true;
  }

  /** A note of the console's own (not from the worker), such as a reset. */
  localNote(text) {
    const stick = this.atEnd();
    this.appendNote(text, 'note-local');
    this.updateChrome();
    if (stick) this.scrollToEnd();
  }

  appendItem(item) {
    const runs = item.kind === 'output' ? parserFor(this.parsers, item.stream).push(item.text) : null;
    const last = this.list.lastElementChild;
    if (item.kind === 'output' && last && canJoin(last, item)) {
      join(last, item, runs);
    } else {
      const block = renderItem(item, runs);
      if (!block) return;
      this.list.append(block);
    }
    this.textLength += shownLength(item, runs);
  }

  appendNote(text, className) {
    if (!text) return;
    this.list.append(
      h('div', { class: `entry entry-system ${className}` }, h('span', { class: 'text', text })),
    );
  }

  /** Drops the oldest blocks once the page holds too much text. */
  trim() {
    while (this.textLength > MAX_TEXT && this.list.children.length > 1) {
      const first = this.list.firstElementChild;
      this.textLength -= first.textContent.length;
      first.remove();
      const next = this.list.querySelector('[data-seq]');
      this.firstSequence = next ? Number(next.dataset.seq) : this.lastSequence + 1;
    }
  }

  async loadEarlier() {
    if (this.firstSequence <= 1 || this.earlier.disabled) return;
    const end = this.firstSequence;
    const from = Math.max(0, end - 1 - PAGE);
    this.earlier.disabled = true;
    try {
      const items = await this.readBetween(from, end);
      const before = this.element.scrollHeight;
      const fragment = document.createDocumentFragment();
      // Read from the start of the page: what was in force before it is not known.
      const parsers = new Map();
      let previous = null;
      for (const item of items) {
        const runs = item.kind === 'output' ? parserFor(parsers, item.stream).push(item.text) : null;
        if (item.kind === 'output' && previous && canJoin(previous, item)) {
          join(previous, item, runs);
        } else {
          previous = renderItem(item, runs);
          if (previous) fragment.append(previous);
        }
        this.textLength += shownLength(item, runs);
      }
      this.list.prepend(fragment);
      this.firstSequence = items.length ? items[0].sequence : 1;
      this.element.scrollTop += this.element.scrollHeight - before;
    } catch (error) {
      this.onError?.(error, 'loading earlier transcript items');
    } finally {
      this.earlier.disabled = false;
      this.updateChrome();
    }
  }

  /**
   * The items after `from` and before `end`, in order. A page may hold fewer items
   * than asked: the runtime ends a page at a size in bytes (a few MiB of JSON, soon
   * reached by output full of control bytes) and refuses a `limit` over its own
   * maximum (`limit_too_large`; then pages of its default size are read). So pages
   * are read on from each `next_after` until they reach `end`, and nothing between
   * is skipped.
   */
  async readBetween(from, end) {
    const items = [];
    let after = from;
    while (after < end - 1) {
      let page;
      try {
        page = await this.loadPage(after, this.pageLimitRefused ? null : end - 1 - after);
      } catch (error) {
        if (error?.code !== 'limit_too_large' || this.pageLimitRefused) throw error;
        this.pageLimitRefused = true;
        continue;
      }
      const fresh = (page.items ?? []).filter((i) => i.sequence > after && i.sequence < end);
      items.push(...fresh);
      const next = fresh.length ? fresh[fresh.length - 1].sequence : null;
      if (next === null || page.next_after === null || page.next_after === undefined) break;
      after = next;
    }
    return items;
  }

  updateChrome() {
    const hidden = this.firstSequence - 1;
    this.earlier.hidden = hidden <= 0;
    this.earlier.textContent = `Load earlier items (${hidden})`;
    this.empty.hidden = this.list.children.length > 0;
  }

  atEnd() {
    const el = this.element;
    return el.scrollHeight - el.scrollTop - el.clientHeight < 48;
  }

  scrollToEnd() {
    this.element.scrollTop = this.element.scrollHeight;
  }
}

/** The parser of `stream`'s output in `parsers`, made on first use. */
function parserFor(parsers, stream) {
  let parser = parsers.get(stream);
  if (!parser) {
    parser = new AnsiParser();
    parsers.set(stream, parser);
  }
  return parser;
}

/** How much text an item puts on the page (an output's without its escape sequences). */
function shownLength(item, runs) {
  return runs ? runs.reduce((n, [text]) => n + text.length, 0) : (item.text ?? '').length;
}

/**
 * Appends an output's runs (AnsiParser's) to `pre`: plain text as text nodes, styled
 * text in spans whose classes the parser chose. Worker text only ever becomes text
 * nodes, never markup. Returns `pre`.
 */
function appendRuns(pre, runs) {
  if (runs.length === 1 && !runs[0][1]) {
    pre.append(runs[0][0]);
    return pre;
  }
  const fragment = document.createDocumentFragment();
  for (const [text, classes] of runs) {
    if (classes) {
      const span = document.createElement('span');
      span.className = classes;
      span.textContent = text;
      fragment.append(span);
    } else {
      fragment.append(text);
    }
  }
  pre.append(fragment);
  return pre;
}

/** A transcript item or input/output event as a block (`runs`: an output's text, read). */
function renderItem(item, runs) {
  const seq = String(item.sequence);
  const at = item.at ? localTime(item.at) : undefined;
  switch (item.kind) {
    case 'input':
      return h(
        'div',
        { class: 'entry entry-input', dataset: { seq }, title: at },
        h('span', { class: 'gutter', 'aria-hidden': 'true', text: '›' }),
        h('span', { class: 'visually-hidden', text: 'Input: ' }),
        h('pre', { text: item.text.replace(/\n$/, '') }),
      );
    case 'output':
      return h(
        'div',
        {
          class: `entry entry-output stream-${item.stream}`,
          dataset: { seq, seqLast: seq, stream: item.stream, length: String(item.text.length) },
          title: at,
        },
        item.stream === 'stderr' ? h('span', { class: 'visually-hidden', text: 'Error output: ' }) : null,
        appendRuns(h('pre', {}), runs),
      );
    case 'system':
      return h(
        'div',
        { class: `entry entry-system note-${item.note}`, dataset: { seq }, title: at },
        h('span', { class: 'text', text: item.text || item.note }),
      );
    default:
      return null;
  }
}

/** True when `pre`'s text ends with a line feed (or it has none). */
function endsLine(pre) {
  const node = pre.lastChild;
  return !node || node.textContent.endsWith('\n');
}

function canJoin(block, item) {
  return (
    block.classList.contains('entry-output') &&
    block.dataset.stream === item.stream &&
    Number(block.dataset.length ?? 0) < MAX_BLOCK
  );
}

/**
 * Appends an output item to a block of the same stream. Where the block's text ends a
 * line, the item starts a `pre` of its own: the page then lays out only the new text,
 * not the whole block again (which, with thousands of coloured spans in a block, cost
 * more than everything else while output streamed in).
 */
function join(block, item, runs) {
  const last = block.lastElementChild;
  if (runs.length && endsLine(last)) block.append(appendRuns(h('pre', {}), runs));
  else appendRuns(last, runs);
  block.dataset.seqLast = String(item.sequence);
  block.dataset.length = String(Number(block.dataset.length ?? 0) + item.text.length);
}

function statusNote(event, stopAsked) {
  switch (event.status) {
    case 'running':
      return 'started';
    case 'stopped':
      return stopAsked ? 'stopped on request' : 'stopped';
    case 'failed':
      return 'could not start';
    case 'lost':
      return 'lost: the runtime restarted while it ran';
    default:
      return '';
  }
}
