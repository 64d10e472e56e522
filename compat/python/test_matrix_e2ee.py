"""matrix-nio against what encrypting clients need of a server. nio is installed without libolm,
so its keys_upload/keys_query/keys_claim refuse to run ("Matrix store and olm account is not
loaded"); the requests come from nio's own builders (`Api.keys_upload`, `Api.keys_query`,
`Api.keys_claim`) and are parsed by nio's response classes through `AsyncClient._send`.
`GET /keys/changes` has no nio builder at all. To-device messages go through nio's own
`AsyncClient.to_device`. /sync's device_one_time_keys_count and device_lists are read from nio's
SyncResponse; device_unused_fallback_key_types, which nio does not parse, from the body nio got."""

import asyncio

import helpers
from matrix_helpers import CONFIG, TIMEOUT, close, localpart, raw, run, sync, user
from nio import Api, AsyncClient


def device_keys(client, curve="curve-key"):
    """Device keys in the spec's shape (the server stores them as given; nothing checks the
    signature)."""
    dev = client.device_id
    return {
        "user_id": client.user_id,
        "device_id": dev,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {f"curve25519:{dev}": f"{curve}-{dev}", f"ed25519:{dev}": f"ed-{dev}"},
        "signatures": {client.user_id: {f"ed25519:{dev}": "signature"}},
    }


def signed_key(client, key, fallback=False):
    body = {"key": key, "signatures": {client.user_id: {f"ed25519:{client.device_id}": "signature"}}}
    if fallback:
        body["fallback"] = True
    return body


async def upload(client, keys):
    from nio import KeysUploadResponse

    method, path, data = Api.keys_upload(client.access_token, keys)
    answer = await asyncio.wait_for(client._send(KeysUploadResponse, method, path, data), TIMEOUT)
    assert isinstance(answer, KeysUploadResponse), answer
    return answer


async def claim(client, target):
    from nio import KeysClaimResponse

    method, path, data = Api.keys_claim(client.access_token, {target.user_id: [target.device_id]})
    answer = await asyncio.wait_for(client._send(KeysClaimResponse, method, path, data), TIMEOUT)
    assert isinstance(answer, KeysClaimResponse), answer
    return answer.one_time_keys.get(target.user_id, {}).get(target.device_id, {})


async def fallback_types(response):
    body = await response.transport_response.json()
    return body.get("device_unused_fallback_key_types")


def test_keys_are_uploaded_queried_and_claimed_once_with_counts_in_sync():
    async def flow():
        from nio import KeysQueryResponse

        a, b = await user(), await user()
        try:
            await sync(a)
            uploaded = await upload(a, {
                "device_keys": device_keys(a),
                "one_time_keys": {
                    "signed_curve25519:AAAAAQ": signed_key(a, "otk-1"),
                    "signed_curve25519:AAAAAg": signed_key(a, "otk-2"),
                },
                "fallback_keys": {"signed_curve25519:AAAAAw": signed_key(a, "fallback-1", fallback=True)},
            })
            assert uploaded.signed_curve25519_count == 2
            counted = await sync(a)
            assert counted.device_key_count.signed_curve25519 == 2
            assert await fallback_types(counted) == ["signed_curve25519"]

            method, path, data = Api.keys_query(b.access_token, {a.user_id})
            queried = await b._send(KeysQueryResponse, method, path, data)
            assert isinstance(queried, KeysQueryResponse), queried
            found = queried.device_keys[a.user_id][a.device_id]
            assert found["keys"] == device_keys(a)["keys"]
            assert found["algorithms"] == device_keys(a)["algorithms"]
            assert found["signatures"][a.user_id] == {f"ed25519:{a.device_id}": "signature"}

            first, second = await claim(b, a), await claim(b, a)
            claimed = {**first, **second}
            assert sorted(v["key"] for v in claimed.values()) == ["otk-1", "otk-2"], "each key handed out once"
            assert set(claimed) == {"signed_curve25519:AAAAAQ", "signed_curve25519:AAAAAg"}
            drained = await sync(a)
            # "If an algorithm is not listed, the count for that algorithm is to be assumed zero."
            assert (drained.device_key_count.signed_curve25519 or 0) == 0

            # With the one-time keys gone the fallback key answers, and is then reported used.
            last = await claim(b, a)
            assert [(k, v["key"], v.get("fallback")) for k, v in last.items()] == [
                ("signed_curve25519:AAAAAw", "fallback-1", True)]
            used = await sync(a)
            assert await fallback_types(used) == []
        finally:
            await close(a, b)

    run(flow())


def test_device_list_changes_reach_users_sharing_a_room_and_keys_changes_agrees():
    async def flow():
        a, b = await user(), await user()
        try:
            room = (await a.room_create(invite=[b.user_id])).room_id
            await b.join(room)
            await sync(a)
            since = (await sync(b)).next_batch

            await upload(a, {"device_keys": device_keys(a)})
            changed = await sync(b)
            assert a.user_id in changed.device_list.changed and changed.device_list.left == []
            until = changed.next_batch
            status, body = await raw(b, "GET", Api._build_path(["keys", "changes"], {"from": since, "to": until}))
            assert status == 200, body
            assert a.user_id in body["changed"] and body["left"] == []
            quiet = await sync(b)
            assert a.user_id not in quiet.device_list.changed, "reported once"

            await a.room_leave(room)
            left = await sync(b)
            assert a.user_id in left.device_list.left, "no room is shared any more"
            status, body = await raw(b, "GET", Api._build_path(["keys", "changes"],
                                                               {"from": until, "to": left.next_batch}))
            assert status == 200 and a.user_id in body["left"], body
        finally:
            await close(a, b)

    run(flow())


def test_to_device_messages_reach_one_device_or_all_and_stay_until_acknowledged():
    async def flow():
        from nio import LoginResponse, ToDeviceMessage, ToDeviceResponse, UnknownToDeviceEvent

        a = await user()
        b_name = localpart()
        phone = await user(b_name)
        laptop = AsyncClient(helpers.URL, b_name, config=CONFIG)
        try:
            assert isinstance(await laptop.login("pw", device_name="laptop"), LoginResponse)
            await sync(phone)
            before = phone.next_batch
            await sync(laptop)

            direct = await a.to_device(ToDeviceMessage("org.example.hello", phone.user_id, phone.device_id,
                                                       {"n": 1}), tx_id="td-1")
            assert isinstance(direct, ToDeviceResponse), direct
            everyone = await a.to_device(ToDeviceMessage("org.example.all", phone.user_id, "*", {"n": 2}))
            assert isinstance(everyone, ToDeviceResponse), everyone

            def received(response):
                return [(e.type, e.sender, e.source["content"]) for e in response.to_device_events
                        if isinstance(e, UnknownToDeviceEvent)]

            got = await sync(phone)
            assert received(got) == [("org.example.hello", a.user_id, {"n": 1}),
                                     ("org.example.all", a.user_id, {"n": 2})]
            # Not acknowledged yet: a retried sync from the same token gets them again.
            retried = await sync(phone, since=before)
            assert received(retried) == received(got)
            assert received(await sync(phone, since=got.next_batch)) == [], "acknowledged, so gone"
            assert received(await sync(laptop)) == [("org.example.all", a.user_id, {"n": 2})]
        finally:
            await close(a, phone, laptop)

    run(flow())
