// A JSON editor: a monospace textarea validated as the user types. Invalid JSON says where it
// is wrong (line and column) and the owner disables its Save button.

import { h, uid } from './dom.js';

/** Where `text` fails to parse, or null when it is valid JSON. */
export function jsonProblem(text) {
  try {
    JSON.parse(text);
    return null;
  } catch (err) {
    return locate(text, err.message);
  }
}

function locate(text, message) {
  // V8 says "… at position N" (and sometimes "(line L column C)"); other engines say
  // "line L column C". The message's own position wins; else it is counted from the offset.
  const lineCol = /line (\d+) column (\d+)/.exec(message);
  const position = /position (\d+)/.exec(message);
  let line;
  let column;
  if (lineCol) {
    line = Number(lineCol[1]);
    column = Number(lineCol[2]);
  } else if (position) {
    const before = text.slice(0, Number(position[1]));
    line = before.split('\n').length;
    column = before.length - before.lastIndexOf('\n');
  } else if (/end of (JSON )?input|Unexpected end/i.test(message)) {
    const lines = text.split('\n');
    line = lines.length;
    column = lines[lines.length - 1].length + 1;
  }
  const reason = message.replace(/^JSON\.parse: /, '').replace(/\s*\(line \d+ column \d+\)/, '')
    .replace(/ in JSON at position \d+/, '').replace(/ at line \d+ column \d+ of the JSON data/, '');
  return { line, column, reason };
}

/**
 * `jsonEditor({label, value, rows, testid})` → `{element, text, value, valid, setValue,
 * onchange}`. `value` is any JSON value; `text` is what the user typed.
 */
export function jsonEditor({ label, value = {}, rows, testid, hint } = {}) {
  const id = uid('json');
  const initial = JSON.stringify(value, null, 2);
  // Tall enough for what it holds, within bounds; the user can still resize it.
  const height = rows ?? Math.min(Math.max(initial.split('\n').length + 2, 5), 24);
  const statusId = `${id}-status`;
  const area = h('textarea', {
    id, rows: height, class: 'json-input', spellcheck: 'false', autocomplete: 'off', autocapitalize: 'off',
    'aria-describedby': statusId, 'data-testid': testid ?? null,
  });
  area.value = initial;
  const status = h('p', { id: statusId, class: 'json-status', role: 'status', 'aria-live': 'polite' });
  const listeners = [];
  const editor = {
    element: h('div', { class: 'field json-field' },
      h('label', { for: id }, label), hint ? h('small', { class: 'muted' }, hint) : null, area, status),
    textarea: area,
    get text() { return area.value; },
    get valid() { return jsonProblem(area.value) === null; },
    /** The parsed value; only call when `valid`. */
    get value() { return JSON.parse(area.value); },
    setValue(v) {
      area.value = JSON.stringify(v, null, 2);
      check();
    },
    setText(t) {
      area.value = t;
      check();
    },
    onchange(fn) { listeners.push(fn); },
  };
  function check() {
    const problem = jsonProblem(area.value);
    area.setAttribute('aria-invalid', problem ? 'true' : 'false');
    status.classList.toggle('json-status-error', Boolean(problem));
    if (!problem) {
      status.textContent = 'Valid JSON';
    } else if (problem.line) {
      status.textContent = `Invalid JSON at line ${problem.line}, column ${problem.column}: ${problem.reason}`;
    } else {
      status.textContent = `Invalid JSON: ${problem.reason}`;
    }
    for (const fn of listeners) fn(editor);
  }
  area.addEventListener('input', check);
  // Tab indents instead of leaving the field; Escape then Tab still moves focus.
  let escaped = false;
  area.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { escaped = true; return; }
    if (e.key === 'Tab' && !e.shiftKey && !escaped) {
      e.preventDefault();
      area.setRangeText('  ', area.selectionStart, area.selectionEnd, 'end');
      check();
    }
    escaped = false;
  });
  check();
  return editor;
}
