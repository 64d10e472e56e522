// A service's documents, lists, maps and streams: listings, creation, a document's JSON
// editor, list and map items (paged, editable) and publishing to streams.

import { api } from '../api.js';
import {
  button, code, compactJson, describeError, facts, field, h, header, link, notice, section, seg, showError, table,
  when,
} from '../dom.js';
import { confirmButton, revisionedEditor } from '../editor.js';
import { jsonEditor } from '../json.js';
import { navigate } from '../router.js';
import { pager } from './paging.js';

const COLLECTIONS = [
  ['documents', 'Documents', 'document'],
  ['lists', 'Lists', 'list'],
  ['maps', 'Maps', 'map'],
  ['streams', 'Streams', 'stream'],
];

function singular(collection) {
  return COLLECTIONS.find(([c]) => c === collection)?.[2] ?? collection;
}

function serviceHeader(el, service, svc, current, extraCrumb) {
  const crumbs = [['services', 'Services']];
  if (extraCrumb) crumbs.push([seg('services', service, current), svc.unique_name ?? svc.sid], extraCrumb);
  else crumbs.push(svc.unique_name ?? svc.sid);
  el.append(header(extraCrumb ?? (svc.unique_name ?? svc.sid), {
    crumbs,
    actions: [
      link(`inspector/${encodeURIComponent(service)}`, 'Open live inspector', { class: 'button' }),
    ],
    description: extraCrumb ? null : `Service ${svc.sid}${svc.friendly_name ? ` — ${svc.friendly_name}` : ''}`,
  }));
  el.append(h('nav', { class: 'tabs', 'aria-label': 'Object kinds' },
    COLLECTIONS.map(([c, label]) => link(seg('services', service, c), label,
      { 'aria-current': c === current ? 'page' : null }))));
}

export async function collection(el, service, coll) {
  if (!COLLECTIONS.some(([c]) => c === coll)) {
    el.append(notice('error', `Unknown collection '${coll}': documents, lists, maps or streams.`));
    return;
  }
  const svc = await api.get(`/${seg('services', service)}`);
  serviceHeader(el, service, svc, coll);
  const kind = singular(coll);

  // Creating one: a unique name (optional) and, for documents, the first data.
  const name = h('input', { autocomplete: 'off', spellcheck: 'false', maxlength: 320 });
  const ttl = h('input', { type: 'number', min: 0, inputmode: 'numeric' });
  const data = kind === 'document' ? jsonEditor({ label: 'Data', value: {}, rows: 6, testid: 'new-document-json' }) : null;
  const create = button(`Create ${kind}`, null, { kind: 'primary', type: 'submit' });
  const problem = h('div', { hidden: true });
  data?.onchange(() => { create.disabled = !data.valid; });
  const form = h('form', { class: 'stack-form', 'aria-label': `Create a ${kind}` },
    h('div', { class: 'row' },
      field('Unique name', name, 'Optional: without one the object is known by its SID.'),
      field('TTL (seconds)', ttl, 'Optional: removed this long after the last change.')),
    data?.element, h('div', {}, create), problem);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    problem.hidden = true;
    const body = { mode: 'create_new' };
    if (name.value.trim()) body.unique_name = name.value.trim();
    if (ttl.value !== '') body.ttl = Number(ttl.value);
    if (data) {
      if (!data.valid) return;
      body.data = data.value;
    }
    try {
      const created = await api.post(`/${seg('services', service, coll)}`, body);
      navigate(seg('services', service, coll, created.unique_name ?? created.sid));
    } catch (err) {
      showError(problem, err, `Cannot create the ${kind}: `);
    }
  });

  const listing = h('div');
  el.append(section(`New ${kind}`, form), section(COLLECTIONS.find(([c]) => c === coll)[1], listing));
  await pager(listing, (q) => api.get(`/${seg('services', service, coll)}`, q), (items) => table([
    { label: 'Unique name', render: (o) => link(seg('services', service, coll, o.unique_name ?? o.sid), o.unique_name ?? '(none)') },
    { label: 'SID', render: (o) => link(seg('services', service, coll, o.sid), code(o.sid)) },
    { label: 'Revision', render: (o) => String(o.revision), class: 'num' },
    ...(kind === 'document' ? [{ label: 'Data', render: (o) => code(compactJson(o.data, 80)), class: 'data' }] : []),
    { label: 'Updated', render: (o) => when(o.date_updated) },
    { label: 'Expires', render: (o) => when(o.date_expires) },
  ], items, { caption: `${kind}s`, testid: `${coll}-table`, empty: `No ${kind}s yet.` }));
}

export async function detail(el, service, coll, id) {
  const kind = singular(coll);
  const base = `/${seg('services', service, coll, id)}`;
  const [svc, object] = await Promise.all([api.get(`/${seg('services', service)}`), api.get(base)]);
  const title = object.unique_name ?? object.sid;
  serviceHeader(el, service, svc, coll, title);

  el.append(section(`About this ${kind}`, facts([
    ['SID', code(object.sid)],
    ['Unique name', object.unique_name ?? '—'],
    ['Created', when(object.date_created)],
    ['Created by', object.created_by],
    ['Expires', when(object.date_expires)],
  ]), h('div', { class: 'actions' }, confirmButton(`Delete ${kind}`, `Delete ${title} and everything in it?`, async () => {
    try {
      await api.delete(base);
      navigate(seg('services', service, coll));
    } catch (err) {
      el.append(notice('error', `Cannot delete: ${describeError(err)}`));
    }
  }))));

  if (kind === 'document') {
    el.append(section('Data', revisionedEditor({
      label: 'Document data (JSON)',
      testid: 'document-editor',
      initial: object,
      load: () => api.get(base),
      save: (data, revision) => api.put(base, { data }, revision),
    })));
  } else if (kind === 'stream') {
    el.append(streamPublisher(base));
  } else {
    el.append(items(base, kind));
  }
}

