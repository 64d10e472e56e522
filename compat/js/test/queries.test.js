'use strict';
// Instant and live queries through the SDK (client.instantQuery, client.liveQuery) over indexes
// the service declares through the native API, with the data written through the native REST
// API meanwhile: search results, another index, every match in one reply, errors; a live
// query's first items, items entering, changing and leaving, a Map removed, and a reconnect
// that loses nothing.
//
// The SDK's InstantQuery has no paging: `search` reads the `items` of one reply, so the server
// answers every match at once (it pages only for clients that ask with PageSize).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

const ENG = 'data.team == "eng"';
let service, alice;

const api = (path) => `/api/v1/services/${service}${path}`;

async function ok(method, path, json) {
  const r = await h.rest(method, api(path), { json });
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

const put = (map, key, data) => ok('PUT', `/maps/${map}/items/${encodeURIComponent(key)}`, { data });

/** Maps and an index over them: `{map_prefix}` or `{map}`. */
async function index(name, source, maps) {
  for (const map of maps) await ok('POST', '/maps', { unique_name: map });
  await ok('PUT', `/indexes/${name}`, { ...source, fields: ['data.team'] });
}

/** Resolves once the server confirmed the live query's subscription. */
function established(liveQuery) {
  const impl = liveQuery.liveQueryImpl;
  return h.waitFor(liveQuery, '_subscriptionStateChanged', (s) => s === 'established', 'live query subscribed',
    () => impl.subscriptionState === 'established');
}

const updates = (seen) => seen.map((i) => [i.key, i.value]);

before(async () => {
  service = await h.newService('queries');
  alice = await h.connectAs('alice', service);
});
after(h.shutdownAll);

test('instantQuery: search, updateIndexName, every match in one reply, errors as SyncErrors', async () => {
  await index('tr-worker', { map_prefix: 'workers-' }, ['workers-eu', 'workers-us']);
  await index('people', { map: 'people' }, ['people']);
  await put('workers-eu', 'w1', { team: 'eng', name: 'Ann' });
  await put('workers-eu', 'w2', { team: 'ops', name: 'Cy' });
  await put('workers-us', 'w1', { team: 'eng', name: 'Bob' });

  const q = await alice.instantQuery('tr-worker');
  const result = h.waitFor(q, 'searchResult');
  await q.search(ENG);
  // A prefix index's Maps may share keys: keys say their Map.
  const eng = { 'workers-eu/w1': { team: 'eng', name: 'Ann' }, 'workers-us/w1': { team: 'eng', name: 'Bob' } };
  assert.deepEqual(q.getItems(), eng);
  assert.deepEqual(await result, eng);
  await q.search('data.name in ["Bob", "Cy"] and data.team != "eng"');
  assert.deepEqual(q.getItems(), { 'workers-eu/w2': { team: 'ops', name: 'Cy' } });

  // Written meanwhile: the next search sees it.
  await put('workers-us', 'w3', { team: 'eng' });
  await q.search(ENG);
  assert.deepEqual(Object.keys(q.getItems()), ['workers-eu/w1', 'workers-us/w1', 'workers-us/w3']);

  // A one-Map index gives keys as they are; more matches than any page of the REST faces.
  for (let start = 0; start < 150; start += 25) {
    await Promise.all(Array.from({ length: 25 }, (_, i) => {
      const n = start + i;
      return put('people', `p${String(n).padStart(3, '0')}`, { team: n % 5 === 0 ? 'ops' : 'eng', n });
    }));
  }
  q.updateIndexName('people');
  assert.equal(q.indexName, 'people');
  await q.search(ENG);
  const found = q.getItems();
  assert.equal(Object.keys(found).length, 120);
  assert.deepEqual(found.p001, { team: 'eng', n: 1 });
  assert.equal(found.p000, undefined);
  await q.search('data.n >= 140 and data.team == "ops"');
  assert.deepEqual(q.getItems(), { p140: { team: 'ops', n: 140 }, p145: { team: 'ops', n: 145 } });

  await assert.rejects(q.search('data.team =='), { status: 400, code: 54507 });
  const many = Array.from({ length: 30 }, (_, i) => `data.team == "t${i}"`).join(' or ');
  await assert.rejects(q.search(many), { status: 400, code: 54509 });
  const array = Array.from({ length: 30 }, (_, i) => `"t${i}"`).join(', ');
  await assert.rejects(q.search(`data.team in [${array}]`), { status: 400, code: 54510 });
  q.updateIndexName('tr-nothing');
  await assert.rejects(q.search(ENG), { status: 404, code: 20404 });
  await assert.rejects(alice.liveQuery('tr-nothing', ENG), { status: 404, code: 20404 });
});

test('liveQuery: first items, then items entering, changing and leaving as REST writes them', async () => {
  await index('crew', { map_prefix: 'crew-' }, ['crew-a', 'crew-b']);
  await put('crew-a', 'a', { team: 'eng', n: 0 });
  await put('crew-a', 'o', { team: 'ops' });

  const live = await alice.liveQuery('crew', ENG);
  assert.match(live.sid, /^LQ[0-9a-f]{32}$/);
  assert.deepEqual(live.getItems(), { 'crew-a/a': { team: 'eng', n: 0 } });
  const updated = h.record(live, 'itemUpdated');
  const removed = h.record(live, 'itemRemoved');
  await established(live);

  await put('crew-b', 'x', { team: 'eng' }); // enters
  await h.until(updated, 1, 'an item entering');
  await put('crew-a', 'a', { team: 'eng', n: 1 }); // changes within the results
  await h.until(updated, 2, 'an item changing');
  await put('crew-a', 'z', { team: 'ops' }); // outside the results: nothing
  await put('crew-a', 'a', { team: 'ops', n: 2 }); // leaves by changing
  await h.until(removed, 1, 'an item leaving');
  await ok('DELETE', '/maps/crew-b/items/x'); // leaves by removal
  await h.until(removed, 2, 'an item removed');
  assert.deepEqual(updates(updated), [['crew-b/x', { team: 'eng' }], ['crew-a/a', { team: 'eng', n: 1 }]]);
  assert.ok(updated.every((i) => typeof i.lastEventId === 'number'), 'event ids are numbers');
  assert.ok(updated[1].lastEventId > updated[0].lastEventId);
  assert.deepEqual(removed, [{ key: 'crew-a/a' }, { key: 'crew-b/x' }]);
  assert.deepEqual(live.getItems(), {});

  // Its Map removed, an item leaves the results too.
  await put('crew-b', 'y', { team: 'eng' });
  await h.until(updated, 3, 'an item entering');
  await ok('DELETE', '/maps/crew-b');
  await h.until(removed, 3, 'the removed Map\'s item leaving');
  assert.deepEqual(removed[2], { key: 'crew-b/y' });
  assert.deepEqual(live.getItems(), {});
  await put('crew-a', 'back', { team: 'eng' });
  await h.until(updated, 4, 'an item entering after that');
  assert.deepEqual(updates(updated.slice(3)), [['crew-a/back', { team: 'eng' }]]);
  await h.sleep(200);
  assert.equal(updated.length + removed.length, 7, 'nothing else');
  live.close();
});

test('a live query made from an instant query, across a reconnect, loses nothing and repeats nothing', async () => {
  await index('desk', { map: 'desk' }, ['desk']);
  await put('desk', 'd1', { team: 'eng' });
  const q = await alice.instantQuery('desk');
  await q.search(ENG);
  const live = await q.subscribe();
  assert.deepEqual(live.getItems(), { d1: { team: 'eng' } });
  const updated = h.record(live, 'itemUpdated');
  const removed = h.record(live, 'itemRemoved');
  await established(live);
  await put('desk', 'd2', { team: 'eng' });
  await h.until(updated, 1, 'a live update');

  const socket = h.socketOf(alice);
  assert.ok(socket, 'the SDK exposes its socket');
  const away = h.waitFor(alice, 'connectionStateChanged', (s) => s === 'connecting');
  socket.terminate();
  await away;
  await put('desk', 'd3', { team: 'eng' });
  await put('desk', 'd1', { team: 'ops' });
  await put('desk', 'd2', { team: 'eng', v: 2 });
  await h.waitFor(alice, 'connectionStateChanged', (s) => s === 'connected', 'reconnected',
    () => alice.connectionState === 'connected');
  await h.until(updated, 3, 'missed updates');
  await h.until(removed, 1, 'a missed removal');
  assert.deepEqual(updates(updated), [['d2', { team: 'eng' }], ['d3', { team: 'eng' }], ['d2', { team: 'eng', v: 2 }]]);
  assert.deepEqual(removed, [{ key: 'd1' }]);

  await put('desk', 'd4', { team: 'eng' });
  await h.until(updated, 4, 'a live update after reconnecting');
  await h.sleep(200);
  assert.equal(updated.length, 4, 'nothing twice');
  assert.deepEqual(live.getItems(), { d2: { team: 'eng', v: 2 }, d3: { team: 'eng' }, d4: { team: 'eng' } });
});
