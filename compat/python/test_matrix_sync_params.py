"""matrix-nio's AsyncClient.sync with every /sync parameter the server takes (a missing and a
given timeout, full_state, set_presence, a filter by id and inline with its timeline, room,
lazy-loading, event_fields, event_format, presence and account_data parts) and the sections of
the answer as nio parses them: rooms.invite, rooms.leave (also include_leave on an initial
sync), summary, unread_notifications and the ephemeral events."""

import time

from matrix_helpers import close, localpart, pair, raw, run, shared_room, user
from matrix_helpers import bodies, initial_sync, members_in, sync
from nio import Api


def types_of(events):
    return [e.source["type"] for e in events]


def test_a_missing_timeout_answers_at_once_a_given_one_bounds_an_idle_wait_and_full_state_resends_state():
    async def flow():
        a = await user()
        try:
            room = (await a.room_create(name="full state", topic="all of it")).room_id
            await sync(a)
            await sync(a)
            # nio leaves `timeout` out for timeout=0: the spec's default is 0, no wait.
            started = time.monotonic()
            idle = await sync(a)
            assert time.monotonic() - started < 1.5, "a sync without timeout must not wait"
            assert room not in idle.rooms.join, "nothing new: the room is left out"

            started = time.monotonic()
            waited = await sync(a, timeout=1000)
            elapsed = time.monotonic() - started
            assert 0.8 <= elapsed < 8, f"an idle long-poll of 1 s came back after {elapsed:.2f} s"
            assert waited.rooms.join == {} and waited.next_batch

            # full_state on an incremental sync with nothing new: every room with all its state
            # ("all state events will be returned, even if since is non-empty"), at once.
            started = time.monotonic()
            full = await sync(a, full_state=True, timeout=10000)
            assert time.monotonic() - started < 5, "full_state answers at once"
            assert room in full.rooms.join
            info = full.rooms.join[room]
            assert info.timeline.events == []
            state = {(e.source["type"], e.source["state_key"]) for e in info.state}
            for wanted in [("m.room.create", ""), ("m.room.member", a.user_id), ("m.room.power_levels", ""),
                           ("m.room.join_rules", ""), ("m.room.name", ""), ("m.room.topic", "")]:
                assert wanted in state, (wanted, sorted(state))
            assert a.rooms[room].name == "full state"
        finally:
            await close(a)

    run(flow())


def test_set_presence_online_unavailable_and_offline_and_others_see_it():
    async def flow():
        from nio import PresenceEvent, PresenceGetResponse

        a, b = await pair()
        try:
            room = await shared_room(a, b)
            await sync(b)

            async def presence_of_a():
                got = await b.get_presence(a.user_id)
                assert isinstance(got, PresenceGetResponse), got
                return got.presence

            await sync(a, set_presence="unavailable")
            assert await presence_of_a() == "unavailable"
            seen = await sync(b)
            theirs = [e for e in seen.presence_events if isinstance(e, PresenceEvent) and e.user_id == a.user_id]
            assert [e.presence for e in theirs] == ["unavailable"], seen.presence_events
            assert b.rooms[room].users[a.user_id].presence == "unavailable"

            await a.set_presence("offline")
            # set_presence=offline: polling does not bring the user back online.
            await sync(a, set_presence="offline")
            assert await presence_of_a() == "offline"

            await sync(a, set_presence="online")
            assert await presence_of_a() == "online"
            seen = await sync(b)
            theirs = [e for e in seen.presence_events if e.user_id == a.user_id]
            assert theirs and theirs[-1].presence == "online" and theirs[-1].currently_active is True
            assert b.rooms[room].users[a.user_id].presence == "online"
        finally:
            await close(a, b)

    run(flow())