function items(base, kind) {
  const container = h('div', { class: 'stack' });
  const editorSlot = h('div');
  const order = h('select', {}, h('option', { value: 'asc' }, 'Oldest first'), h('option', { value: 'desc' }, 'Newest first'));
  const listing = h('div');
  let current = null;

  function itemId(item) {
    return kind === 'list' ? String(item.index) : item.key;
  }

  function open(item) {
    const path = `${base}/items/${encodeURIComponent(itemId(item))}`;
    const label = kind === 'list' ? `Item ${item.index}` : `Item "${item.key}"`;
    editorSlot.replaceChildren(section(label,
      revisionedEditor({
        label: `${label} data (JSON)`,
        testid: 'item-editor',
        initial: item,
        load: () => api.get(path),
        save: (data, revision) => api.put(path, { data }, revision),
        onSaved: () => current?.reload(),
      }),
      h('div', { class: 'actions' },
        button('Close', () => editorSlot.replaceChildren()),
        confirmButton('Delete item', `Delete ${label.toLowerCase()}?`, async () => {
          try {
            await api.delete(path);
            editorSlot.replaceChildren();
            current?.reload();
          } catch (err) {
            editorSlot.append(notice('error', describeError(err)));
          }
        }))));
    editorSlot.querySelector('textarea')?.focus();
  }

  async function draw() {
    current = await pager(listing, (q) => api.get(`${base}/items`, q), (rows) => table([
      kind === 'list'
        ? { label: 'Index', render: (i) => String(i.index), class: 'num' }
        : { label: 'Key', render: (i) => code(i.key) },
      { label: 'Data', render: (i) => code(compactJson(i.data)), class: 'data' },
      { label: 'Revision', render: (i) => String(i.revision), class: 'num' },
      { label: 'Updated', render: (i) => when(i.date_updated) },
      { label: 'Actions', render: (i) => button('Edit', () => open(i), { kind: 'small', 'aria-label': `Edit item ${itemId(i)}` }) },
    ], rows, { caption: 'Items', testid: 'items-table', empty: 'No items yet.' }), { extra: { order: order.value } });
  }
  order.addEventListener('change', draw);

  // Adding: lists append, maps need a key.
  const key = kind === 'map' ? h('input', { autocomplete: 'off', spellcheck: 'false', required: true, maxlength: 320 }) : null;
  const data = jsonEditor({ label: 'Item data', value: {}, rows: 5, testid: 'new-item-json' });
  const add = button(kind === 'list' ? 'Append item' : 'Add item', null, { kind: 'primary', type: 'submit' });
  data.onchange(() => { add.disabled = !data.valid; });
  const problem = h('div', { hidden: true });
  const form = h('form', { class: 'stack-form', 'aria-label': 'Add an item' },
    key ? field('Key', key) : null, data.element, h('div', {}, add), problem);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    problem.hidden = true;
    if (!data.valid) return;
    const body = kind === 'list' ? { data: data.value } : { key: key.value, data: data.value };
    try {
      await api.post(`${base}/items`, body);
      data.setValue({});
      if (key) key.value = '';
      await draw();
    } catch (err) {
      showError(problem, err, 'Cannot add the item: ');
    }
  });

  container.append(
    section('Items', h('div', { class: 'toolbar' }, field('Order', order)), listing),
    editorSlot,
    section(kind === 'list' ? 'Append an item' : 'Add an item', form));
  draw();
  return container;
}

function streamPublisher(base) {
  const data = jsonEditor({ label: 'Message (JSON, at most 4 KiB)', value: {}, rows: 6, testid: 'stream-message-json' });
  const publish = button('Publish', null, { kind: 'primary', type: 'submit' });
  data.onchange(() => { publish.disabled = !data.valid; });
  const result = h('div');
  const sent = [];
  const log = h('div');
  const form = h('form', { class: 'stack-form', 'aria-label': 'Publish a message' }, data.element, h('div', {}, publish), result);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!data.valid) return;
    try {
      const message = await api.post(`${base}/messages`, { data: data.value });
      sent.unshift({ ...message, at: new Date().toISOString() });
      result.replaceChildren(notice('success', `Published ${message.sid}.`));
      log.replaceChildren(table([
        { label: 'Message SID', render: (m) => code(m.sid) },
        { label: 'Data', render: (m) => code(compactJson(m.data)), class: 'data' },
        { label: 'Sent', render: (m) => when(m.at) },
      ], sent.slice(0, 20), { caption: 'Messages published from this page' }));
    } catch (err) {
      showError(result, err, 'Not published: ');
    }
  });
  return h('div', { class: 'stack' },
    section('Publish a message', h('p', { class: 'muted' },
      'Stream messages are not stored: subscribers receive them as they are published (the live inspector shows them too).'),
    form),
    section('Published from this page', log));
}
