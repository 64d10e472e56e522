"""matrix-nio against the room directory: aliases put, resolved (also without an access token),
joined through and deleted with nio's calls; a room's directory visibility read with nio's
room_get_visibility and set with `PUT /directory/list/room/{roomId}` (nio has no call for it,
so it goes through `AsyncClient.send`); the public room list read with nio's
list_public_rooms, both as GET (no filter) and as POST (a search term), paged with
next_batch."""

import uuid

import helpers
from matrix_helpers import CONFIG, close, raw, run, user
from nio import Api, AsyncClient


def test_aliases_are_put_resolved_joined_through_and_deleted():
    async def flow():
        from nio import (
            JoinResponse,
            RoomDeleteAliasResponse,
            RoomPreset,
            RoomPutAliasResponse,
            RoomResolveAliasError,
            RoomResolveAliasResponse,
        )

        a, b = await user(), await user()
        anonymous = AsyncClient(helpers.URL, config=CONFIG)
        try:
            room = (await a.room_create(preset=RoomPreset.public_chat)).room_id
            other = (await a.room_create()).room_id
            alias = f"#nio-{uuid.uuid4().hex[:8]}:localhost"
            put = await a.room_put_alias(alias, room)
            assert isinstance(put, RoomPutAliasResponse) and put.transport_response.status == 200, put
            # nio 0.26 parses every answer to room_put_alias / room_delete_alias as success (their
            # from_dict checks nothing), so refusals are read from the status and body nio got.
            taken = await a.room_put_alias(alias, other)
            assert taken.transport_response.status == 409, "an alias names one room"
            assert (await taken.transport_response.json())["errcode"] == "M_UNKNOWN"

            resolved = await anonymous.room_resolve_alias(alias)
            assert isinstance(resolved, RoomResolveAliasResponse), resolved
            assert (resolved.room_alias, resolved.room_id, resolved.servers) == (alias, room, ["localhost"])
            joined = await b.join(alias)
            assert isinstance(joined, JoinResponse) and joined.room_id == room, joined

            deleted = await a.room_delete_alias(alias)
            assert isinstance(deleted, RoomDeleteAliasResponse) and deleted.transport_response.status == 200
            gone = await anonymous.room_resolve_alias(alias)
            assert isinstance(gone, RoomResolveAliasError) and gone.status_code == "M_NOT_FOUND", gone
            again = await a.room_delete_alias(alias)
            assert again.transport_response.status == 404, again
            assert (await again.transport_response.json())["errcode"] == "M_NOT_FOUND"
            # Free again, so it can name the other room.
            assert (await a.room_put_alias(alias, other)).transport_response.status == 200
            assert (await b.room_resolve_alias(alias)).room_id == other
        finally:
            await close(a, b, anonymous)

    run(flow())


def test_visibility_publishes_rooms_in_the_public_list_which_pages_and_searches():
    async def flow():
        from nio import RoomGetVisibilityResponse, RoomPreset, RoomVisibility
        from nio.responses import PublicRoomsResponse  # not exported by nio's package

        a, b = await user(), await user()
        anonymous = AsyncClient(helpers.URL, config=CONFIG)
        try:
            word = "dir" + uuid.uuid4().hex[:10]
            listed = (await a.room_create(preset=RoomPreset.public_chat, name=f"{word} one",
                                          topic="first of two")).room_id
            second = (await a.room_create(visibility=RoomVisibility.public, preset=RoomPreset.public_chat,
                                          name=f"{word} two")).room_id
            shown = await a.room_get_visibility(listed)
            assert isinstance(shown, RoomGetVisibilityResponse), shown
            assert shown.visibility == "private"
            path = Api._build_path(["directory", "list", "room", listed])
            assert await raw(a, "PUT", path, {"visibility": "public"}) == (200, {})
            assert (await anonymous.room_get_visibility(listed)).visibility == "public"
            await b.join(listed)

            async def search(**kwargs):
                got = await b.list_public_rooms(filter_generic_search_term=word, **kwargs)
                assert isinstance(got, PublicRoomsResponse), got
                return got

            found = await search()
            assert sorted(r.room_id for r in found.public_rooms) == sorted([listed, second])
            entry = next(r for r in found.public_rooms if r.room_id == listed)
            assert (entry.name, entry.topic, entry.num_joined_members) == (f"{word} one", "first of two", 2)
            assert (entry.world_readable, entry.guest_can_join, entry.join_rule) == (False, False, "public")

            page = await search(limit=1)
            assert len(page.public_rooms) == 1 and page.next_batch
            rest = await search(limit=1, since=page.next_batch)
            assert {page.public_rooms[0].room_id, rest.public_rooms[0].room_id} == {listed, second}
            assert rest.prev_batch

            # Without a search term nio sends a GET, which needs no access token; paged to the end
            # (other tests publish rooms too).
            first_page = await anonymous.list_public_rooms()
            assert isinstance(first_page, PublicRoomsResponse), first_page
            everything, since = {r.room_id for r in first_page.public_rooms}, first_page.next_batch
            for _ in range(100):
                if not since:
                    break
                page = await anonymous.list_public_rooms(limit=50, since=since)
                assert isinstance(page, PublicRoomsResponse), page
                everything |= {r.room_id for r in page.public_rooms}
                since = page.next_batch
            assert {listed, second} <= everything
            limited = await anonymous.list_public_rooms(limit=1)
            assert len(limited.public_rooms) == 1 and limited.next_batch

            assert await raw(a, "PUT", path, {"visibility": "private"}) == (200, {})
            assert [r.room_id for r in (await search()).public_rooms] == [second]
        finally:
            await close(a, b, anonymous)

    run(flow())
