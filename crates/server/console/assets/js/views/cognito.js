// Cognito: identity pools, their identities, an identity's datasets and a dataset's records,
// read through the native API's admin endpoints (the Cognito faces take SigV4 only).

import { api } from '../api.js';
import { code, facts, h, header, link, section, seg, table, when } from '../dom.js';
import { pager } from './paging.js';

const ADMIN = '/admin/cognito/pools';

export async function view(el, parts) {
  const [pool, identity, dataset] = parts;
  if (!pool) return pools(el);
  if (!identity) return identities(el, pool);
  if (!dataset) return datasets(el, pool, identity);
  return records(el, pool, identity, dataset);
}

async function pools(el) {
  el.append(header('Cognito', {
    description: 'Identity pools of the Cognito Identity and Cognito Sync faces. Each pool keeps its datasets in a service of its own.',
  }));
  const listing = h('div');
  el.append(section('Identity pools', listing));
  await pager(listing, (q) => api.get(ADMIN, q), (rows) => table([
    { label: 'Name', render: (p) => link(seg('cognito', p.id), p.name) },
    { label: 'Pool id', render: (p) => code(p.id) },
    { label: 'Unauthenticated', render: (p) => (p.allow_unauthenticated_identities ? 'allowed' : 'no') },
    { label: 'Login providers', render: (p) => Object.keys(p.supported_login_providers).join(', ') || '—' },
    { label: 'Developer provider', render: (p) => p.developer_provider_name ?? '—' },
    { label: 'Created', render: (p) => when(p.date_created) },
  ], rows, { caption: 'Identity pools', testid: 'cognito-pools', empty: 'No identity pools.' }));
}

function crumbs(pool, identity, last) {
  const trail = [['cognito', 'Cognito']];
  if (identity) trail.push([seg('cognito', pool), pool]);
  if (identity && last !== identity) trail.push([seg('cognito', pool, identity), identity]);
  trail.push(last);
  return trail;
}

async function identities(el, poolId) {
  const pool = await api.get(`${ADMIN}/${encodeURIComponent(poolId)}`);
  el.append(header(pool.name, { crumbs: crumbs(poolId, null, pool.name) }));
  el.append(section('Pool', facts([
    ['Pool id', code(pool.id)],
    ['Datasets service', link(seg('services', pool.service_sid), code(pool.service_sid))],
    ['Unauthenticated identities', pool.allow_unauthenticated_identities ? 'allowed' : 'not allowed'],
    ['Login providers', Object.entries(pool.supported_login_providers).map(([k, v]) => `${k} (${v})`).join(', ') || '—'],
    ['Developer provider', pool.developer_provider_name ?? '—'],
    ['Created', when(pool.date_created)],
  ])));
  const listing = h('div');
  el.append(section('Identities', listing));
  await pager(listing, (q) => api.get(`${ADMIN}/${encodeURIComponent(poolId)}/identities`, q), (rows) => table([
    { label: 'Identity id', render: (i) => link(seg('cognito', poolId, i.id), code(i.id)) },
    { label: 'Logins', render: (i) => i.logins.map((l) => `${l.provider}: ${l.user}`).join(', ') || 'unauthenticated' },
    { label: 'State', render: (i) => (i.disabled ? `disabled${i.merged_into ? ` (merged into ${i.merged_into})` : ''}` : 'active') },
    { label: 'Created', render: (i) => when(i.date_created) },
    { label: 'Updated', render: (i) => when(i.date_updated) },
  ], rows, { caption: 'Identities', testid: 'cognito-identities', empty: 'No identities in this pool.' }));
}

async function datasets(el, poolId, identity) {
  el.append(header(identity, { crumbs: crumbs(poolId, identity, identity) }));
  const listing = h('div');
  el.append(section('Datasets', listing));
  const base = `${ADMIN}/${encodeURIComponent(poolId)}/identities/${encodeURIComponent(identity)}/datasets`;
  await pager(listing, (q) => api.get(base, q), (rows) => table([
    { label: 'Name', render: (d) => link(seg('cognito', poolId, identity, d.name), d.name) },
    { label: 'Records', render: (d) => String(d.num_records), class: 'num' },
    { label: 'Bytes', render: (d) => String(d.data_storage), class: 'num' },
    { label: 'Sync count', render: (d) => String(d.sync_count), class: 'num' },
    { label: 'Last modified by', render: (d) => d.last_modified_by },
    { label: 'Modified', render: (d) => when(d.date_modified) },
  ], rows, { caption: 'Datasets', testid: 'cognito-datasets', empty: 'This identity has no datasets.' }));
}

async function records(el, poolId, identity, dataset) {
  el.append(header(dataset, { crumbs: crumbs(poolId, identity, dataset) }));
  const listing = h('div');
  el.append(section('Records', h('p', { class: 'muted' }, 'Removed records stay as tombstones (no value) for devices that synced them.'), listing));
  const base = `${ADMIN}/${encodeURIComponent(poolId)}/identities/${encodeURIComponent(identity)}/datasets/${encodeURIComponent(dataset)}/records`;
  await pager(listing, (q) => api.get(base, q), (rows) => table([
    { label: 'Key', render: (r) => code(r.key) },
    { label: 'Value', render: (r) => (r.deleted ? h('span', { class: 'badge' }, 'removed') : code(r.value)), class: 'data' },
    { label: 'Sync count', render: (r) => String(r.sync_count), class: 'num' },
    { label: 'Modified by', render: (r) => r.last_modified_by },
    { label: 'Modified', render: (r) => when(r.last_modified) },
    { label: 'On the device', render: (r) => when(r.device_last_modified) },
  ], rows, { caption: 'Records', testid: 'cognito-records', empty: 'No records.' }));
}
