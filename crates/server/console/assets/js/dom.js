// Small DOM helpers. Elements are built node by node, never from HTML strings, so data from
// the server is always text and never markup.

/** `h('button', {class: 'x', onclick: fn}, 'Save')` */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  let value;
  for (const [name, v] of Object.entries(attrs ?? {})) {
    if (v == null || v === false) continue;
    if (name === 'class') el.className = v;
    else if (name === 'value') value = v;
    else if (name.startsWith('on') && typeof v === 'function') el.addEventListener(name.slice(2), v);
    else if (v === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(v));
  }
  append(el, children);
  // A select's value can only be set once its options are in it.
  if (value !== undefined) el.value = value;
  return el;
}

export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, v] of Object.entries(attrs)) {
    if (v != null) el.setAttribute(name, String(v));
  }
  append(el, children);
  return el;
}

let nextId = 0;
/** A document-unique id for label/control pairs. */
export function uid(prefix = 'f') {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** A labelled form control. */
export function field(label, control, hint) {
  const id = control.id || uid('field');
  control.id = id;
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) control.setAttribute('aria-describedby', hintId);
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    control,
    hint ? h('small', { id: hintId, class: 'muted' }, hint) : null);
}

export function button(label, onclick, { kind = '', type = 'button', ...rest } = {}) {
  return h('button', { type, class: `button ${kind ? `button-${kind}` : ''}`.trim(), onclick, ...rest }, label);
}

/** A link inside the console (the router intercepts it). */
export function link(path, label, attrs = {}) {
  return h('a', { href: consoleUrl(path), ...attrs }, label);
}

export function consoleUrl(path) {
  return `/console/${path.replace(/^\/+/, '')}`;
}

/** Path segments, each percent-encoded: `seg('services', name)` → `services/na%2Fme`. */
export function seg(...parts) {
  return parts.map((p) => encodeURIComponent(String(p))).join('/');
}

export function notice(kind, text, attrs = {}) {
  const role = kind === 'error' ? 'alert' : 'status';
  return h('div', { class: `notice notice-${kind}`, role, ...attrs }, text);
}

/** Shows `err` (an ApiError or any Error) in `where`, replacing what was there. */
export function showError(where, err, prefix = '') {
  where.replaceChildren(notice('error', `${prefix}${describeError(err)}`));
  where.hidden = false;
}

export function describeError(err) {
  if (err && err.status) {
    const code = err.code != null ? ` (${err.code})` : '';
    return `${err.message}${code} — HTTP ${err.status}`;
  }
  return err?.message ?? String(err);
}

/**
 * A table: `columns` are `{label, render(row) → Node|string, class?}`.
 * `caption` names it for assistive technology.
 */
export function table(columns, rows, { caption, empty = 'Nothing here yet.', testid } = {}) {
  const body = rows.length
    ? rows.map((row) => h('tr', {}, columns.map((c) => h('td', { class: c.class ?? null }, c.render(row)))))
    : [h('tr', {}, h('td', { class: 'empty', colspan: columns.length }, empty))];
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'table', 'data-testid': testid ?? null },
      caption ? h('caption', { class: 'visually-hidden' }, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.class ?? null }, c.label)))),
      h('tbody', {}, body)));
}

/** `2026-11-01T10:00:00Z` → local date and time; anything else as given. */
export function when(value) {
  if (value == null || value === '') return '—';
  const date = typeof value === 'number' ? new Date(value * (value < 1e12 ? 1000 : 1)) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return h('time', { datetime: date.toISOString(), title: date.toISOString() }, date.toLocaleString());
}

export function code(text) {
  return h('code', {}, text ?? '—');
}

/** One-line JSON, cut at `max` characters. */
export function compactJson(value, max = 120) {
  const text = value === undefined ? '' : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function prettyJson(value) {
  return JSON.stringify(value, null, 2);
}

/** A page heading with optional breadcrumbs (`[[path, label], …, label]`) and actions. */
export function header(title, { crumbs = [], actions = [], description } = {}) {
  document.title = `${title} · Ferrosync console`;
  const trail = crumbs.length
    ? h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      h('ol', {}, crumbs.map((c) => h('li', {}, Array.isArray(c) ? link(c[0], c[1]) : h('span', { 'aria-current': 'page' }, c)))))
    : null;
  return h('header', { class: 'page-header' },
    trail,
    h('div', { class: 'page-title-row' }, h('h1', {}, title), h('div', { class: 'actions' }, actions)),
    description ? h('p', { class: 'muted' }, description) : null);
}

export function section(title, ...children) {
  const id = uid('section');
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

/** A key/value list of an object's fields. */
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}
