'use strict';
// Documents through the SDK: every open mode, TTL and initial data, set/update/mutate/remove/
// setTtl, and two clients seeing each other's changes with isLocal and previous data.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

let service, alice, bob;
before(async () => {
  service = await h.newService('docs');
  alice = await h.connectAs('alice', service);
  bob = await h.connectAs('bob', service);
});
after(h.shutdownAll);

test('open_or_create creates once, then opens; data and ttl apply on creation only', async () => {
  const name = h.unique('doc');
  const created = await alice.document({ id: name, mode: 'open_or_create', data: { a: 1 }, ttl: 3600 });
  assert.match(created.sid, /^ET[0-9a-f]{32}$/);
  assert.equal(created.uniqueName, name);
  assert.deepEqual(created.data, { a: 1 });
  assert.equal(created.revision, '0');
  assert.ok(created.dateExpires, 'a ttl sets the expiry');
  const opened = await bob.document({ id: name, data: { ignored: true } });
  assert.equal(opened.sid, created.sid);
  assert.deepEqual(opened.data, { a: 1 });
  // By SID as well.
  const bySid = await bob.document(created.sid);
  assert.deepEqual(bySid.data, { a: 1 });
});

test('open_existing refuses a missing document with 404 / 54100', async () => {
  await assert.rejects(bob.document({ id: h.unique('missing'), mode: 'open_existing' }), (e) => {
    assert.equal(e.status, 404);
    assert.equal(e.code, 54100);
    return true;
  });
});

test('create_new refuses a taken unique name with 409 / 54301, and without an id creates anonymously', async () => {
  const name = h.unique('taken');
  await alice.document({ id: name, mode: 'create_new' });
  await assert.rejects(bob.document({ id: name, mode: 'create_new' }), (e) => {
    assert.equal(e.status, 409);
    assert.equal(e.code, 54301);
    return true;
  });
  const anonymous = await alice.document();
  assert.equal(anonymous.uniqueName, null);
  assert.match(anonymous.sid, /^ET/);
});

test('set, update and remove reach the other client with isLocal and previousData', async () => {
  const name = h.unique('shared');
  const mine = await alice.document({ id: name, data: { x: 1 } });
  const theirs = await bob.document({ id: name, mode: 'open_existing' });
  await h.subscribed(theirs);
  const local = h.record(mine, 'updated');
  const remote = h.record(theirs, 'updated');

  await mine.set({ x: 2 });
  await h.until(remote, 1, 'remote set');
  assert.deepEqual(local, [{ data: { x: 2 }, isLocal: true, previousData: { x: 1 } }]);
  assert.deepEqual(remote[0], { data: { x: 2 }, isLocal: false, previousData: { x: 1 } });

  await theirs.update({ y: 3 });
  await h.until(local, 2, 'update seen by alice');
  assert.deepEqual(local[1], { data: { x: 2, y: 3 }, isLocal: false, previousData: { x: 2 } });
  assert.deepEqual(remote[1], { data: { x: 2, y: 3 }, isLocal: true, previousData: { x: 2 } });
  assert.equal(mine.revision, theirs.revision);

  const removed = h.waitFor(theirs, 'removed');
  const removedLocally = h.waitFor(mine, 'removed');
  await mine.removeDocument();
  assert.deepEqual(await removedLocally, { isLocal: true, previousData: { x: 2, y: 3 } });
  assert.deepEqual(await removed, { isLocal: false, previousData: { x: 2, y: 3 } });
  await h.sleep(200);
  assert.equal(local.length, 2, 'no echo of alice\'s own writes');
});

test('mutate retries on a concurrent conflicting write (If-Match / 412) and keeps both changes', async () => {
  const name = h.unique('counter');
  const mine = await alice.document({ id: name, data: { n: 0, by: [] } });
  const theirs = await bob.document(name);
  const seen = h.record(theirs, 'updated');
  let calls = 0;
  const result = await mine.mutate((current) => {
    calls += 1;
    if (calls === 1) {
      // Another writer gets in between Alice's read and her write. Synchronously, so her
      // client cannot learn of it first: her write carries the stale revision and gets 412.
      h.writeSync('PUT', `/api/v1/services/${service}/documents/${name}`, { data: { n: 10, by: ['rest'] } });
    }
    return { n: current.n + 1, by: [...current.by, 'alice'] };
  });
  assert.equal(calls, 2, 'the mutator ran again on the fresh data');
  assert.deepEqual(result, { n: 11, by: ['rest', 'alice'] });
  assert.equal(mine.revision, '2');
  const final = await h.rest('GET', `/api/v1/services/${service}/documents/${name}`);
  assert.deepEqual(final.body.data, { n: 11, by: ['rest', 'alice'] });
  await h.until(seen, 2, 'bob sees both writes');
  assert.deepEqual(seen.map((e) => e.data.n), [10, 11]);
});

test('setTtl sets the expiry and 0 clears it', async () => {
  const doc = await alice.document(h.unique('ttl'));
  await doc.setTtl(3600);
  let r = await h.rest('GET', `/api/v1/services/${service}/documents/${doc.sid}`);
  assert.ok(r.body.date_expires, JSON.stringify(r.body));
  await doc.setTtl(0);
  r = await h.rest('GET', `/api/v1/services/${service}/documents/${doc.sid}`);
  assert.equal(r.body.date_expires, null);
  assert.deepEqual(doc.data, {}, 'a TTL change leaves the data alone');
});
