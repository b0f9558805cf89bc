// Building DOM without HTML strings: every text goes through textContent, so nothing
// the backend says can become markup.

/**
 * Creates an element. `props`: `class`, `text`, `on` ({event: handler}), `dataset`,
 * DOM properties (`value`, `checked`, `disabled`, `hidden`) and other attributes.
 * Children: nodes, strings, arrays of them; null/undefined/false are skipped.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'on') {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'value' || key === 'checked' || key === 'disabled' || key === 'hidden') {
      el[key] = value;
    } else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

/** Appends children (nodes, strings, nested arrays) to `el`. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces everything inside `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A `<select>` with a visible label, built from `[value, text]` pairs. */
export function labelledSelect({ id, label, options, value, onChange, className }) {
  const select = h(
    'select',
    { id, on: onChange ? { change: () => onChange(select.value) } : undefined },
    options.map(([v, text]) => h('option', { value: v, text })),
  );
  select.value = value ?? options[0]?.[0] ?? '';
  return h('div', { class: `field ${className ?? ''}` }, h('label', { for: id, text: label }), select);
}

/** A small coloured badge for a status or state. */
export function badge(kind, text, extraClass) {
  return h('span', { class: `badge badge-${kind} ${extraClass ?? ''}`, text: text ?? kind });
}

/**
 * Runs `render()` (which rebuilds part of `container`) and gives focus back to the
 * element with the same `data-focus-key`, so a periodic refresh never steals the
 * keyboard user's place.
 */
export function preservingFocus(container, render) {
  const active = document.activeElement;
  const key = container.contains(active) ? active?.closest('[data-focus-key]')?.dataset.focusKey : null;
  render();
  if (key) {
    const again = container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
    if (again && !again.disabled) again.focus({ preventScroll: true });
  }
}
