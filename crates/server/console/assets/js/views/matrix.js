// Matrix: the homeserver's users and rooms, read through the native API's admin endpoints
// (the client-server API shows them only to their own users).

import { api } from '../api.js';
import { code, h, header, link, section, seg, table, when } from '../dom.js';
import { pager } from './paging.js';

export async function view(el, tab) {
  el.append(header('Matrix', {
    description: 'Users and rooms of the Matrix face. Rooms are objects of the matrix service, so the inspector follows them too.',
    actions: [link(seg('inspector', 'matrix'), 'Inspect the matrix service', { class: 'button' })],
  }));
  el.append(h('nav', { class: 'tabs', 'aria-label': 'Matrix' },
    link('matrix/users', 'Users', { 'aria-current': tab === 'users' ? 'page' : null }),
    link('matrix/rooms', 'Rooms', { 'aria-current': tab === 'rooms' ? 'page' : null })));
  const listing = h('div');
  if (tab === 'rooms') {
    el.append(section('Rooms', listing));
    await pager(listing, (q) => api.get('/admin/matrix/rooms', q), (rows) => table([
      { label: 'Name', render: (r) => r.name ?? '—' },
      { label: 'Room id', render: (r) => code(r.room_id) },
      { label: 'Alias', render: (r) => (r.canonical_alias ? code(r.canonical_alias) : '—') },
      { label: 'Topic', render: (r) => r.topic ?? '—' },
      { label: 'Joined', render: (r) => String(r.num_joined_members), class: 'num' },
      { label: 'Join rule', render: (r) => r.join_rule },
      { label: 'Directory', render: (r) => (r.published ? 'published' : '—') },
      {
        label: 'Objects',
        render: (r) => h('span', {},
          link(seg('services', 'matrix', 'lists', `${r.room_id}/timeline`), 'timeline'), ' · ',
          link(seg('services', 'matrix', 'maps', `${r.room_id}/state`), 'state')),
      },
    ], rows, { caption: 'Rooms', testid: 'matrix-rooms', empty: 'No rooms.' }));
  } else {
    el.append(section('Users', listing));
    await pager(listing, (q) => api.get('/admin/matrix/users', q), (rows) => table([
      { label: 'User id', render: (u) => code(u.user_id) },
      { label: 'Display name', render: (u) => u.display_name ?? '—' },
      { label: 'Password login', render: (u) => (u.has_password ? 'yes' : 'no') },
      { label: 'State', render: (u) => (u.deactivated ? 'deactivated' : 'active') },
      { label: 'Registered', render: (u) => when(u.date_created) },
    ], rows, { caption: 'Users', testid: 'matrix-users', empty: 'No users have registered.' }));
  }
}
