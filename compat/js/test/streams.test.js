'use strict';
// Streams through the SDK: open modes, publishing, and messagePublished on both sides with
// isLocal, exactly once each.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

let service, alice, bob;
before(async () => {
  service = await h.newService('streams');
  alice = await h.connectAs('alice', service);
  bob = await h.connectAs('bob', service);
});
after(h.shutdownAll);

test('open modes: open_or_create, open_existing (404 / 54250), create_new (409 / 54301)', async () => {
  const name = h.unique('stream');
  const created = await alice.stream({ id: name, mode: 'create_new' });
  assert.match(created.sid, /^TO[0-9a-f]{32}$/);
  assert.equal((await bob.stream({ id: name, mode: 'open_existing' })).sid, created.sid);
  await assert.rejects(bob.stream({ id: h.unique('nope'), mode: 'open_existing' }), { status: 404, code: 54250 });
  await assert.rejects(bob.stream({ id: name, mode: 'create_new' }), { status: 409, code: 54301 });
});

test('a published message reaches the other client, and the publisher once, locally', async () => {
  const name = h.unique('typing');
  const mine = await alice.stream(name);
  const theirs = await bob.stream(name);
  await Promise.all([h.subscribed(mine), h.subscribed(theirs)]);
  const remote = h.record(theirs, 'messagePublished');
  const local = h.record(mine, 'messagePublished');
  const message = await mine.publishMessage({ who: 'alice' });
  assert.match(message.sid, /^TZ[0-9a-f]{32}$/);
  // Bob answers once he has Alice's message: the order of the two is then fixed everywhere.
  await h.until(remote, 1, 'messagePublished at bob');
  await theirs.publishMessage({ who: 'bob' });
  await h.until(remote, 2, 'messagePublished at bob');
  await h.until(local, 2, 'messagePublished at alice');
  assert.deepEqual(remote.map((e) => [e.message.data.who, e.isLocal]), [['alice', false], ['bob', true]]);
  assert.deepEqual(local.map((e) => [e.message.data.who, e.isLocal]), [['alice', true], ['bob', false]]);
  assert.equal(remote[0].message.sid, message.sid);
  await h.sleep(200);
  assert.equal(local.length, 2, 'no echo of one\'s own message');
});

test('removing a stream reaches the other client', async () => {
  const name = h.unique('gone');
  const mine = await alice.stream(name);
  const theirs = await bob.stream(name);
  await h.subscribed(theirs);
  const removed = h.waitFor(theirs, 'removed');
  await mine.removeStream();
  assert.deepEqual(await removed, { isLocal: false });
});
