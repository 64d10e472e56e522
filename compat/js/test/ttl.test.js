'use strict';
// TTL expiry is pushed to subscribers like any removal: `removed` for documents, `itemRemoved`
// for list and map items.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

let service, alice, bob;
before(async () => {
  service = await h.newService('ttl');
  alice = await h.connectAs('alice', service);
  bob = await h.connectAs('bob', service);
});
after(h.shutdownAll);

test('an expiring document is pushed as removed', async () => {
  const name = h.unique('short');
  const mine = await alice.document({ id: name, data: { v: 1 }, ttl: 1 });
  const theirs = await bob.document(name);
  await Promise.all([h.subscribed(mine), h.subscribed(theirs)]);
  const [a, b] = await Promise.all([h.waitFor(mine, 'removed'), h.waitFor(theirs, 'removed')]);
  assert.equal(a.isLocal, false);
  assert.equal(b.isLocal, false);
  assert.deepEqual(b.previousData, { v: 1 });
  await assert.rejects(bob.document({ id: name, mode: 'open_existing' }), { status: 404 });
});

test('expiring list and map items are pushed as itemRemoved', async () => {
  const listName = h.unique('list');
  const mapName = h.unique('map');
  const list = await alice.list(listName);
  const map = await alice.map(mapName);
  const theirList = await bob.list(listName);
  const theirMap = await bob.map(mapName);
  await Promise.all([h.subscribed(theirList), h.subscribed(theirMap)]);
  const listRemoved = h.waitFor(theirList, 'itemRemoved');
  const mapRemoved = h.waitFor(theirMap, 'itemRemoved');
  await list.push({ short: true }, { ttl: 1 });
  await list.push({ short: false });
  await map.set('k', { short: true }, { ttl: 1 });
  const l = await listRemoved;
  assert.deepEqual([l.index, l.isLocal, l.previousItemData], [0, false, { short: true }]);
  const m = await mapRemoved;
  assert.deepEqual([m.key, m.isLocal, m.previousItemData], ['k', false, { short: true }]);
  const page = await theirList.getItems();
  assert.deepEqual(page.items.map((i) => i.index), [1]);
});
