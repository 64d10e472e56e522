// Twilio Proxy: services, their sessions, and a session's participants and interactions, read
// through the Proxy face (`/twilio/proxy/v1`, Twilio's paging with `meta.next_page_url`).

import { proxy } from '../api.js';
import { code, compactJson, facts, h, header, link, section, seg, table, when } from '../dom.js';
import { pager } from './paging.js';

/** Twilio pages → the native shape the pager draws; the next page's URL is the token. */
function twilioPage(key) {
  return (body) => ({ items: body[key] ?? [], meta: { next_page_token: relative(body.meta?.next_page_url) } });
}

function relative(url) {
  if (!url) return undefined;
  const u = new URL(url, location.href);
  return u.pathname + u.search;
}

function fetcher(path) {
  return (q) => proxy.get(q.page_token ?? path, q.page_token ? undefined : { PageSize: q.page_size });
}

export async function view(el, parts) {
  const [service, session] = parts;
  if (!service) return services(el);
  if (!session) return sessions(el, service);
  return sessionDetail(el, service, session);
}

async function services(el) {
  el.append(header('Proxy', { description: 'Twilio Proxy services: pools of proxy numbers and the sessions between participants.' }));
  const listing = h('div');
  el.append(section('Services', listing));
  await pager(listing, fetcher('/Services'), (rows) => table([
    { label: 'Unique name', render: (s) => link(seg('proxy', s.sid), s.unique_name ?? s.sid) },
    { label: 'SID', render: (s) => code(s.sid) },
    { label: 'Default TTL', render: (s) => (s.default_ttl ? `${s.default_ttl} s` : '—') },
    { label: 'Geo match', render: (s) => s.geo_match_level ?? '—' },
    { label: 'Created', render: (s) => when(s.date_created) },
  ], rows, { caption: 'Proxy services', testid: 'proxy-services', empty: 'No Proxy services.' }), { normalise: twilioPage('services') });
}

async function sessions(el, service) {
  const svc = await proxy.get(`/${seg('Services', service)}`);
  el.append(header(svc.unique_name ?? svc.sid, { crumbs: [['proxy', 'Proxy'], svc.unique_name ?? svc.sid] }));
  el.append(section('Service', facts([
    ['SID', code(svc.sid)],
    ['Chat instance', svc.chat_instance_sid ?? '—'],
    ['Callback URL', svc.callback_url ?? '—'],
    ['Default TTL', svc.default_ttl ? `${svc.default_ttl} s` : '—'],
  ])));
  const listing = h('div');
  const numbers = h('div');
  el.append(section('Sessions', listing), section('Phone numbers', numbers));
  await Promise.all([
    pager(listing, fetcher(`/${seg('Services', service, 'Sessions')}`), (rows) => table([
      { label: 'Unique name', render: (s) => link(seg('proxy', service, s.sid), s.unique_name ?? s.sid) },
      { label: 'SID', render: (s) => code(s.sid) },
      { label: 'Status', render: (s) => h('span', { class: `badge badge-${s.status}` }, s.status) },
      { label: 'Mode', render: (s) => s.mode },
      { label: 'Last interaction', render: (s) => when(s.date_last_interaction) },
      { label: 'Expires', render: (s) => when(s.date_expiry) },
    ], rows, { caption: 'Sessions', testid: 'proxy-sessions', empty: 'No sessions.' }), { normalise: twilioPage('sessions') }),
    pager(numbers, fetcher(`/${seg('Services', service, 'PhoneNumbers')}`), (rows) => table([
      { label: 'Number', render: (n) => code(n.phone_number) },
      { label: 'SID', render: (n) => code(n.sid) },
      { label: 'Reserved', render: (n) => (n.is_reserved ? 'yes' : 'no') },
      { label: 'In use', render: (n) => String(n.in_use ?? 0) },
    ], rows, { caption: 'Phone numbers', empty: 'No phone numbers in the pool.' }), { normalise: twilioPage('phone_numbers') }),
  ]);
}

async function sessionDetail(el, service, session) {
  const base = `/${seg('Services', service, 'Sessions', session)}`;
  const s = await proxy.get(base);
  el.append(header(s.unique_name ?? s.sid, {
    crumbs: [['proxy', 'Proxy'], [seg('proxy', service), service], s.unique_name ?? s.sid],
  }));
  el.append(section('Session', facts([
    ['SID', code(s.sid)],
    ['Status', s.status],
    ['Closed reason', s.closed_reason ?? '—'],
    ['Mode', s.mode],
    ['TTL', s.ttl ? `${s.ttl} s` : '—'],
    ['Started', when(s.date_started)],
    ['Last interaction', when(s.date_last_interaction)],
    ['Expires', when(s.date_expiry)],
  ])));
  const participants = h('div');
  const interactions = h('div');
  el.append(section('Participants', participants), section('Interactions', interactions));
  await Promise.all([
    pager(participants, fetcher(`${base}/Participants`), (rows) => table([
      { label: 'Identifier', render: (p) => code(p.identifier) },
      { label: 'Proxy identifier', render: (p) => code(p.proxy_identifier) },
      { label: 'Friendly name', render: (p) => p.friendly_name ?? '—' },
      { label: 'SID', render: (p) => code(p.sid) },
      { label: 'Joined', render: (p) => when(p.date_created) },
      { label: 'Left', render: (p) => when(p.date_deleted) },
    ], rows, { caption: 'Participants', testid: 'proxy-participants', empty: 'No participants.' }), { normalise: twilioPage('participants') }),
    pager(interactions, fetcher(`${base}/Interactions`), (rows) => table([
      { label: 'When', render: (i) => when(i.date_created) },
      { label: 'Type', render: (i) => i.type },
      { label: 'Data', render: (i) => code(compactJson(parseMaybe(i.data), 100)), class: 'data' },
      { label: 'Inbound', render: (i) => `${i.inbound_participant_sid ?? '—'} (${i.inbound_resource_status ?? '—'})` },
      { label: 'Outbound', render: (i) => `${i.outbound_participant_sid ?? '—'} (${i.outbound_resource_status ?? '—'})` },
    ], rows, { caption: 'Interactions', testid: 'proxy-interactions', empty: 'No interactions.' }), { normalise: twilioPage('interactions') }),
  ]);
}

function parseMaybe(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
