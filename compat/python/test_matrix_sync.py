"""matrix-nio's AsyncClient syncing against the Matrix face: the first sync fills nio's rooms
(name, topic, members), incremental syncs bring messages once, a long-poll returns when a
message arrives, a limited timeline is filled back with room_messages from prev_batch,
room_context finds an event's neighbours, and typing notices and read receipts arrive as
ephemeral events."""

import asyncio

from matrix_helpers import bodies, pair, run, shared_room


def test_first_and_incremental_syncs_fill_nios_rooms():
    async def flow():
        from nio import SyncResponse

        a, b = await pair()
        try:
            room = await shared_room(a, b, name="nio sync", topic="first topic")
            await a.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "one"})
            first = await b.sync(timeout=0, full_state=True)
            assert isinstance(first, SyncResponse), first
            assert room in b.rooms
            nio_room = b.rooms[room]
            assert nio_room.name == "nio sync"
            assert nio_room.topic == "first topic"
            assert set(nio_room.users) == {a.user_id, b.user_id}
            assert "one" in bodies(first.rooms.join[room].timeline.events)

            await a.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "two"})
            await a.room_put_state(room, "m.room.topic", {"topic": "second topic"})
            second = await b.sync(timeout=0)
            assert isinstance(second, SyncResponse), second
            assert bodies(second.rooms.join[room].timeline.events) == ["two"], "each message once"
            assert b.rooms[room].topic == "second topic"
            assert second.next_batch != first.next_batch
        finally:
            await a.close()
            await b.close()

    run(flow())


def test_a_long_poll_returns_when_a_message_arrives():
    async def flow():
        from nio import SyncResponse

        a, b = await pair()
        try:
            room = await shared_room(a, b)
            await b.sync(timeout=0)
            waiting = asyncio.ensure_future(b.sync(timeout=20000))
            await asyncio.sleep(0.5)
            assert not waiting.done(), "nothing new yet: the poll waits"
            await a.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "ping"})
            woke = await asyncio.wait_for(waiting, 15)
            assert isinstance(woke, SyncResponse), woke
            assert bodies(woke.rooms.join[room].timeline.events) == ["ping"]
        finally:
            await a.close()
            await b.close()

    run(flow())


def test_a_limited_timeline_is_filled_back_with_room_messages_and_context():
    async def flow():
        from nio import MessageDirection, RoomContextResponse, RoomMessagesResponse

        a, b = await pair()
        try:
            room = await shared_room(a, b)
            await b.sync(timeout=0)
            sent = []
            for n in range(8):
                reply = await a.room_send(room, "m.room.message", {"msgtype": "m.text", "body": f"m{n}"})
                sent.append(reply.event_id)
            limited = await b.sync(timeout=0, sync_filter={"room": {"timeline": {"limit": 3}}})
            timeline = limited.rooms.join[room].timeline
            assert timeline.limited
            assert bodies(timeline.events) == ["m5", "m6", "m7"]
            older = await b.room_messages(room, start=timeline.prev_batch, direction=MessageDirection.back, limit=4)
            assert isinstance(older, RoomMessagesResponse), older
            assert bodies(older.chunk) == ["m4", "m3", "m2", "m1"]
            rest = await b.room_messages(room, start=older.end, direction=MessageDirection.back, limit=1)
            assert bodies(rest.chunk) == ["m0"]

            context = await b.room_context(room, sent[4], limit=2)
            assert isinstance(context, RoomContextResponse), context
            assert context.event.body == "m4"
            assert bodies(context.events_before) == ["m3"]
            assert bodies(context.events_after) == ["m5"]
        finally:
            await a.close()
            await b.close()

    run(flow())


def test_typing_and_read_receipts_arrive_as_ephemeral_events():
    async def flow():
        from nio import ReceiptEvent, RoomTypingResponse, TypingNoticeEvent

        a, b = await pair()
        try:
            room = await shared_room(a, b)
            await b.sync(timeout=0)
            sent = await a.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "read me"})
            assert isinstance(await a.room_typing(room, typing_state=True, timeout=30000), RoomTypingResponse)
            got = await b.sync(timeout=0)
            typing = [e for e in got.rooms.join[room].ephemeral if isinstance(e, TypingNoticeEvent)]
            assert typing and typing[0].users == [a.user_id]
            assert b.rooms[room].unread_notifications == 1

            await b.room_read_markers(room, fully_read_event=sent.event_id, read_event=sent.event_id)
            seen = await a.sync(timeout=0)
            receipts = [e for e in seen.rooms.join[room].ephemeral if isinstance(e, ReceiptEvent)]
            readers = {(r.event_id, r.user_id) for e in receipts for r in e.receipts}
            assert (sent.event_id, b.user_id) in readers
        finally:
            await a.close()
            await b.close()

    run(flow())
