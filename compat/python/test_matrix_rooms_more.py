"""matrix-nio's AsyncClient on the rest of the room API: createRoom's options (preset,
visibility, alias, initial_state, name, topic, invite, is_direct) read back through nio's state
calls and nio's rooms after /sync; state with and without a state key (and with the trailing
slash nio never sends); every membership change (invite, join by id and by alias, kick, ban,
unban, leave, forget, knock); transaction ids; redactions; and /messages paged with sync
tokens in both directions and filtered.

Where nio has no call (`POST /rooms/{id}/join`, `GET /rooms/{id}/members`, a trailing-slash
state path) the request is built with nio's own `Api._build_path` and sent with
`AsyncClient.send`; where nio drops a part of a response (`rooms.knock` in /sync) the test reads
the body nio received."""

import uuid

import helpers
from matrix_helpers import CONFIG, close, localpart, pair, raw, run, user
from matrix_helpers import bodies, initial_sync, members_in, sync
from nio import Api, AsyncClient


def test_create_room_applies_preset_alias_initial_state_name_topic_and_direct_invites():
    async def flow():
        from nio import (
            InviteMemberEvent,
            JoinResponse,
            RoomCreateResponse,
            RoomGetStateEventResponse,
            RoomGetStateResponse,
            RoomGetVisibilityResponse,
            RoomPreset,
            RoomResolveAliasResponse,
            RoomVisibility,
        )

        a, b = await pair()
        try:
            alias_local = "nio-" + uuid.uuid4().hex[:8]
            alias = f"#{alias_local}:localhost"
            created = await a.room_create(
                visibility=RoomVisibility.public,
                alias=alias_local,
                name="Created by nio",
                topic="from the topic parameter",
                preset=RoomPreset.public_chat,
                invite=[b.user_id],
                is_direct=True,
                initial_state=[
                    {"type": "m.room.history_visibility", "state_key": "",
                     "content": {"history_visibility": "world_readable"}},
                    {"type": "m.room.topic", "state_key": "", "content": {"topic": "from initial_state"}},
                    {"type": "org.example.marker", "state_key": "k", "content": {"v": 1}},
                ],
            )
            assert isinstance(created, RoomCreateResponse), created
            room = created.room_id

            async def content(event_type, state_key=""):
                got = await a.room_get_state_event(room, event_type, state_key)
                assert isinstance(got, RoomGetStateEventResponse), (event_type, got)
                return got.content

            # The preset's events, then initial_state over them, then name and topic over that.
            assert (await content("m.room.join_rules"))["join_rule"] == "public"
            assert (await content("m.room.guest_access"))["guest_access"] == "forbidden"
            assert (await content("m.room.history_visibility"))["history_visibility"] == "world_readable"
            assert (await content("m.room.topic"))["topic"] == "from the topic parameter"
            assert (await content("m.room.name"))["name"] == "Created by nio"
            assert await content("org.example.marker", "k") == {"v": 1}
            assert (await content("m.room.canonical_alias"))["alias"] == alias
            invited = await content("m.room.member", b.user_id)
            assert invited["membership"] == "invite" and invited["is_direct"] is True, invited
            create = await content("m.room.create")
            assert create.get("room_version") == "10" or "creator" in create, create

            everything = await a.room_get_state(room)
            assert isinstance(everything, RoomGetStateResponse), everything
            types = {(e["type"], e["state_key"]) for e in everything.events}
            for wanted in [("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.member", a.user_id),
                           ("m.room.member", b.user_id), ("org.example.marker", "k")]:
                assert wanted in types, (wanted, sorted(types))

            resolved = await b.room_resolve_alias(alias)
            assert isinstance(resolved, RoomResolveAliasResponse), resolved
            assert (resolved.room_id, resolved.servers) == (room, ["localhost"])
            shown = await b.room_get_visibility(room)
            assert isinstance(shown, RoomGetVisibilityResponse), shown
            assert shown.visibility == "public"

            # The invitee sees the invite (with the room's name) and joins by the alias.
            invited_sync = await sync(b)
            assert room in invited_sync.rooms.invite
            invite_members = [e for e in invited_sync.rooms.invite[room].invite_state
                              if isinstance(e, InviteMemberEvent) and e.state_key == b.user_id]
            assert [e.membership for e in invite_members] == ["invite"]
            assert b.invited_rooms[room].name == "Created by nio"
            assert b.invited_rooms[room].inviter == a.user_id

            joined = await b.join(alias)
            assert isinstance(joined, JoinResponse), joined
            assert joined.room_id == room
            await sync(b)
            assert room in b.rooms and room not in b.invited_rooms
            nio_room = b.rooms[room]
            assert (nio_room.name, nio_room.topic, nio_room.canonical_alias) == (
                "Created by nio", "from the topic parameter", alias)
            assert (nio_room.join_rule, nio_room.history_visibility) == ("public", "world_readable")
            assert set(nio_room.users) == {a.user_id, b.user_id}
        finally:
            await close(a, b)

    run(flow())