def test_a_filter_by_id_or_inline_limits_the_timeline_and_picks_rooms():
    async def flow():
        from nio import UploadFilterResponse

        a = await user()
        try:
            room = (await a.room_create()).room_id
            other = (await a.room_create(name="other")).room_id
            for n in range(4):
                await a.room_send(room, "m.room.message", {"msgtype": "m.text", "body": f"m{n}"})
            uploaded = await a.upload_filter(room={"timeline": {"limit": 2}})
            assert isinstance(uploaded, UploadFilterResponse), uploaded
            path = Api._build_path(["user", a.user_id, "filter", uploaded.filter_id])
            status, stored = await raw(a, "GET", path)
            assert status == 200 and stored["room"]["timeline"]["limit"] == 2, (status, stored)

            by_id = await initial_sync(a, sync_filter=uploaded.filter_id)
            timeline = by_id.rooms.join[room].timeline
            assert bodies(timeline.events) == ["m2", "m3"]
            assert timeline.limited is True and timeline.prev_batch

            # A str goes verbatim: the same JSON a client would have uploaded.
            inline = await initial_sync(a, sync_filter='{"room":{"timeline":{"limit":1}}}')
            assert bodies(inline.rooms.join[room].timeline.events) == ["m3"]
            as_dict = await initial_sync(a, sync_filter={"room": {"timeline": {"limit": 3}}})
            assert bodies(as_dict.rooms.join[room].timeline.events) == ["m1", "m2", "m3"]

            async def joined(room_filter):
                return set((await initial_sync(a, sync_filter={"room": room_filter})).rooms.join)

            assert await joined({}) == {room, other}
            assert await joined({"rooms": [room]}) == {room}
            assert await joined({"not_rooms": [room]}) == {other}
            assert await joined({"rooms": [room, other], "not_rooms": [other]}) == {room}
            assert await joined({"rooms": []}) == set(), "an empty list matches no room"
        finally:
            await close(a)

    run(flow())


def test_timeline_filters_pick_types_and_senders():
    async def flow():
        a, b = await pair()
        try:
            room = await shared_room(a, b)
            since = (await sync(b)).next_batch
            await a.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "a1"})
            await a.room_send(room, "org.example.ping", {"n": 1})
            await b.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "b1"})

            async def timeline(timeline_filter):
                got = await sync(b, since=since, sync_filter={"room": {"timeline": timeline_filter}})
                return got.rooms.join[room].timeline.events if room in got.rooms.join else []

            everything = await timeline({})
            assert types_of(everything) == ["m.room.message", "org.example.ping", "m.room.message"]
            assert bodies(await timeline({"types": ["m.room.message"]})) == ["a1", "b1"]
            assert types_of(await timeline({"not_types": ["m.room.message"]})) == ["org.example.ping"]
            assert types_of(await timeline({"types": ["org.example.*"]})) == ["org.example.ping"]
            assert types_of(await timeline({"types": ["m.*"], "not_types": ["m.room.message"]})) == []
            assert types_of(await timeline({"senders": [a.user_id]})) == ["m.room.message", "org.example.ping"]
            assert bodies(await timeline({"not_senders": [a.user_id]})) == ["b1"]
            assert bodies(await timeline({"senders": [a.user_id], "not_senders": [a.user_id]})) == []
        finally:
            await close(a, b)

    run(flow())


