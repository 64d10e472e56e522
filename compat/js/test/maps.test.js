'use strict';
// Maps through the SDK: open modes (with items included), set/update/mutate/remove/get,
// paging by key, and item events on another client with isLocal and previous data.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

let service, alice, bob;
before(async () => {
  service = await h.newService('maps');
  alice = await h.connectAs('alice', service);
  bob = await h.connectAs('bob', service);
});
after(h.shutdownAll);

test('open modes: open_or_create, open_existing (404 / 54200), create_new (409 / 54301), includeItems', async () => {
  const name = h.unique('map');
  const created = await alice.map({ id: name, mode: 'create_new' });
  assert.match(created.sid, /^MP[0-9a-f]{32}$/);
  await created.set('a', { v: 1 });
  const withItems = await bob.map({ id: name, mode: 'open_existing', includeItems: true });
  assert.equal(withItems.sid, created.sid);
  assert.deepEqual((await withItems.get('a')).data, { v: 1 });
  await assert.rejects(bob.map({ id: h.unique('nope'), mode: 'open_existing' }), { status: 404, code: 54200 });
  await assert.rejects(bob.map({ id: name, mode: 'create_new' }), { status: 409, code: 54301 });
});

test('items written by one client reach the other with isLocal and previousItemData', async () => {
  const name = h.unique('prefs');
  const mine = await alice.map(name);
  const theirs = await bob.map(name);
  await h.subscribed(theirs);
  const added = h.record(theirs, 'itemAdded');
  const updated = h.record(theirs, 'itemUpdated');
  const removed = h.record(theirs, 'itemRemoved');
  const local = h.record(mine, 'itemAdded');

  const item = await mine.set('theme', { mode: 'dark' });
  assert.equal(item.key, 'theme');
  await h.until(added, 1, 'itemAdded');
  assert.deepEqual([added[0].item.key, added[0].item.data, added[0].isLocal], ['theme', { mode: 'dark' }, false]);
  assert.deepEqual(local.map((e) => e.isLocal), [true]);

  await mine.update('theme', { size: 12 });
  await h.until(updated, 1, 'itemUpdated');
  assert.deepEqual(updated[0].item.data, { mode: 'dark', size: 12 });
  assert.deepEqual(updated[0].previousItemData, { mode: 'dark' });
  assert.equal(updated[0].isLocal, false);

  await mine.set('a key/with spaces', { ok: true });
  await h.until(added, 2, 'second itemAdded');
  assert.equal(added[1].item.key, 'a key/with spaces');
  assert.deepEqual((await theirs.get('a key/with spaces')).data, { ok: true });

  await mine.remove('theme');
  await h.until(removed, 1, 'itemRemoved');
  assert.deepEqual(removed[0], { key: 'theme', isLocal: false, previousItemData: { mode: 'dark', size: 12 } });
  await assert.rejects(theirs.get('theme'), { status: 404 });
});

test('mutate creates a missing item and retries after a conflicting write', async () => {
  const name = h.unique('counters');
  const mine = await alice.map(name);
  const created = await mine.mutate('hits', (current) => ({ n: (current.n || 0) + 1 }));
  assert.deepEqual(created.data, { n: 1 });
  let calls = 0;
  const item = await mine.mutate('hits', (current) => {
    calls += 1;
    if (calls === 1) {
      h.writeSync('PUT', `/api/v1/services/${service}/maps/${name}/items/hits`, { data: { n: 40 } });
    }
    return { n: current.n + 1 };
  });
  assert.equal(calls, 2);
  assert.deepEqual(item.data, { n: 41 });
});

test('getItems pages by key in both orders', async () => {
  const name = h.unique('paged');
  const mine = await alice.map(name);
  for (const k of ['a', 'b', 'c', 'd', 'e']) await mine.set(k, { k });
  const reader = await (await h.connectAs('carol', service)).map(name);
  let page = await reader.getItems({ pageSize: 2 });
  const keys = page.items.map((x) => x.key);
  while (page.hasNextPage) {
    page = await page.nextPage();
    keys.push(...page.items.map((x) => x.key));
  }
  assert.deepEqual(keys, ['a', 'b', 'c', 'd', 'e']);
  const desc = await reader.getItems({ order: 'desc', pageSize: 3 });
  assert.deepEqual(desc.items.map((x) => x.key), ['e', 'd', 'c']);
  const from = await reader.getItems({ from: 'c' });
  assert.deepEqual(from.items.map((x) => x.key), ['c', 'd', 'e']);
});

test('setItemTtl and removing the map', async () => {
  const name = h.unique('ttl');
  const mine = await alice.map(name);
  await mine.set('k', { v: 1 });
  await mine.setItemTtl('k', 3600);
  const r = await h.rest('GET', `/api/v1/services/${service}/maps/${name}/items/k`);
  assert.ok(r.body.date_expires, JSON.stringify(r.body));
  const theirs = await bob.map(name);
  await h.subscribed(theirs);
  const removed = h.waitFor(theirs, 'removed');
  await mine.removeMap();
  assert.deepEqual(await removed, { isLocal: false });
});