def test_private_presets_keep_strangers_out_and_trusted_invitees_get_the_creators_power():
    async def flow():
        from nio import JoinError, RoomGetStateEventResponse, RoomPreset

        a, b = await pair()
        try:
            private = (await a.room_create(preset=RoomPreset.private_chat)).room_id
            rules = await a.room_get_state_event(private, "m.room.join_rules")
            assert isinstance(rules, RoomGetStateEventResponse), rules
            assert rules.content["join_rule"] == "invite"
            visibility = await a.room_get_state_event(private, "m.room.history_visibility")
            assert visibility.content["history_visibility"] == "shared"
            guests = await a.room_get_state_event(private, "m.room.guest_access")
            assert guests.content["guest_access"] == "can_join"
            refused = await b.join(private)
            assert isinstance(refused, JoinError), refused
            assert refused.status_code == "M_FORBIDDEN"

            trusted = (await a.room_create(preset=RoomPreset.trusted_private_chat, invite=[b.user_id])).room_id
            levels = await a.room_get_state_event(trusted, "m.room.power_levels")
            assert isinstance(levels, RoomGetStateEventResponse), levels
            users = levels.content["users"]
            assert users.get(b.user_id) == users.get(a.user_id) == 100, users
            await b.join(trusted)
            await sync(b)
            assert b.rooms[trusted].power_levels.get_user_level(b.user_id) == 100
        finally:
            await close(a, b)

    run(flow())


def test_state_with_and_without_a_state_key_and_with_a_trailing_slash():
    async def flow():
        from nio import RoomGetStateEventError, RoomGetStateEventResponse, RoomPutStateResponse

        a = await user()
        try:
            room = (await a.room_create()).room_id
            await sync(a)
            # nio sends `…/state/{type}` for the empty state key: no slash, no key.
            empty = await a.room_put_state(room, "org.example.s", {"n": 1})
            assert isinstance(empty, RoomPutStateResponse), empty
            keyed = await a.room_put_state(room, "org.example.s", {"n": 2}, state_key="k")
            assert isinstance(keyed, RoomPutStateResponse), keyed
            assert keyed.event_id != empty.event_id
            # The spec's form for the empty key keeps the trailing slash.
            slash = Api._build_path(["rooms", room, "state", "org.example.s"]) + "/"
            status, body = await raw(a, "PUT", slash, {"n": 3})
            assert status == 200 and body["event_id"].startswith("$"), (status, body)

            got = await a.room_get_state_event(room, "org.example.s")
            assert isinstance(got, RoomGetStateEventResponse), got
            assert got.content == {"n": 3}
            got_key = await a.room_get_state_event(room, "org.example.s", "k")
            assert got_key.content == {"n": 2}
            assert await raw(a, "GET", slash) == (200, {"n": 3})
            missing = await a.room_get_state_event(room, "org.example.s", "nope")
            assert isinstance(missing, RoomGetStateEventError), missing
            assert missing.status_code == "M_NOT_FOUND"

            every = {(e["type"], e["state_key"]): e["content"] for e in (await a.room_get_state(room)).events}
            assert every[("org.example.s", "")] == {"n": 3} and every[("org.example.s", "k")] == {"n": 2}

            timeline = (await sync(a)).rooms.join[room].timeline.events
            states = [(e.source["type"], e.source["state_key"], e.source["content"]) for e in timeline]
            assert states == [("org.example.s", "", {"n": 1}), ("org.example.s", "k", {"n": 2}),
                              ("org.example.s", "", {"n": 3})], states
        finally:
            await close(a)

    run(flow())


