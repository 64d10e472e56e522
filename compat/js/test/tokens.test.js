'use strict';
// Token lifetime: the server pushes tokenAboutToExpire (3 minutes before exp, so at once for
// these short-lived tokens), accepts updateToken on the live connection, and ends the
// connection with tokenExpired at exp; a fresh token then reconnects.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

let service;
before(async () => {
  service = await h.newService('tokens');
});
after(h.shutdownAll);

/** A token valid for `seconds` more (issued long enough ago to be inside the warning window). */
const expiringIn = (identity, seconds) => h.accessToken(identity, service, { lifetime: 600, issuedAgo: 600 - seconds });

test('tokenAboutToExpire is pushed, and updateToken keeps the connection past the old expiry', async () => {
  const client = new h.SyncClient(expiringIn('alice', 12), h.clientOptions());
  const expired = h.record(client, 'tokenExpired');
  const warned = h.waitFor(client, 'tokenAboutToExpire');
  await h.waitFor(client, 'connectionStateChanged', (s) => s === 'connected');
  await warned;
  await client.updateToken(h.accessToken('alice', service));
  // Past the first token's expiry the connection is still up and working.
  await h.sleep(14000);
  assert.equal(client.connectionState, 'connected');
  assert.equal(expired.length, 0);
  const doc = await client.document(h.unique('after-refresh'));
  await doc.set({ ok: true });
  assert.deepEqual(doc.data, { ok: true });
  await client.shutdown();
});

test('tokenExpired ends the connection at exp, and a fresh token reconnects', async () => {
  const client = new h.SyncClient(expiringIn('bob', 8), h.clientOptions());
  const states = h.record(client, 'connectionStateChanged');
  await h.waitFor(client, 'connectionStateChanged', (s) => s === 'connected');
  await h.waitFor(client, 'tokenExpired');
  await h.waitFor(client, 'connectionStateChanged', (s) => s === 'disconnected', 'disconnected',
    () => client.connectionState === 'disconnected');
  const reconnected = h.waitFor(client, 'connectionStateChanged', (s) => s === 'connected');
  await client.updateToken(h.accessToken('bob', service));
  await reconnected;
  assert.equal(client.connectionState, 'connected');
  assert.ok(states.indexOf('disconnected') < states.lastIndexOf('connected'), `states: ${states}`);
  const doc = await client.document(h.unique('after-expiry'));
  await doc.set({ back: true });
  await client.shutdown();
});

test('updateToken with a token for another identity is refused', async () => {
  const client = await h.connectAs('carol', service);
  await assert.rejects(client.updateToken(h.accessToken('mallory', service)));
  await client.shutdown();
});
