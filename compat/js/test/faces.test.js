'use strict';
// One history behind every face: writes through the Twilio Sync REST face and the native REST
// API reach SDK subscribers, and SDK writes read back through REST.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

let service, bob;
before(async () => {
  service = await h.newService('faces');
  bob = await h.connectAs('bob', service);
});
after(h.shutdownAll);

const twilio = (path, form) => h.rest('POST', `/twilio/sync/v1/Services/${service}${path}`, { form });

test('a document update through the Twilio REST face reaches the SDK, and the native API too', async () => {
  const name = h.unique('doc');
  const doc = await bob.document({ id: name, data: { v: 0 } });
  await h.subscribed(doc);
  const updated = h.record(doc, 'updated');
  let r = await twilio(`/Documents/${name}`, { Data: JSON.stringify({ v: 1, via: 'twilio' }) });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  r = await h.rest('PUT', `/api/v1/services/${service}/documents/${name}`, { json: { data: { v: 2, via: 'native' } } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await h.until(updated, 2, 'updates from REST');
  assert.deepEqual(updated.map((e) => [e.data, e.isLocal]), [
    [{ v: 1, via: 'twilio' }, false],
    [{ v: 2, via: 'native' }, false],
  ]);
  assert.deepEqual(updated[1].previousData, { v: 1, via: 'twilio' });
  await doc.set({ v: 3, via: 'sdk' });
  r = await h.rest('GET', `/twilio/sync/v1/Services/${service}/Documents/${name}`);
  assert.deepEqual(r.body.data, { v: 3, via: 'sdk' });
  assert.equal(r.body.revision, '3');
});

test('list items, map items and stream messages from the Twilio REST face reach the SDK', async () => {
  const list = await bob.list(h.unique('list'));
  const map = await bob.map(h.unique('map'));
  const stream = await bob.stream(h.unique('stream'));
  await Promise.all([h.subscribed(list), h.subscribed(map), h.subscribed(stream)]);
  const itemAdded = h.waitFor(list, 'itemAdded');
  const mapAdded = h.waitFor(map, 'itemAdded');
  const published = h.waitFor(stream, 'messagePublished');
  let r = await twilio(`/Lists/${list.sid}/Items`, { Data: JSON.stringify({ n: 1 }) });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  r = await twilio(`/Maps/${map.sid}/Items`, { Key: 'k', Data: JSON.stringify({ n: 2 }) });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  r = await twilio(`/Streams/${stream.sid}/Messages`, { Data: JSON.stringify({ n: 3 }) });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const a = await itemAdded;
  assert.deepEqual([a.item.index, a.item.data, a.isLocal], [0, { n: 1 }, false]);
  const m = await mapAdded;
  assert.deepEqual([m.item.key, m.item.data, m.isLocal], ['k', { n: 2 }, false]);
  const p = await published;
  assert.deepEqual([p.message.data, p.isLocal], [{ n: 3 }, false]);
});
