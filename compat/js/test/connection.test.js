'use strict';
// Connection states: connecting → connected, disconnecting → disconnected on shutdown, and
// denied for tokens the server refuses at init (bad, unknown key, expired).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

let service;
before(async () => {
  service = await h.newService('conn');
});
after(h.shutdownAll);

test('a client goes through connecting to connected, and to disconnected on shutdown', async () => {
  const client = new h.SyncClient(h.accessToken('alice', service), h.clientOptions());
  const states = h.record(client, 'connectionStateChanged');
  await h.waitFor(client, 'connectionStateChanged', (s) => s === 'connected');
  assert.equal(client.connectionState, 'connected');
  assert.deepEqual(states.slice(0, 2), ['connecting', 'connected']);
  const disconnected = h.waitFor(client, 'connectionStateChanged', (s) => s === 'disconnected');
  await client.shutdown();
  await disconnected;
  assert.ok(states.includes('disconnecting'), `states: ${states}`);
  assert.equal(states.at(-1), 'disconnected');
  assert.equal(client.connectionState, 'disconnected');
});

async function deniedWith(token) {
  const client = new h.SyncClient(token, h.clientOptions());
  const errors = h.record(client, 'connectionError');
  const expired = h.record(client, 'tokenExpired');
  const terminal = h.waitFor(client, 'connectionError', (e) => e.terminal, 'a terminal connection error');
  await h.waitFor(client, 'connectionStateChanged', (s) => s === 'denied', 'denied', () => client.connectionState === 'denied');
  await terminal;
  assert.equal(client.connectionState, 'denied');
  await client.shutdown();
  return { errors, expired };
}

test('a token that is not a JWT is denied', async () => {
  const { errors } = await deniedWith('bad-token');
  assert.ok(errors.some((e) => e.terminal && e.httpStatusCode === 401 && e.errorCode === 20101), JSON.stringify(errors));
});

test('a token signed with the wrong secret is denied', async () => {
  const { errors } = await deniedWith(h.accessToken('alice', service, { secret: 'not-the-secret' }));
  assert.ok(errors.some((e) => e.httpStatusCode === 401), JSON.stringify(errors));
});

test('an expired token is denied and reported as expired', async () => {
  const { errors, expired } = await deniedWith(h.accessToken('alice', service, { lifetime: 60, issuedAgo: 120 }));
  assert.ok(errors.some((e) => e.errorCode === 20104), JSON.stringify(errors));
  assert.equal(expired.length, 1);
});

test('the default service works as the grant', async () => {
  const client = await h.connectAs('alice', 'default');
  const doc = await client.document(h.unique('in-default'));
  assert.deepEqual(doc.data, {});
});
