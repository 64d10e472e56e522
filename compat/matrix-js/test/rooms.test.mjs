// Two users meet in a room through matrix-js-sdk's own calls and event emitters: registration,
// password login, startup sync, invite and join, messages, typing, read receipts, back
// pagination, room state, and leaving. Each step builds on the previous ones, so after a
// failure the rest are skipped rather than failing for the same cause.

import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { EventType, RoomEvent, RoomMemberEvent, RoomStateEvent, SyncState } from "matrix-js-sdk";
import { logIn, refused, register, start, uniqueName, until, waitFor, within } from "./helpers.mjs";

const password = "correct horse battery staple";
const alice = { localpart: uniqueName("alice") };
const bob = { localpart: uniqueName("bob") };
const started = [];
let roomId;
let message; // bob's copy of alice's first message

let broken = false;
function step(name, body) {
  it(name, async (t) => {
    if (broken) {
      t.skip("an earlier step failed");
      return;
    }
    try {
      await body(t);
    } catch (error) {
      broken = true;
      throw error;
    }
  });
}

/** The bodies of the `m.room.message` events in `room`'s live timeline, oldest first. */
function bodies(room) {
  return room
    .getLiveTimeline()
    .getEvents()
    .filter((e) => e.getType() === EventType.RoomMessage)
    .map((e) => e.getContent().body);
}

