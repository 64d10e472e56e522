// The live event inspector: tails a service's change log by long-poll
// (`GET /services/{s}/changes?since=…&timeout=25`), from now or from the oldest retained event,
// with client-side filters, pause (the position is kept, nothing is lost) and clear.

import { api } from '../api.js';
import { button, code, compactJson, describeError, field, h, header, notice, prettyJson, section, seg, when } from '../dom.js';
import { navigate } from '../router.js';
import { options as serviceOptions } from './services.js';

const EVENT_TYPES = [
  'document_created', 'document_updated', 'document_removed',
  'list_created', 'list_updated', 'list_removed', 'list_item_added', 'list_item_updated', 'list_item_removed',
  'map_created', 'map_updated', 'map_removed', 'map_item_added', 'map_item_updated', 'map_item_removed',
  'stream_created', 'stream_updated', 'stream_removed', 'stream_message_published',
  'permission_updated', 'permission_removed',
];

/** Events kept in the page; older ones are dropped from view (the log still has them). */
const KEEP = 2000;
const POLL_SECONDS = 25;

export async function view(el, service) {
  el.append(header('Live inspector', {
    description: 'Every change to a service as it is written, read from its change log.',
  }));

  const choices = await serviceOptions();
  const picker = h('select', { name: 'service' },
    h('option', { value: '' }, 'Choose a service…'),
    choices.map((o) => h('option', { value: o.value }, o.label)));
  if (service && !choices.some((o) => o.value === service)) picker.append(h('option', { value: service }, service));
  picker.value = service;
  picker.addEventListener('change', () => navigate(picker.value ? `inspector/${encodeURIComponent(picker.value)}` : 'inspector'));

  const start = h('select', { name: 'start' },
    h('option', { value: 'now' }, 'From now'),
    h('option', { value: 'start' }, 'From the start of the log'));
  const objectFilter = h('input', { type: 'search', placeholder: 'SID or unique name', autocomplete: 'off', spellcheck: 'false' });
  const typeFilter = h('select', {}, h('option', { value: '' }, 'Any type'), EVENT_TYPES.map((t) => h('option', { value: t }, t)));
  const identityFilter = h('input', { type: 'search', placeholder: 'e.g. alice or system', autocomplete: 'off', spellcheck: 'false' });

  const status = h('p', { class: 'inspector-status', role: 'status', 'aria-live': 'polite', 'data-testid': 'inspector-status' });
  const startButton = button('Start', () => (running ? stop() : begin()), { kind: 'primary' });
  const pauseButton = button('Pause', () => (paused ? resume() : pause()), { disabled: true });
  const clearButton = button('Clear', () => { events.length = 0; draw(); });
  const rows = h('tbody');
  const problem = h('div');

  el.append(section('Source',
    h('div', { class: 'row' }, field('Service', picker), field('Start', start)),
    h('div', { class: 'actions' }, startButton, pauseButton, clearButton),
    status, problem));
  el.append(section('Filters', h('div', { class: 'row' },
    field('Object', objectFilter), field('Event type', typeFilter), field('Identity', identityFilter))));
  el.append(section('Events', h('div', { class: 'table-wrap' },
    h('table', { class: 'table events', 'data-testid': 'inspector-events' },
      h('caption', { class: 'visually-hidden' }, 'Change-log events, newest first'),
      h('thead', {}, h('tr', {}, ['Seq', 'Time', 'Type', 'Object', 'Item', 'Revision', 'Identity', 'Data']
        .map((t) => h('th', { scope: 'col' }, t)))),
      rows))));

  for (const input of [objectFilter, identityFilter]) input.addEventListener('input', draw);
  typeFilter.addEventListener('change', draw);

  const events = [];
  let running = false;
  let paused = false;
  let token = null;
  let controller = null;
  let received = 0;

  function setStatus(text) {
    status.textContent = text;
  }

  function matches(e) {
    const object = objectFilter.value.trim().toLowerCase();
    const type = typeFilter.value;
    const identity = identityFilter.value.trim().toLowerCase();
    if (type && e.type !== type) return false;
    if (identity && !(e.identity ?? '').toLowerCase().includes(identity)) return false;
    if (object && !(e.object_sid ?? '').toLowerCase().includes(object)
      && !(e.unique_name ?? '').toLowerCase().includes(object)) return false;
    return true;
  }

  function row(e) {
    const item = e.item_key ?? (e.item_index != null ? String(e.item_index) : (e.message_sid ?? ''));
    const details = h('details', {},
      h('summary', {}, code(compactJson(e.data, 60))),
      h('pre', { class: 'json' }, prettyJson(e)));
    return h('tr', { 'data-testid': 'inspector-event', 'data-type': e.type },
      h('td', { class: 'num' }, String(e.seq)),
      h('td', {}, when(e.date)),
      h('td', {}, h('span', { class: `badge badge-${e.type.split('_')[0]}` }, e.type)),
      h('td', {}, e.unique_name ? [e.unique_name, h('br'), h('small', { class: 'muted' }, e.object_sid)] : code(e.object_sid)),
      h('td', {}, item ? code(item) : '—'),
      h('td', { class: 'num' }, String(e.revision)),
      h('td', {}, e.identity),
      h('td', { class: 'data' }, details));
  }

  function draw() {
    const shown = events.filter(matches);
    rows.replaceChildren(...(shown.length
      ? shown.map(row)
      : [h('tr', {}, h('td', { class: 'empty', colspan: 8 }, running ? 'Waiting for events…' : 'No events.'))]));
  }

  function describe() {
    const shown = events.filter(matches).length;
    const where = paused ? 'Paused' : 'Listening';
    setStatus(`${where} on ${picker.value}: ${received} event${received === 1 ? '' : 's'} received, ${shown} shown.`);
  }

  async function poll() {
    const mine = new AbortController();
    controller = mine;
    const svc = picker.value;
    let failures = 0;
    while (running && !paused && controller === mine) {
      const query = { limit: 500 };
      if (token) {
        query.since = token;
        query.timeout = POLL_SECONDS;
      } else if (start.value === 'start') {
        query.from_start = 'true';
      }
      // Without a token and from now, the first call answers at once with the log's head, so
      // the position is fixed as soon as the inspector says it is listening.
      try {
        const batch = await api.get(`/${seg('services', svc, 'changes')}`, query, mine.signal);
        failures = 0;
        if (controller !== mine) return;
        token = batch.next;
        received += batch.events.length;
        for (const e of batch.events) events.unshift(e);
        if (events.length > KEEP) events.length = KEEP;
        problem.replaceChildren();
        if (batch.events.length) draw();
        describe();
      } catch (err) {
        if (mine.signal.aborted || controller !== mine) return;
        if (err.status === 410) {
          // Older than retention: only a fresh start can continue.
          token = null;
          start.value = 'now';
          problem.replaceChildren(notice('error', `The position fell out of the log's retention (${describeError(err)}); continuing from now.`));
          continue;
        }
        failures += 1;
        problem.replaceChildren(notice('error', `Polling failed: ${describeError(err)}. Retrying…`));
        if (err.status === 401 || err.status === 403 || err.status === 404) {
          stop();
          return;
        }
        await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** failures, 15000)));
      }
    }
  }

  function begin() {
    if (!picker.value) {
      problem.replaceChildren(notice('error', 'Choose a service first.'));
      return;
    }
    running = true;
    paused = false;
    token = null;
    received = 0;
    picker.disabled = true;
    start.disabled = true;
    startButton.textContent = 'Stop';
    pauseButton.disabled = false;
    pauseButton.textContent = 'Pause';
    setStatus(`Connecting to ${picker.value}…`);
    draw();
    poll();
  }

  function stop() {
    running = false;
    paused = false;
    controller?.abort();
    controller = null;
    picker.disabled = false;
    start.disabled = false;
    startButton.textContent = 'Start';
    pauseButton.disabled = true;
    pauseButton.textContent = 'Pause';
    setStatus(`Stopped: ${received} event${received === 1 ? '' : 's'} received.`);
  }

  function pause() {
    paused = true;
    controller?.abort();
    controller = null;
    pauseButton.textContent = 'Resume';
    describe();
  }

  function resume() {
    paused = false;
    pauseButton.textContent = 'Pause';
    describe();
    poll();
  }

  draw();
  setStatus(service ? 'Stopped. Press Start to follow the change log.' : 'Choose a service, then press Start.');
  if (service) begin();
  return () => {
    running = false;
    controller?.abort();
  };
}
