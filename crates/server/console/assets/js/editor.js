// Editing a value that has a revision (a document's data, a list or map item): saves are
// conditional (If-Match: the revision loaded), and a save the server refuses with 412 shows
// both versions side by side; the user's edit stays in the editor until they choose.

import { button, describeError, h, notice, prettyJson, uid } from './dom.js';
import { jsonEditor } from './json.js';

/**
 * `initial`: `{data, revision}`. `load()` → the server's current `{data, revision}`;
 * `save(data, revision)` → the saved `{data, revision}` (rejects with an ApiError, 412 on a
 * stale revision). Returns the element.
 */
export function revisionedEditor({ label, testid, initial, load, save, onSaved = () => {} }) {
  let revision = initial.revision;
  const editor = jsonEditor({ label, value: initial.data ?? {}, testid: `${testid}-json` });
  const revisionLabel = h('span', { class: 'badge', 'data-testid': `${testid}-revision` });
  const saveButton = button('Save', () => attempt(), { kind: 'primary' });
  const reloadButton = button('Reload from server', () => reload());
  const status = h('div', { class: 'editor-status' });
  const conflict = h('div', { hidden: true });
  let conflictMine = null;

  function showRevision() {
    revisionLabel.textContent = `Revision ${revision}`;
  }
  showRevision();

  editor.onchange(() => {
    saveButton.disabled = !editor.valid;
    // The comparison shows what "Overwrite with mine" would write.
    if (conflictMine && editor.valid) conflictMine.textContent = prettyJson(editor.value);
  });

  async function attempt(expected = revision) {
    if (!editor.valid) return;
    const mine = editor.value;
    saveButton.disabled = true;
    status.replaceChildren();
    try {
      const saved = await save(mine, expected);
      revision = saved.revision;
      showRevision();
      hideConflict();
      status.replaceChildren(notice('success', `Saved as revision ${revision}.`));
      onSaved(saved);
    } catch (err) {
      if (err.status === 412) {
        await showConflict(mine);
      } else {
        status.replaceChildren(notice('error', `Not saved: ${describeError(err)}`));
      }
    } finally {
      saveButton.disabled = !editor.valid;
    }
  }

  async function reload() {
    status.replaceChildren();
    try {
      const current = await load();
      revision = current.revision;
      editor.setValue(current.data ?? {});
      showRevision();
      hideConflict();
      status.replaceChildren(notice('info', `Loaded revision ${revision} from the server.`));
    } catch (err) {
      status.replaceChildren(notice('error', describeError(err)));
    }
  }

  function hideConflict() {
    conflict.hidden = true;
    conflict.replaceChildren();
    conflictMine = null;
  }

  async function showConflict(mine) {
    let theirs;
    try {
      theirs = await load();
    } catch (err) {
      status.replaceChildren(notice('error', `Not saved: it changed on the server, and reading it back failed `
        + `(${describeError(err)}). Your edit is still in the editor.`));
      return;
    }
    const titleId = uid('conflict');
    conflictMine = h('pre', { class: 'json', 'data-testid': 'conflict-mine', tabindex: '0' }, prettyJson(mine));
    conflict.replaceChildren(h('section', { class: 'conflict', role: 'alert', 'aria-labelledby': titleId, 'data-testid': 'conflict' },
      h('h3', { id: titleId }, 'Conflict: this changed on the server since you loaded it'),
      h('p', {}, `You edited revision ${revision}; the server now has revision ${theirs.revision}. `
        + 'Nothing was saved. Keep your edit (it replaces theirs) or take theirs (your edit is dropped).'),
      h('div', { class: 'conflict-grid' },
        h('figure', {},
          h('figcaption', {}, `Server's current data (revision ${theirs.revision})`),
          h('pre', { class: 'json', 'data-testid': 'conflict-theirs', tabindex: '0' }, prettyJson(theirs.data ?? null))),
        h('figure', {},
          h('figcaption', {}, 'Your unsaved edit'),
          conflictMine)),
      h('div', { class: 'actions' },
        button('Overwrite with mine', () => attempt(theirs.revision), { kind: 'danger' }),
        button('Take theirs', () => {
          revision = theirs.revision;
          editor.setValue(theirs.data ?? {});
          showRevision();
          hideConflict();
          status.replaceChildren(notice('info', `Took the server's revision ${revision}; your edit was dropped.`));
        }))));
    conflict.hidden = false;
    status.replaceChildren();
  }

  return h('div', { class: 'editor', 'data-testid': testid },
    h('div', { class: 'editor-bar' }, revisionLabel, h('div', { class: 'actions' }, reloadButton, saveButton)),
    editor.element,
    conflict,
    status);
}

/** A button that asks again inline before it acts. */
export function confirmButton(label, question, action) {
  const wrap = h('span', { class: 'confirm' });
  const first = button(label, () => {
    const yes = button(`Yes, ${label.toLowerCase()}`, async () => {
      yes.disabled = true;
      try {
        await action();
      } finally {
        wrap.replaceChildren(first);
      }
    }, { kind: 'danger' });
    const no = button('Cancel', () => wrap.replaceChildren(first));
    wrap.replaceChildren(h('span', { class: 'confirm-question' }, question), yes, no);
    no.focus();
  });
  wrap.append(first);
  return wrap;
}