describe("matrix-js-sdk: two users in a room", () => {
  after(() => {
    for (const matrix of started) matrix.stopClient();
  });

  step("registers two users with an m.login.dummy stage", async () => {
    for (const user of [alice, bob]) {
      const registered = await register(user.localpart, password);
      assert.match(registered.user_id, new RegExp(`^@${user.localpart}:.+`));
      assert.ok(registered.access_token, "registration logs in unless inhibit_login is set");
      assert.ok(registered.device_id);
      user.userId = registered.user_id;
      user.registeredDevice = registered.device_id;
    }
  });

  step("logs both in with their passwords, each as a new device", async () => {
    // alice through loginRequest (an m.id.user identifier), bob through the deprecated
    // loginWithPassword, which still sends the top-level `user` field.
    const a = await logIn(alice.localpart, password);
    const b = await logIn(bob.localpart, password, { legacy: true });
    for (const [user, { response, client }] of [
      [alice, a],
      [bob, b],
    ]) {
      assert.equal(response.user_id, user.userId);
      assert.ok(response.access_token);
      assert.notEqual(response.device_id, user.registeredDevice, "a login is a new device");
      user.client = client;
      const whoami = await within(client.whoami(), "whoami");
      assert.equal(whoami.user_id, user.userId);
      assert.equal(whoami.device_id, response.device_id);
    }
  });

  step("starts both clients and reaches PREPARED with nothing refused", async () => {
    const before = refused.length;
    for (const user of [alice, bob]) {
      started.push(user.client);
      await start(user.client, { initialSyncLimit: 8, lazyLoadMembers: true });
      // The catch-up sync that follows at once may already have moved it on to SYNCING.
      assert.ok([SyncState.Prepared, SyncState.Syncing].includes(user.client.getSyncState()));
      assert.deepEqual(user.client.getRooms(), [], "a new user is in no rooms");
    }
    // /versions, /pushrules/, /user/{id}/filter, /capabilities and /sync all answered 2xx.
    assert.deepEqual(refused.slice(before), []);
  });

  step("alice creates a named room inviting bob, and bob sees the invite", async () => {
    const name = `Compat room ${alice.localpart}`;
    const invited = waitFor(
      bob.client,
      RoomMemberEvent.Membership,
      (_event, member) => member.userId === bob.userId && member.membership === "invite",
      "bob's invite",
    );
    const created = await within(alice.client.createRoom({ name, invite: [bob.userId] }), "createRoom");
    assert.match(created.room_id, /^!.+:.+/);
    roomId = created.room_id;
    const [event, member] = await invited;
    assert.equal(member.roomId, roomId);
    assert.equal(event.getSender(), alice.userId, "alice sent the invite");
    const room = bob.client.getRoom(roomId);
    assert.ok(room, "bob's client knows the room");
    assert.equal(room.getMyMembership(), "invite");
    assert.equal(room.name, name, "the invite's stripped state carries the room's name");
  });

  step("bob joins, and both sides see two joined members", async () => {
    const aliceSeesJoin = waitFor(
      alice.client,
      RoomMemberEvent.Membership,
      (_event, member) => member.roomId === roomId && member.userId === bob.userId && member.membership === "join",
      "bob's join, on alice's side",
    );
    const joined = await within(bob.client.joinRoom(roomId), "joinRoom");
    assert.equal(joined.roomId, roomId);
    await until(
      bob.client,
      RoomEvent.MyMembership,
      () => bob.client.getRoom(roomId)?.getMyMembership() === "join",
      "bob's own membership to become join",
    );
    await aliceSeesJoin;
    for (const user of [alice, bob]) {
      const room = user.client.getRoom(roomId);
      assert.equal(room.getJoinedMemberCount(), 2, `${user.localpart} counts two joined members`);
      assert.equal(room.name, `Compat room ${alice.localpart}`);
    }
  });

  step("alice's text message reaches bob's timeline", async () => {
    const body = `hello from ${alice.localpart}`;
    const received = waitFor(
      bob.client,
      RoomEvent.Timeline,
      (event, room, toStart) => room?.roomId === roomId && !toStart && event.getContent().body === body,
      "alice's message in bob's timeline",
    );
    const sent = await within(alice.client.sendTextMessage(roomId, body), "sendTextMessage");
    assert.match(sent.event_id, /^\$/);
    const [event] = await received;
    assert.equal(event.getId(), sent.event_id);
    assert.equal(event.getSender(), alice.userId);
    assert.equal(event.getType(), EventType.RoomMessage);
    assert.equal(event.getContent().msgtype, "m.text");
    message = event;
  });

  step("bob's typing notification shows on alice's side, and its end too", async () => {
    const typing = (expected) =>
      waitFor(
        alice.client,
        RoomMemberEvent.Typing,
        (_event, member) => member.roomId === roomId && member.userId === bob.userId && member.typing === expected,
        `bob typing=${expected}, on alice's side`,
      );
    const starts = typing(true);
    await within(bob.client.sendTyping(roomId, true, 30_000), "sendTyping(true)");
    const [event] = await starts;
    assert.deepEqual(event.getContent().user_ids, [bob.userId]);
    const stops = typing(false);
    await within(bob.client.sendTyping(roomId, false), "sendTyping(false)");
    const [stopped] = await stops;
    assert.deepEqual(stopped.getContent().user_ids, []);
  });

  step("bob's read receipt reaches alice", async () => {
    const room = alice.client.getRoom(roomId);
    const receipt = until(
      alice.client,
      RoomEvent.Receipt,
      () => room.getEventReadUpTo(bob.userId) === message.getId(),
      "bob's read receipt, on alice's side",
    );
    await within(bob.client.sendReadReceipt(message), "sendReadReceipt");
    await receipt;
    const read = room.getReadReceiptForUserId(bob.userId, true);
    assert.equal(read?.eventId, message.getId());
    assert.equal(typeof read?.data?.ts, "number", "the receipt carries its timestamp");
    assert.ok(room.getUsersReadUpTo(room.findEventById(message.getId())).includes(bob.userId));
  });

  step("a new device syncs only the last 8 events, and scrollback brings back older ones", async () => {
    const count = 12;
    const last = `page ${count - 1}`;
    const arrived = waitFor(
      bob.client,
      RoomEvent.Timeline,
      (event, room) => room?.roomId === roomId && event.getContent().body === last,
      "the last page on bob's first device",
    );
    for (let i = 0; i < count; i++) {
      await within(alice.client.sendTextMessage(roomId, `page ${i}`), `sending page ${i}`);
    }
    await arrived;

    const { client: fresh } = await logIn(bob.localpart, password);
    started.push(fresh);
    await start(fresh, { initialSyncLimit: 8, lazyLoadMembers: true });
    const room = fresh.getRoom(roomId);
    assert.ok(room, "the new device's first sync includes the room");
    const initial = [...room.getLiveTimeline().getEvents()]; // the SDK's array grows in place
    assert.ok(initial.length <= 8, `at most initialSyncLimit events at first, got ${initial.length}`);
    assert.equal(initial.at(-1).getContent().body, last);
    assert.ok(!bodies(room).includes("page 0"), "the oldest page is not in the first sync");
    assert.ok(room.oldState.paginationToken, "a limited timeline comes with a token to page back from");

    await within(fresh.scrollback(room, 10), "scrollback");
    const after = bodies(room);
    const pages = after.filter((b) => b.startsWith("page "));
    assert.deepEqual(
      pages,
      Array.from({ length: count }, (_, i) => `page ${i}`),
      "scrollback added the older pages, in order, before the live ones",
    );
    assert.ok(room.getLiveTimeline().getEvents().length > initial.length);

    // Paging on reaches the room's creation, where the token runs out; bounded, as 10 events a
    // page covers this room's history several times over.
    for (let i = 0; i < 5 && room.oldState.paginationToken !== null; i++) {
      await within(fresh.scrollback(room, 10), "scrollback to the start");
    }
    assert.equal(room.oldState.paginationToken, null, "the start of the room is reached");
    assert.equal(room.getLiveTimeline().getEvents()[0].getType(), EventType.RoomCreate);
  });

  step("alice's topic reaches bob's room state", async () => {
    const topic = `topic set by ${alice.localpart}`;
    const readTopic = () =>
      bob.client.getRoom(roomId).currentState.getStateEvents(EventType.RoomTopic, "")?.getContent().topic;
    const seen = until(bob.client, RoomStateEvent.Events, () => readTopic() === topic, "the topic on bob's side");
    const sent = await within(alice.client.setRoomTopic(roomId, topic), "setRoomTopic");
    assert.match(sent.event_id, /^\$/);
    await seen;
    const event = bob.client.getRoom(roomId).currentState.getStateEvents(EventType.RoomTopic, "");
    assert.equal(event.getSender(), alice.userId);
    assert.equal(event.getId(), sent.event_id);
  });

  step("bob leaves, and alice sees one joined member left", async () => {
    const aliceSeesLeave = waitFor(
      alice.client,
      RoomMemberEvent.Membership,
      (_event, member) => member.roomId === roomId && member.userId === bob.userId && member.membership === "leave",
      "bob's leave, on alice's side",
    );
    await within(bob.client.leave(roomId), "leave");
    await until(
      bob.client,
      RoomEvent.MyMembership,
      () => bob.client.getRoom(roomId)?.getMyMembership() === "leave",
      "bob's own membership to become leave",
    );
    await aliceSeesLeave;
    assert.equal(alice.client.getRoom(roomId).getJoinedMemberCount(), 1);
  });

  step("no request was answered with an unknown endpoint", () => {
    const missing = refused.filter((r) => r.status === 404 || r.body.includes("M_UNRECOGNIZED"));
    assert.deepEqual(missing, []);
  });

  step("the clients stop cleanly", () => {
    for (const matrix of started.splice(0)) {
      matrix.stopClient();
      assert.equal(matrix.clientRunning, false);
    }
  });
});