def test_lazy_loading_sends_senders_members_once_but_always_the_gaps_memberships():
    async def flow():
        a, b, c = await user(), await user(), await user()
        try:
            room = (await a.room_create(name="lazy", invite=[b.user_id, c.user_id])).room_id
            await b.join(room)
            await c.join(room)
            await a.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "hello"})
            lazy = {"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 1}}}
            redundant = {"room": {"state": {"lazy_load_members": True, "include_redundant_members": True}}}

            everyone = await initial_sync(c, sync_filter={"room": {"timeline": {"limit": 1}}})
            assert dict(members_in(everyone.rooms.join[room].state)) == {
                a.user_id: "join", b.user_id: "join", c.user_id: "join"}

            first = await initial_sync(c, sync_filter=lazy)
            info = first.rooms.join[room]
            assert bodies(info.timeline.events) == ["hello"]
            # The sender and the syncing user; b sent nothing here and the room has a name.
            assert dict(members_in(info.state)) == {a.user_id: "join", c.user_id: "join"}
            assert set(c.rooms[room].users) >= {a.user_id, c.user_id}
            assert info.summary.joined_member_count == 3

            await a.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "again"})
            second = (await sync(c, sync_filter=lazy)).rooms.join[room]
            assert bodies(second.timeline.events) == ["again"]
            assert dict(members_in(second.state)) == {}, "a's member event was sent to this device already"

            await b.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "from b"})
            third = (await sync(c, sync_filter=lazy)).rooms.join[room]
            assert dict(members_in(third.state)) == {b.user_id: "join"}, "a new sender's member event comes once"

            await a.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "once more"})
            fourth = (await sync(c, sync_filter=redundant)).rooms.join[room]
            assert bodies(fourth.timeline.events) == ["once more"]
            assert dict(members_in(fourth.state)) == {a.user_id: "join"}, "include_redundant_members re-sends it"

            # A limited sync: the gap's state changes come in `state`, and "the server MUST return
            # membership events for events in the gap ... regardless as to whether or not they are
            # redundant" (a's is, and a sends nothing the timeline shows).
            await a.room_put_state(room, "m.room.topic", {"topic": "changed in the gap"})
            await a.room_put_state(room, "m.room.member", {"membership": "join", "displayname": "A in the gap"},
                                   state_key=a.user_id)
            for n in range(3):
                await b.room_send(room, "m.room.message", {"msgtype": "m.text", "body": f"gap {n}"})
            gappy = (await sync(c, sync_filter=lazy)).rooms.join[room]
            assert gappy.timeline.limited and bodies(gappy.timeline.events) == ["gap 2"]
            across = {(e.source["type"], e.source["state_key"]): e.source["content"] for e in gappy.state}
            assert across.get(("m.room.topic", ""), {}).get("topic") == "changed in the gap", across
            assert across.get(("m.room.member", a.user_id), {}).get("displayname") == "A in the gap", across
            assert c.rooms[room].topic == "changed in the gap"
            assert c.rooms[room].user_name(a.user_id) == "A in the gap"
        finally:
            await close(a, b, c)

    run(flow())


def test_event_fields_and_event_format_shape_the_events():
    async def flow():
        a = await user()
        try:
            room = (await a.room_create()).room_id
            await a.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "shaped"})
            timeline_only = {"timeline": {"types": ["m.room.message"], "limit": 1}}

            fields = ["type", "sender", "content.body"]
            shaped = await initial_sync(a, sync_filter={"event_fields": fields, "room": timeline_only})
            event = shaped.rooms.join[room].timeline.events[0].source
            assert event["type"] == "m.room.message" and event["sender"] == a.user_id
            assert event["content"]["body"] == "shaped"
            # The spec lets a server add fields; this one keeps exactly the paths asked for.
            assert set(event) == {"type", "sender", "content"} and event["content"] == {"body": "shaped"}, event

            client = await initial_sync(a, sync_filter={"event_format": "client", "room": timeline_only})
            event = client.rooms.join[room].timeline.events[0].source
            assert "room_id" not in event and event["content"]["body"] == "shaped"

            # `federation`: "the raw event as received over federation", a PDU, which always
            # names its room.
            federation = await initial_sync(a, sync_filter={"event_format": "federation", "room": timeline_only})
            event = federation.rooms.join[room].timeline.events[0].source
            assert event.get("room_id") == room, event
        finally:
            await close(a)

    run(flow())