def test_invite_join_kick_ban_unban_leave_and_forget():
    async def flow():
        from nio import (
            JoinedRoomsResponse,
            JoinError,
            RoomBanResponse,
            RoomForgetError,
            RoomForgetResponse,
            RoomInviteError,
            RoomKickResponse,
            RoomLeaveResponse,
            RoomUnbanResponse,
        )

        a, b = await pair()
        try:
            room = (await a.room_create(name="membership")).room_id
            await a.room_invite(room, b.user_id)
            await sync(b)
            # The spec's other join route, which nio never uses.
            status, body = await raw(b, "POST", Api._build_path(["rooms", room, "join"]), {})
            assert (status, body) == (200, {"room_id": room})
            listed = await b.joined_rooms()
            assert isinstance(listed, JoinedRoomsResponse), listed
            assert room in listed.rooms
            await sync(b)
            assert b.user_id in b.rooms[room].users

            kicked = await a.room_kick(room, b.user_id, reason="cool off")
            assert isinstance(kicked, RoomKickResponse), kicked
            left = await sync(b)
            assert room in left.rooms.leave and room not in left.rooms.join
            gone = [e for e in left.rooms.leave[room].timeline.events if getattr(e, "state_key", None) == b.user_id]
            assert [(e.membership, e.sender, e.content.get("reason")) for e in gone] == [
                ("leave", a.user_id, "cool off")]
            assert room not in (await b.joined_rooms()).rooms
            again = await b.join(room)
            assert isinstance(again, JoinError) and again.status_code == "M_FORBIDDEN", again

            banned = await a.room_ban(room, b.user_id, reason="spam")
            assert isinstance(banned, RoomBanResponse), banned
            ban = await a.room_get_state_event(room, "m.room.member", b.user_id)
            assert (ban.content["membership"], ban.content.get("reason")) == ("ban", "spam")
            no_invite = await a.room_invite(room, b.user_id)
            assert isinstance(no_invite, RoomInviteError) and no_invite.status_code == "M_FORBIDDEN", no_invite
            unbanned = await a.room_unban(room, b.user_id)
            assert isinstance(unbanned, RoomUnbanResponse), unbanned
            after = await a.room_get_state_event(room, "m.room.member", b.user_id)
            assert after.content["membership"] == "leave"

            await a.room_invite(room, b.user_id)
            await b.join(room)
            refused = await b.room_forget(room)
            assert isinstance(refused, RoomForgetError), "a joined room cannot be forgotten"
            assert refused.status_code == "M_UNKNOWN" and refused.transport_response.status == 400
            assert isinstance(await b.room_leave(room), RoomLeaveResponse)
            await sync(b)
            forgot = await b.room_forget(room)
            assert isinstance(forgot, RoomForgetResponse), forgot
            assert room not in b.rooms, "nio drops a forgotten room"

            members = await a.room_get_state(room)
            history = await a.room_messages(room, limit=50)
            assert [m for m in members_in(reversed(history.chunk)) if m[0] == b.user_id] == [
                (b.user_id, "invite"), (b.user_id, "join"), (b.user_id, "leave"), (b.user_id, "ban"),
                (b.user_id, "leave"), (b.user_id, "invite"), (b.user_id, "join"), (b.user_id, "leave")]
            assert {(e["state_key"], e["content"]["membership"]) for e in members.events
                    if e["type"] == "m.room.member"} == {(a.user_id, "join"), (b.user_id, "leave")}
        finally:
            await close(a, b)

    run(flow())


