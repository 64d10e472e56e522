'use strict';
// A dropped connection loses nothing: while the client is away, writes land through REST; when
// it reconnects, the SDK resubscribes from the last event id it saw and receives every missed
// event, in order, then live ones.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

let service, alice;
before(async () => {
  service = await h.newService('reconnect');
  alice = await h.connectAs('alice', service);
});
after(h.shutdownAll);

test('events written while the socket was down are replayed after reconnecting', async () => {
  const docName = h.unique('doc');
  const listName = h.unique('list');
  const mapName = h.unique('map');
  const doc = await alice.document({ id: docName, data: { n: 0 } });
  const list = await alice.list(listName);
  const map = await alice.map(mapName);
  await Promise.all([h.subscribed(doc), h.subscribed(list), h.subscribed(map)]);
  const updated = h.record(doc, 'updated');
  const added = h.record(list, 'itemAdded');
  const mapAdded = h.record(map, 'itemAdded');

  const socket = h.socketOf(alice);
  assert.ok(socket, 'the SDK exposes its socket');
  const away = h.waitFor(alice, 'connectionStateChanged', (s) => s === 'connecting');
  socket.terminate();
  await away;
  for (let n = 1; n <= 5; n += 1) {
    const r = await h.rest('PUT', `/api/v1/services/${service}/documents/${docName}`, { json: { data: { n } } });
    assert.equal(r.status, 200);
  }
  for (let i = 0; i < 3; i += 1) {
    const r = await h.rest('POST', `/twilio/sync/v1/Services/${service}/Lists/${listName}/Items`, { form: { Data: JSON.stringify({ i }) } });
    assert.equal(r.status, 201);
  }
  for (const key of ['x', 'y']) {
    const r = await h.rest('PUT', `/api/v1/services/${service}/maps/${mapName}/items/${key}`, { json: { data: { key } } });
    assert.ok(r.status < 300, JSON.stringify(r.body));
  }
  await h.waitFor(alice, 'connectionStateChanged', (s) => s === 'connected', 'reconnected', () => alice.connectionState === 'connected');
  await h.until(updated, 5, 'missed document updates');
  await h.until(added, 3, 'missed list items');
  await h.until(mapAdded, 2, 'missed map items');
  assert.deepEqual(updated.map((e) => e.data.n), [1, 2, 3, 4, 5]);
  assert.deepEqual(added.map((e) => [e.item.index, e.item.data.i]), [[0, 0], [1, 1], [2, 2]]);
  assert.deepEqual(mapAdded.map((e) => e.item.key).sort(), ['x', 'y']);
  assert.deepEqual(doc.data, { n: 5 });

  // And live again afterwards.
  await h.rest('PUT', `/api/v1/services/${service}/documents/${docName}`, { json: { data: { n: 6 } } });
  await h.until(updated, 6, 'a live update after reconnecting');
  assert.equal(updated[5].data.n, 6);
  await h.sleep(200);
  assert.equal(updated.length, 6, 'nothing twice');
});
