// API keys (list, create with the secret shown once, delete) and minting access tokens.

import { api } from '../api.js';
import { button, code, describeError, facts, field, h, header, notice, section, showError, table, when } from '../dom.js';
import { confirmButton } from '../editor.js';
import { options as serviceOptions } from './services.js';

export async function view(el) {
  el.append(header('API keys & tokens', {
    description: 'API keys authenticate server-side calls and sign the access tokens end users connect with.',
  }));

  const listing = h('div');
  const reveal = h('div');
  const name = h('input', { autocomplete: 'off', maxlength: 64 });
  const createProblem = h('div', { hidden: true });
  const createForm = h('form', { class: 'inline-form', 'aria-label': 'Create an API key' },
    field('Friendly name', name),
    h('div', { class: 'field field-submit' }, button('Create key', null, { kind: 'primary', type: 'submit' })),
    createProblem);

  const tokenSection = h('div');
  el.append(section('New API key', createForm, reveal), section('API keys', listing), section('Mint an access token', tokenSection));

  let keys = [];
  async function refresh() {
    try {
      keys = await api.get('/keys');
    } catch (err) {
      showError(listing, err);
      return;
    }
    listing.replaceChildren(table([
      { label: 'SID', render: (k) => code(k.sid) },
      { label: 'Friendly name', render: (k) => k.friendly_name ?? '—' },
      { label: 'Created', render: (k) => when(k.date_created) },
      {
        label: 'Actions',
        render: (k) => confirmButton('Delete', `Delete ${k.sid}? Tokens it signed stop working.`, async () => {
          try {
            await api.delete(`/keys/${encodeURIComponent(k.sid)}`);
            await refresh();
          } catch (err) {
            listing.prepend(notice('error', describeError(err)));
          }
        }),
      },
    ], keys, { caption: 'API keys', testid: 'keys-table', empty: 'No API keys yet.' }));
    drawKeyChoices();
  }

  createForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    createProblem.hidden = true;
    try {
      const key = await api.post('/keys', name.value.trim() ? { friendly_name: name.value.trim() } : {});
      name.value = '';
      const secret = h('input', { readonly: true, value: key.secret, class: 'mono', 'data-testid': 'new-key-secret', 'aria-label': 'Secret of the new key' });
      secret.addEventListener('focus', () => secret.select());
      reveal.replaceChildren(h('div', { class: 'secret-once', role: 'status' },
        h('h3', {}, 'Copy the secret now: it is shown only once'),
        facts([['Key SID', code(key.sid)], ['Secret', secret]]),
        button('I have copied it', () => reveal.replaceChildren())));
      secret.focus();
      await refresh();
    } catch (err) {
      showError(createProblem, err, 'Cannot create the key: ');
    }
  });

  // Minting.
  const choices = await serviceOptions().catch(() => []);
  const service = h('select', { required: true }, choices.map((o) => h('option', { value: o.value }, o.label)));
  const identity = h('input', { required: true, autocomplete: 'off', spellcheck: 'false' });
  const ttl = h('input', { type: 'number', min: 1, max: 86400, value: '3600', inputmode: 'numeric' });
  const signer = h('select');
  function drawKeyChoices() {
    const was = signer.value;
    signer.replaceChildren(h('option', { value: '' }, 'Any key (the server chooses)'),
      keys.map((k) => h('option', { value: k.sid }, k.friendly_name ? `${k.friendly_name} (${k.sid})` : k.sid)));
    signer.value = keys.some((k) => k.sid === was) ? was : '';
  }
  const minted = h('div');
  const tokenForm = h('form', { class: 'stack-form', 'aria-label': 'Mint an access token' },
    h('div', { class: 'row' },
      field('Service', service),
      field('Identity', identity, 'Who the token acts as.'),
      field('Lifetime (seconds)', ttl, 'At most 24 hours.'),
      field('Signed by', signer)),
    h('div', {}, button('Mint token', null, { kind: 'primary', type: 'submit' })),
    minted);
  tokenForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { service: service.value, identity: identity.value.trim() };
    if (ttl.value !== '') body.ttl = Number(ttl.value);
    if (signer.value) body.api_key = signer.value;
    try {
      const t = await api.post('/tokens', body);
      const out = h('textarea', { readonly: true, rows: 4, class: 'mono', 'data-testid': 'minted-token', 'aria-label': 'The access token' });
      out.value = t.token;
      minted.replaceChildren(h('div', { class: 'secret-once' },
        facts([['Identity', t.identity], ['Service', code(t.service_sid)], ['Expires', when(t.expires_at)]]),
        out,
        h('p', { class: 'muted' }, 'Connect with it at ', code('/api/v1/connect?token=…'), ' or as ', code('Authorization: Bearer …'), '.')));
    } catch (err) {
      showError(minted, err, 'Cannot mint the token: ');
    }
  });
  tokenSection.append(choices.length ? tokenForm : notice('info', 'Create a service first: a token is for one service.'));

  await refresh();
}
