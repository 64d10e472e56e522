'use strict';
// Lists through the SDK: open modes, push/set/update/mutate/remove/get, paging with from,
// pageSize and order, and item events on another client with isLocal and previous data.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

let service, alice, bob;
before(async () => {
  service = await h.newService('lists');
  alice = await h.connectAs('alice', service);
  bob = await h.connectAs('bob', service);
});
after(h.shutdownAll);

test('open modes: open_or_create, open_existing (404 / 54150), create_new (409 / 54301)', async () => {
  const name = h.unique('list');
  const created = await alice.list({ id: name, mode: 'create_new', ttl: 3600 });
  assert.match(created.sid, /^ES[0-9a-f]{32}$/);
  assert.ok(created.dateExpires);
  const opened = await bob.list({ id: name, mode: 'open_existing' });
  assert.equal(opened.sid, created.sid);
  assert.equal((await bob.list(name)).sid, created.sid);
  await assert.rejects(bob.list({ id: h.unique('nope'), mode: 'open_existing' }), { status: 404, code: 54150 });
  await assert.rejects(bob.list({ id: name, mode: 'create_new' }), { status: 409, code: 54301 });
});

test('items written by one client reach the other with isLocal and previousItemData', async () => {
  const name = h.unique('todo');
  const mine = await alice.list(name);
  const theirs = await bob.list(name);
  await h.subscribed(theirs);
  const added = h.record(theirs, 'itemAdded');
  const updated = h.record(theirs, 'itemUpdated');
  const removed = h.record(theirs, 'itemRemoved');
  const localAdded = h.record(mine, 'itemAdded');
  const localRemoved = h.record(mine, 'itemRemoved');

  const first = await mine.push({ text: 'milk' });
  const second = await mine.push({ text: 'eggs' });
  assert.deepEqual([first.index, second.index], [0, 1]);
  await h.until(added, 2, 'itemAdded');
  assert.deepEqual(added.map((e) => [e.item.index, e.item.data, e.isLocal]), [[0, { text: 'milk' }, false], [1, { text: 'eggs' }, false]]);
  assert.deepEqual(localAdded.map((e) => e.isLocal), [true, true]);

  await mine.set(0, { text: 'oat milk' });
  await mine.update(1, { done: true });
  await h.until(updated, 2, 'itemUpdated');
  assert.deepEqual(updated[0].item.data, { text: 'oat milk' });
  assert.deepEqual(updated[0].previousItemData, { text: 'milk' });
  assert.equal(updated[0].isLocal, false);
  assert.deepEqual(updated[1].item.data, { text: 'eggs', done: true });
  assert.deepEqual(updated[1].previousItemData, { text: 'eggs' });

  await mine.remove(0);
  await h.until(removed, 1, 'itemRemoved');
  assert.deepEqual(removed[0], { index: 0, isLocal: false, previousItemData: { text: 'oat milk' } });
  await h.sleep(200);
  assert.deepEqual(localRemoved, [{ index: 0, isLocal: true, previousItemData: { text: 'oat milk' } }], 'reported once');

  const item = await theirs.get(1);
  assert.deepEqual(item.data, { text: 'eggs', done: true });
  // Bob's copy keeps a tombstone for index 0; a fresh reader asks the server.
  const reader = await (await h.connectAs('carol', service)).list(name);
  await assert.rejects(reader.get(0), { status: 404, code: 54151 });
});

test('mutate on an item retries after a conflicting write', async () => {
  const name = h.unique('votes');
  const mine = await alice.list(name);
  await mine.push({ votes: 0 });
  let calls = 0;
  const item = await mine.mutate(0, (current) => {
    calls += 1;
    if (calls === 1) {
      h.writeSync('PUT', `/api/v1/services/${service}/lists/${name}/items/0`, { data: { votes: 5 } });
    }
    return { votes: current.votes + 1 };
  });
  assert.equal(calls, 2);
  assert.deepEqual(item.data, { votes: 6 });
});

test('getItems pages with from, pageSize and order', async () => {
  const name = h.unique('paged');
  const mine = await alice.list(name);
  for (let i = 0; i < 7; i += 1) await mine.push({ i });
  // A fresh client reads from the server, not from a cache filled by the pushes.
  const reader = await (await h.connectAs('carol', service)).list(name);
  let page = await reader.getItems({ pageSize: 3 });
  const seen = page.items.map((x) => x.data.i);
  while (page.hasNextPage) {
    page = await page.nextPage();
    seen.push(...page.items.map((x) => x.data.i));
  }
  assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6]);
  const back = await page.prevPage();
  assert.ok(back.items.length > 0);

  const desc = await reader.getItems({ order: 'desc', pageSize: 2 });
  assert.deepEqual(desc.items.map((x) => x.index), [6, 5]);
  assert.ok(desc.hasNextPage);
  const from = await reader.getItems({ from: 4, pageSize: 10 });
  assert.deepEqual(from.items.map((x) => x.index), [4, 5, 6]);
  assert.equal(from.hasNextPage, false);
  const fromDesc = await reader.getItems({ from: 2, order: 'desc' });
  assert.deepEqual(fromDesc.items.map((x) => x.index), [2, 1, 0]);
});

test('removing a list reaches the other client', async () => {
  const name = h.unique('gone');
  const mine = await alice.list(name);
  const theirs = await bob.list(name);
  await h.subscribed(theirs);
  const removed = h.waitFor(theirs, 'removed');
  await mine.removeList();
  assert.deepEqual(await removed, { isLocal: false });
});
