// Building the page from data without HTML strings: text is always text,
// so a video title can never become markup.

/** An element: `h('a', {href: '#/'}, 'text', child)`; `on*` attributes are listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/**
 * A table: `columns` are `{label, value: row => text|Node, raw: row => number, numeric}`;
 * a numeric cell carries its exact value in `data-value`.
 */
export function table(caption, columns, rows, attrs = {}) {
  return h('table', attrs,
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.numeric ? 'num' : null }, c.header || c.label)))),
    h('tbody', {}, rows.map((row) => h('tr', {}, columns.map((c, i) => {
      const cell = c.value(row);
      const tag = i === 0 ? 'th' : 'td';
      return h(tag, {
        scope: i === 0 ? 'row' : null,
        class: c.numeric ? 'num' : null,
        'data-column': c.key,
        'data-value': c.raw ? c.raw(row) : null,
      }, cell);
    })))),
  );
}

/** A labelled form control. */
export function field(label, control) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), control);
}

/** A polite status line for results and errors. */
export function status(text, kind = 'info') {
  return h('p', { class: `status ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}