def test_presence_and_account_data_filters():
    async def flow():
        from nio import PushRulesEvent, UnknownAccountDataEvent

        a, b = await pair()
        try:
            await shared_room(a, b)
            await a.set_presence("unavailable", "away")
            for kind in ("org.example.one", "org.example.two"):
                path = Api._build_path(["user", b.user_id, "account_data", kind])
                assert (await raw(b, "PUT", path, {"kind": kind}))[0] == 200

            def presence_users(response):
                return {e.user_id: e.presence for e in response.presence_events}

            unfiltered = await initial_sync(b)
            assert presence_users(unfiltered).get(a.user_id) == "unavailable"
            assert [e.status_msg for e in unfiltered.presence_events if e.user_id == a.user_id] == ["away"]
            kinds = {e.type if isinstance(e, UnknownAccountDataEvent) else type(e).__name__
                     for e in unfiltered.account_data_events}
            assert {"org.example.one", "org.example.two", "PushRulesEvent"} <= kinds, kinds

            none = await initial_sync(b, sync_filter={"presence": {"not_types": ["m.presence"]}})
            assert none.presence_events == []
            only_b = await initial_sync(b, sync_filter={"presence": {"senders": [b.user_id]}})
            assert a.user_id not in presence_users(only_b)
            not_a = await initial_sync(b, sync_filter={"presence": {"not_senders": [a.user_id]}})
            assert a.user_id not in presence_users(not_a)

            one = await initial_sync(b, sync_filter={"account_data": {"types": ["org.example.one"]}})
            assert [(e.type, e.content) for e in one.account_data_events] == [
                ("org.example.one", {"kind": "org.example.one"})]
            no_rules = await initial_sync(b, sync_filter={"account_data": {"not_types": ["m.push_rules"]}})
            assert not any(isinstance(e, PushRulesEvent) for e in no_rules.account_data_events)
            assert {e.type for e in no_rules.account_data_events} >= {"org.example.one", "org.example.two"}
        finally:
            await close(a, b)

    run(flow())


def test_invites_and_leaves_come_in_their_sections_and_include_leave_brings_old_rooms():
    async def flow():
        from nio import InviteMemberEvent, RoomMemberEvent

        a, b = await pair()
        try:
            await sync(b)
            declined = (await a.room_create(name="invite me", invite=[b.user_id])).room_id
            invited = await sync(b)
            assert declined in invited.rooms.invite
            assert {(e.state_key, e.membership) for e in invited.rooms.invite[declined].invite_state
                    if isinstance(e, InviteMemberEvent)} >= {(b.user_id, "invite"), (a.user_id, "join")}
            assert b.invited_rooms[declined].name == "invite me"

            await b.room_leave(declined)
            rejected = await sync(b)
            assert declined not in rejected.rooms.invite and declined in rejected.rooms.leave
            left = rejected.rooms.leave[declined].timeline.events
            assert [(e.state_key, e.membership) for e in left if isinstance(e, RoomMemberEvent)] == [
                (b.user_id, "leave")]

            visited = await shared_room(a, b, name="visited")
            await b.room_send(visited, "m.room.message", {"msgtype": "m.text", "body": "before leaving"})
            await sync(b)
            await b.room_leave(visited)
            await a.room_send(visited, "m.room.message", {"msgtype": "m.text", "body": "after leaving"})
            gone = await sync(b)
            assert visited in gone.rooms.leave and visited not in gone.rooms.join

            fresh = await initial_sync(b)
            assert declined not in fresh.rooms.leave and visited not in fresh.rooms.leave
            assert visited not in fresh.rooms.join
            with_leave = await initial_sync(b, sync_filter={"room": {"include_leave": True}})
            assert {declined, visited} <= set(with_leave.rooms.leave)
            history = with_leave.rooms.leave[visited].timeline.events
            assert "before leaving" in bodies(history)
            assert "after leaving" not in bodies(history), "nothing after the leave"
            assert dict(members_in(history + with_leave.rooms.leave[visited].state)).get(b.user_id) == "leave"
        finally:
            await close(a, b)

    run(flow())


