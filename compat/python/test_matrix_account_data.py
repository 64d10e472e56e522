"""matrix-nio against account data and push rules: global and per-room account data written
(nio has no call for it: `PUT /user/{userId}[/rooms/{roomId}]/account_data/{type}` through
`AsyncClient.send`), read back with nio's `list_direct_rooms` and GET, and delivered by /sync
as nio's account data events (room tags land in nio's MatrixRoom); push rules read with
`GET /pushrules/` (no nio call) and as the `m.push_rules` account data nio parses, and changed
with nio's set_pushrule, enable_pushrule, set_pushrule_actions and delete_pushrule."""

from matrix_helpers import initial_sync, raw, run, sync, user
from nio import Api


def global_data(client, kind):
    return Api._build_path(["user", client.user_id, "account_data", kind])


def room_data(client, room, kind):
    return Api._build_path(["user", client.user_id, "rooms", room, "account_data", kind])


def custom(events):
    """Account data nio has no class for, as {type: content}."""
    from nio import UnknownAccountDataEvent

    return {e.type: e.content for e in events if isinstance(e, UnknownAccountDataEvent)}


def rules_of(response):
    from nio import PushRulesEvent

    found = [e for e in response.account_data_events if isinstance(e, PushRulesEvent)]
    assert len(found) == 1, response.account_data_events
    return found[0].global_rules


def test_global_and_room_account_data_are_stored_and_synced():
    async def flow():
        from nio import DirectRoomsResponse, TagEvent

        a = await user()
        try:
            room = (await a.room_create()).room_id
            assert await raw(a, "PUT", global_data(a, "org.example.settings"), {"theme": "dark"}) == (200, {})
            assert await raw(a, "PUT", global_data(a, "m.direct"), {"@friend:localhost": [room]}) == (200, {})
            tags = {"tags": {"u.work": {"order": 0.5}, "m.favourite": {}}}
            assert await raw(a, "PUT", room_data(a, room, "m.tag"), tags) == (200, {})
            assert await raw(a, "PUT", room_data(a, room, "org.example.note"), {"note": "hi"}) == (200, {})

            direct = await a.list_direct_rooms()
            assert isinstance(direct, DirectRoomsResponse), direct
            assert direct.rooms == {"@friend:localhost": [room]}
            assert await raw(a, "GET", global_data(a, "org.example.settings")) == (200, {"theme": "dark"})
            assert await raw(a, "GET", room_data(a, room, "m.tag")) == (200, tags)
            status, missing = await raw(a, "GET", global_data(a, "org.example.never"))
            assert (status, missing["errcode"]) == (404, "M_NOT_FOUND")

            first = await sync(a)
            assert custom(first.account_data_events) == {
                "org.example.settings": {"theme": "dark"}, "m.direct": {"@friend:localhost": [room]}}
            info = first.rooms.join[room]
            assert [e.tags for e in info.account_data if isinstance(e, TagEvent)] == [tags["tags"]]
            assert custom(info.account_data) == {"org.example.note": {"note": "hi"}}
            assert a.rooms[room].tags == tags["tags"]

            # An incremental sync carries what changed, and only that.
            assert (await raw(a, "PUT", global_data(a, "org.example.settings"), {"theme": "light"}))[0] == 200
            assert (await raw(a, "PUT", room_data(a, room, "m.tag"), {"tags": {}}))[0] == 200
            second = await sync(a)
            assert custom(second.account_data_events) == {"org.example.settings": {"theme": "light"}}
            assert [e.tags for e in second.rooms.join[room].account_data if isinstance(e, TagEvent)] == [{}]
            assert a.rooms[room].tags == {}
            quiet = await sync(a)
            assert custom(quiet.account_data_events) == {} and room not in quiet.rooms.join
        finally:
            await a.close()

    run(flow())


def test_push_rules_start_from_the_defaults_and_follow_nios_changes():
    async def flow():
        from nio import (
            DeletePushRuleResponse,
            EnablePushRuleResponse,
            PushEventMatch,
            PushNotify,
            PushRuleKind,
            PushSetTweak,
            SetPushRuleActionsResponse,
            SetPushRuleError,
            SetPushRuleResponse,
        )

        a = await user()
        try:
            room = (await a.room_create()).room_id
            status, listed = await raw(a, "GET", Api._build_path(["pushrules", ""]) + "/")
            assert status == 200, listed
            defaults = listed["global"]
            assert set(defaults) >= {"override", "content", "room", "sender", "underride"}
            override_ids = [r["rule_id"] for r in defaults["override"]]
            assert override_ids[0] == ".m.rule.master" and ".m.rule.suppress_notices" in override_ids
            assert ".m.rule.message" in [r["rule_id"] for r in defaults["underride"]]

            # The same rule set arrives as m.push_rules account data on the first sync.
            synced = rules_of(await sync(a))
            assert [r.id for r in synced.override] == override_ids
            assert all(r.default for r in synced.override + synced.underride)

            made = await a.set_pushrule("global", PushRuleKind.room, room, actions=[PushNotify()])
            assert isinstance(made, SetPushRuleResponse), made
            first = await a.set_pushrule("global", PushRuleKind.override, "org.example.first",
                                         conditions=[PushEventMatch("type", "org.example.*")], actions=[])
            assert isinstance(first, SetPushRuleResponse), first
            keyword = await a.set_pushrule(
                "global", PushRuleKind.override, "org.example.cake",
                conditions=[PushEventMatch("content.body", "*cake*")],
                actions=[PushNotify(), PushSetTweak("highlight", True)],
                before="org.example.first")
            assert isinstance(keyword, SetPushRuleResponse), keyword
            # "It is not possible to add a rule relative to a predefined server rule."
            relative = await a.set_pushrule("global", PushRuleKind.override, "org.example.bad", actions=[],
                                            after=".m.rule.suppress_notices")
            assert isinstance(relative, SetPushRuleError), relative
            assert relative.transport_response.status == 400
            changed = rules_of(await sync(a))
            assert [(r.id, r.default) for r in changed.room] == [(room, False)]
            mine = [r.id for r in changed.override if not r.default]
            assert mine == ["org.example.cake", "org.example.first"]
            cake = next(r for r in changed.override if r.id == "org.example.cake")
            assert cake.conditions == [PushEventMatch("content.body", "*cake*")]

            disabled = await a.enable_pushrule("global", PushRuleKind.override, ".m.rule.suppress_notices", False)
            assert isinstance(disabled, EnablePushRuleResponse), disabled
            quiet = await a.set_pushrule_actions("global", PushRuleKind.room, room, [])
            assert isinstance(quiet, SetPushRuleActionsResponse), quiet
            after = rules_of(await sync(a))
            assert not next(r for r in after.override if r.id == ".m.rule.suppress_notices").enabled
            assert [r.actions for r in after.room] == [[]]

            gone = await a.delete_pushrule("global", PushRuleKind.room, room)
            assert isinstance(gone, DeletePushRuleResponse), gone
            final = rules_of(await sync(a))
            assert final.room == []
            status, listed = await raw(a, "GET", Api._build_path(["pushrules", ""]) + "/")
            assert [r["rule_id"] for r in listed["global"]["room"]] == []
            suppress = next(r for r in listed["global"]["override"] if r["rule_id"] == ".m.rule.suppress_notices")
            assert suppress["enabled"] is False and suppress["default"] is True
            # Whatever changed, a fresh client still gets the whole set.
            fresh = rules_of(await initial_sync(a))
            assert [r.id for r in fresh.override] == [r["rule_id"] for r in listed["global"]["override"]]
        finally:
            await a.close()

    run(flow())