def test_knocking_asks_to_be_let_in_and_an_invite_answers():
    async def flow():
        from nio import JoinResponse, RoomKnockError, RoomKnockResponse, RoomPutStateResponse

        a, b = await pair()
        try:
            alias_local = "nio-" + uuid.uuid4().hex[:8]
            room = (await a.room_create(name="knock knock", alias=alias_local)).room_id
            closed = (await a.room_create()).room_id
            enabled = await a.room_enable_knocking(room)
            assert isinstance(enabled, RoomPutStateResponse), enabled
            await sync(a)
            await sync(b)

            refused = await b.room_knock(closed)
            assert isinstance(refused, RoomKnockError), "an invite-only room takes no knocks"
            assert refused.status_code == "M_FORBIDDEN"
            # /knock/{roomIdOrAlias}: nio puts whatever it is given in the path.
            knocked = await b.room_knock(f"#{alias_local}:localhost", reason="let me in")
            assert isinstance(knocked, RoomKnockResponse), knocked
            assert knocked.room_id == room

            # The room's members see the knock in the timeline...
            seen = await sync(a)
            knocks = [e for e in seen.rooms.join[room].timeline.events if getattr(e, "state_key", None) == b.user_id]
            assert [(e.membership, e.content.get("reason")) for e in knocks] == [("knock", "let me in")]
            # ...and the knocker gets rooms.knock, which nio 0.26 does not parse: read from the body
            # nio received.
            mine = await sync(b)
            body = await mine.transport_response.json()
            assert room in body["rooms"].get("knock", {}), body["rooms"]
            stripped = body["rooms"]["knock"][room]["knock_state"]["events"]
            kinds = {(e["type"], e.get("state_key")): e["content"] for e in stripped}
            assert kinds[("m.room.member", b.user_id)]["membership"] == "knock"
            assert kinds[("m.room.join_rules", "")]["join_rule"] == "knock"
            assert kinds[("m.room.name", "")]["name"] == "knock knock"
            assert room not in mine.rooms.join and room not in mine.rooms.invite

            await a.room_invite(room, b.user_id)
            joined = await b.join(room)
            assert isinstance(joined, JoinResponse), joined
            await sync(b)
            assert b.user_id in b.rooms[room].users
        finally:
            await close(a, b)

    run(flow())


def test_transaction_ids_are_idempotent_per_device_and_echoed_only_to_the_sender():
    async def flow():
        from nio import LoginResponse, RoomSendResponse

        name = localpart()
        phone = await user(name)
        laptop = AsyncClient(helpers.URL, name, config=CONFIG)
        try:
            assert isinstance(await laptop.login("pw", device_name="laptop"), LoginResponse)
            room = (await phone.room_create()).room_id
            await sync(phone)
            await sync(laptop)
            content = {"msgtype": "m.text", "body": "once"}
            first = await phone.room_send(room, "m.room.message", content, tx_id="txn-1")
            retried = await phone.room_send(room, "m.room.message", content, tx_id="txn-1")
            assert isinstance(first, RoomSendResponse) and isinstance(retried, RoomSendResponse)
            assert retried.event_id == first.event_id, "a retried transaction is the same event"
            other_device = await laptop.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "twice"},
                                                  tx_id="txn-1")
            assert other_device.event_id != first.event_id, "transaction ids are per device"

            mine = (await sync(phone)).rooms.join[room].timeline.events
            assert [(e.event_id, e.transaction_id) for e in mine] == [
                (first.event_id, "txn-1"), (other_device.event_id, None)]
            theirs = (await sync(laptop)).rooms.join[room].timeline.events
            assert [(e.event_id, e.transaction_id) for e in theirs] == [
                (first.event_id, None), (other_device.event_id, "txn-1")]
        finally:
            await close(phone, laptop)

    run(flow())