def test_summary_heroes_and_unread_notifications():
    async def flow():
        from nio import ReceiptType, UpdateReceiptMarkerResponse

        # Named so that the order of joining differs from the order of the names.
        a = await user(localpart("nio-z"))
        b = await user(localpart("nio-m"))
        c = await user(localpart("nio-a"))
        try:
            room = (await a.room_create(invite=[b.user_id])).room_id
            await b.join(room)
            await a.room_invite(room, c.user_id)
            first = await initial_sync(b)
            summary = first.rooms.join[room].summary
            assert (summary.joined_member_count, summary.invited_member_count) == (2, 1)
            assert sorted(summary.heroes) == sorted([a.user_id, c.user_id])
            assert b.rooms[room].summary.invited_member_count == 1

            await a.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "plain"})
            mention = await a.room_send(room, "m.room.message",
                                        {"msgtype": "m.text", "body": f"hey {b.user_id.split(':')[0][1:]}"})
            counted = (await sync(b)).rooms.join[room].unread_notifications
            assert (counted.notification_count, counted.highlight_count) == (2, 1)
            assert (b.rooms[room].unread_notifications, b.rooms[room].unread_highlights) == (2, 1)

            read = await b.update_receipt_marker(room, mention.event_id, ReceiptType.read)
            assert isinstance(read, UpdateReceiptMarkerResponse), read
            cleared = (await sync(b)).rooms.join[room].unread_notifications
            assert (cleared.notification_count, cleared.highlight_count) == (0, 0)

            # Heroes are "the first 5 members of the room, ordered by stream ordering": a joined
            # before c was invited, whatever their names.
            assert summary.heroes == [a.user_id, c.user_id], summary.heroes
        finally:
            await close(a, b, c)

    run(flow())


def test_typing_stops_receipts_read_markers_and_the_ephemeral_filter():
    async def flow():
        from nio import FullyReadEvent, ReceiptEvent, ReceiptType, TypingNoticeEvent

        a, b = await pair()
        try:
            room = await shared_room(a, b)
            sent = await a.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "look"})
            await sync(b)

            await a.room_typing(room, typing_state=True, timeout=30000)
            before = b.next_batch
            await sync(b)
            assert b.rooms[room].typing_users == [a.user_id]
            no_typing = await sync(b, since=before, sync_filter={"room": {"ephemeral": {"not_types": ["m.typing"]}}})
            assert room not in no_typing.rooms.join or not any(
                isinstance(e, TypingNoticeEvent) for e in no_typing.rooms.join[room].ephemeral)
            await a.room_typing(room, typing_state=False)
            stopped = await sync(b)
            typing = [e for e in stopped.rooms.join[room].ephemeral if isinstance(e, TypingNoticeEvent)]
            assert [e.users for e in typing] == [[]]
            assert b.rooms[room].typing_users == []

            # A private receipt is the reader's alone; a public one reaches the room.
            await a.update_receipt_marker(room, sent.event_id, ReceiptType.read_private)
            private = await sync(b)
            assert room not in private.rooms.join or not any(
                isinstance(e, ReceiptEvent) for e in private.rooms.join[room].ephemeral)
            await a.update_receipt_marker(room, sent.event_id, ReceiptType.read)
            public = await sync(b)
            receipts = [r for e in public.rooms.join[room].ephemeral if isinstance(e, ReceiptEvent)
                        for r in e.receipts]
            assert [(r.event_id, r.receipt_type, r.user_id) for r in receipts] == [
                (sent.event_id, "m.read", a.user_id)]
            assert b.rooms[room].read_receipts[a.user_id].event_id == sent.event_id

            await b.room_read_markers(room, fully_read_event=sent.event_id)
            marked = await sync(b)
            fully = [e for e in marked.rooms.join[room].account_data if isinstance(e, FullyReadEvent)]
            assert [e.event_id for e in fully] == [sent.event_id]
            assert b.rooms[room].fully_read_marker == sent.event_id
        finally:
            await close(a, b)

    run(flow())
