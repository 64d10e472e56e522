// Services: the list (paged) and a form to create one.

import { api } from '../api.js';
import { button, code, field, h, header, link, section, seg, showError, table, when } from '../dom.js';
import { navigate } from '../router.js';
import { pager } from './paging.js';

export async function list(el) {
  el.append(header('Services', {
    description: 'A service groups documents, lists, maps and streams, and has its own change log.',
  }));

  const name = h('input', { name: 'unique_name', autocomplete: 'off', spellcheck: 'false', maxlength: 320 });
  const friendly = h('input', { name: 'friendly_name', autocomplete: 'off' });
  const acl = h('input', { type: 'checkbox', name: 'acl_enabled' });
  const problem = h('div', { hidden: true });
  const form = h('form', { class: 'inline-form', 'aria-label': 'Create a service' },
    field('Unique name', name, 'Optional; SIDs work wherever names do.'),
    field('Friendly name', friendly),
    h('div', { class: 'field field-check' }, h('label', {}, acl, ' Per-object permissions (ACL)')),
    h('div', { class: 'field field-submit' }, button('Create service', null, { kind: 'primary', type: 'submit' })),
    problem);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    problem.hidden = true;
    try {
      const body = { acl_enabled: acl.checked };
      if (name.value.trim()) body.unique_name = name.value.trim();
      if (friendly.value.trim()) body.friendly_name = friendly.value.trim();
      const created = await api.post('/services', body);
      navigate(seg('services', created.unique_name ?? created.sid));
    } catch (err) {
      showError(problem, err, 'Cannot create the service: ');
    }
  });

  const listing = h('div');
  el.append(section('New service', form), section('All services', listing));

  await pager(listing, (query) => api.get('/services', query), (items) => table([
    { label: 'Unique name', render: (s) => link(seg('services', s.unique_name ?? s.sid), s.unique_name ?? '(none)') },
    { label: 'SID', render: (s) => link(seg('services', s.sid), code(s.sid)) },
    { label: 'Friendly name', render: (s) => s.friendly_name ?? '—' },
    { label: 'ACL', render: (s) => (s.acl_enabled ? 'on' : 'off') },
    { label: 'Updated', render: (s) => when(s.date_updated) },
  ], items, { caption: 'Services', testid: 'services-table', empty: 'No services yet: create one above.' }));
}

/** The services for a picker, by unique name where they have one. */
export async function options() {
  const page = await api.get('/services', { page_size: 1000 });
  return page.items.map((s) => ({ value: s.unique_name ?? s.sid, label: s.unique_name ? `${s.unique_name} (${s.sid})` : s.sid }));
}