def test_a_redaction_strips_the_event_everywhere_and_its_transaction_is_idempotent():
    async def flow():
        from nio import RedactedEvent, RedactionEvent, RoomRedactResponse

        a = await user()
        try:
            room = (await a.room_create()).room_id
            sent = await a.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "secret"})
            await sync(a)
            redacted = await a.room_redact(room, sent.event_id, reason="oops", tx_id="redact-1")
            assert isinstance(redacted, RoomRedactResponse), redacted
            again = await a.room_redact(room, sent.event_id, reason="oops", tx_id="redact-1")
            assert again.event_id == redacted.event_id, "a retried redaction is the same event"

            timeline = (await sync(a)).rooms.join[room].timeline.events
            redactions = [e for e in timeline if isinstance(e, RedactionEvent)]
            assert [(e.event_id, e.redacts, e.reason) for e in redactions] == [
                (redacted.event_id, sent.event_id, "oops")]

            fresh = (await initial_sync(a)).rooms.join[room].timeline.events
            original = [e for e in fresh if e.event_id == sent.event_id]
            assert len(original) == 1 and isinstance(original[0], RedactedEvent), original
            assert (original[0].redacter, original[0].reason) == (a.user_id, "oops")
            assert original[0].source["content"] == {}
            history = await a.room_messages(room, limit=5)
            paged = [e for e in history.chunk if e.event_id == sent.event_id]
            assert len(paged) == 1 and isinstance(paged[0], RedactedEvent), paged
            context = await a.room_context(room, sent.event_id, limit=1)
            assert isinstance(context.event, RedactedEvent), context.event
        finally:
            await close(a)

    run(flow())


def test_messages_pages_between_sync_tokens_both_ways_and_filters():
    async def flow():
        from nio import JoinedMembersResponse, MessageDirection, RoomMessagesResponse

        a, b = await pair()
        try:
            room = (await a.room_create(invite=[b.user_id])).room_id
            await b.join(room)
            before = (await sync(b)).next_batch
            await a.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "m0"})
            await b.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "m1"})
            await a.room_send(room, "m.room.message", {"msgtype": "m.image", "body": "m2", "url": "mxc://localhost/x"})
            after = (await sync(b)).next_batch

            forward = await b.room_messages(room, start=before, end=after, direction=MessageDirection.front)
            assert isinstance(forward, RoomMessagesResponse), forward
            assert bodies(forward.chunk) == ["m0", "m1", "m2"]
            backward = await b.room_messages(room, start=after, end=before, direction=MessageDirection.back)
            assert bodies(backward.chunk) == ["m2", "m1", "m0"]

            page = await b.room_messages(room, start=before, direction=MessageDirection.front, limit=2)
            assert bodies(page.chunk) == ["m0", "m1"] and page.end
            rest = await b.room_messages(room, start=page.end, end=after, direction=MessageDirection.front, limit=2)
            assert bodies(rest.chunk) == ["m2"]

            async def filtered(message_filter):
                got = await b.room_messages(room, start=after, end=before, message_filter=message_filter)
                assert isinstance(got, RoomMessagesResponse), got
                return bodies(got.chunk)

            assert await filtered({"senders": [b.user_id]}) == ["m1"]
            assert await filtered({"not_senders": [b.user_id]}) == ["m2", "m0"]
            assert await filtered({"types": ["m.room.*"], "not_senders": [a.user_id]}) == ["m1"]
            assert await filtered({"not_types": ["m.room.message"]}) == []
            assert await filtered({"contains_url": True}) == ["m2"]
            assert await filtered({"contains_url": False}) == ["m1", "m0"]

            status, members = await raw(b, "GET", Api._build_path(["rooms", room, "members"]))
            assert status == 200, members
            assert sorted((e["state_key"], e["content"]["membership"]) for e in members["chunk"]) == sorted(
                [(a.user_id, "join"), (b.user_id, "join")])
            joined = await b.joined_members(room)
            assert isinstance(joined, JoinedMembersResponse), joined
            assert sorted(m.user_id for m in joined.members) == sorted([a.user_id, b.user_id])
        finally:
            await close(a, b)

    run(flow())
