"""Error bodies, authentication, and bad input: over-limit data, bad TTLs."""

import pytest
from twilio.base.exceptions import TwilioRestException

from helpers import (
    ACCOUNT_SID,
    API_KEY_SECRET,
    API_KEY_SID,
    AUTH_TOKEN,
    NOT_FOUND,
    assert_error,
    assert_error_body,
    big_data,
    make_client,
    raw,
    rest_error,
    unique,
)

MAX_TTL = 31_536_000
# Comfortably past 16 KiB (and 4 KiB), and comfortably below, however the JSON is counted.
OVER_16K = 17 * 1024
UNDER_16K = 15 * 1024
OVER_4K = 5 * 1024
UNDER_4K = 3 * 1024
TOO_LARGE = (400, 413)


def assert_too_large(exc):
    assert exc.code == 54006, f"{exc.status} {exc.code}: {exc.msg}"
    assert exc.status in TOO_LARGE, f"{exc.status} {exc.code}: {exc.msg}"


def test_error_bodies_are_legacy_twilio_errors(service_instance):
    base = f"/twilio/sync/v1/Services/{service_instance.sid}"
    assert_error_body(raw("GET", base + "/Documents/ET" + "0" * 32), 404, NOT_FOUND["document"])
    assert_error_body(raw("GET", base + "/Documents/no-such-name"), 404, NOT_FOUND["document"])
    assert_error_body(raw("GET", "/twilio/sync/v1/Services/IS" + "0" * 32), 404, NOT_FOUND["service"])

    created = raw("POST", base + "/Documents", data={"UniqueName": unique("e"), "Data": '{"v": 0}'})
    assert created.status_code == 201, created.text
    doc = created.json()
    assert doc["data"] == {"v": 0} and isinstance(doc["revision"], str)
    raw("POST", base + f"/Documents/{doc['sid']}", data={"Data": '{"v": 1}'}).raise_for_status()
    stale = raw("POST", base + f"/Documents/{doc['sid']}", data={"Data": "{}"}, headers={"If-Match": doc["revision"]})
    assert_error_body(stale, 412, 54103)

    duplicate = raw("POST", base + "/Documents", data={"UniqueName": doc["unique_name"]})
    assert_error_body(duplicate, 409, 54301)
    bad_ttl = raw("POST", base + "/Documents", data={"Ttl": str(MAX_TTL + 1)})
    assert_error_body(bad_ttl, 400, 54011)
    too_big = raw("POST", base + "/Documents", data={"Data": '{"x": "' + "y" * OVER_16K + '"}'})
    assert too_big.status_code in TOO_LARGE, too_big.text
    assert_error_body(too_big, too_big.status_code, 54006)


def test_malformed_data_is_400(service_instance):
    base = f"/twilio/sync/v1/Services/{service_instance.sid}"
    r = raw("POST", base + "/Documents", data={"UniqueName": unique("bad"), "Data": "{not json"})
    assert r.status_code == 400, r.text
    body = r.json()
    assert {"code", "message", "more_info", "status"} <= set(body) and body["status"] == 400


def test_basic_auth_with_the_auth_token_and_with_an_api_key(client, key_client):
    name = unique("auth")
    created = key_client.sync.v1.services.create(friendly_name=name)
    try:
        assert key_client.sync.v1.services(created.sid).fetch().friendly_name == name
        assert client.sync.v1.services(created.sid).fetch().friendly_name == name
        doc = key_client.sync.v1.services(created.sid).documents.create(data={"by": "key"})
        assert client.sync.v1.services(created.sid).documents(doc.sid).fetch().data == {"by": "key"}
    finally:
        client.sync.v1.services(created.sid).delete()


@pytest.mark.parametrize(
    "username,password",
    [
        (ACCOUNT_SID, AUTH_TOKEN + "x"),
        (API_KEY_SID, API_KEY_SECRET + "x"),
        ("AC" + "0" * 32, AUTH_TOKEN),
        ("SK" + "0" * 32, API_KEY_SECRET),
    ],
)
def test_bad_credentials_are_401_20003(service_instance, username, password):
    bad = make_client(username, password, account_sid=ACCOUNT_SID)
    assert_error(rest_error(bad.sync.v1.services(service_instance.sid).fetch), 401, 20003)
    assert_error(rest_error(bad.sync.v1.services.create, friendly_name="nope"), 401, 20003)
    path = f"/twilio/sync/v1/Services/{service_instance.sid}"
    assert_error_body(raw("GET", path, auth=(username, password)), 401, 20003)


def test_no_credentials_are_401(service_instance):
    r = raw("GET", f"/twilio/sync/v1/Services/{service_instance.sid}", auth=None)
    assert_error_body(r, 401, 20003)


def test_oversized_data_is_refused_and_changes_nothing(service):
    name = unique("big")
    assert_too_large(rest_error(service.documents.create, unique_name=name, data=big_data(OVER_16K)))
    assert_error(rest_error(service.documents(name).fetch), 404, NOT_FOUND["document"])

    doc = service.documents.create(unique_name=name, data=big_data(UNDER_16K))
    assert doc.data == big_data(UNDER_16K)
    assert_too_large(rest_error(service.documents(doc.sid).update, data=big_data(OVER_16K)))
    after = service.documents(doc.sid).fetch()
    assert after.revision == doc.revision and after.data == big_data(UNDER_16K)

    the_list = service.sync_lists.create(unique_name=unique("big"))
    items = service.sync_lists(the_list.sid).sync_list_items
    item = items.create(data=big_data(UNDER_16K))
    assert_too_large(rest_error(items.create, data=big_data(OVER_16K)))
    assert_too_large(rest_error(items(item.index).update, data=big_data(OVER_16K)))
    assert [(i.index, i.revision) for i in items.list()] == [(item.index, item.revision)]

    the_map = service.sync_maps.create(unique_name=unique("big"))
    entries = service.sync_maps(the_map.sid).sync_map_items
    entry = entries.create(key="small", data=big_data(UNDER_16K))
    assert_too_large(rest_error(entries.create, key="large", data=big_data(OVER_16K)))
    assert_too_large(rest_error(entries("small").update, data=big_data(OVER_16K)))
    assert_error(rest_error(entries("large").fetch), 404, NOT_FOUND["map_item"])
    assert entries("small").fetch().revision == entry.revision


def test_stream_messages_over_4k_are_refused(service):
    stream = service.sync_streams.create(unique_name=unique("big"))
    messages = service.sync_streams(stream.sid).stream_messages
    assert messages.create(data=big_data(UNDER_4K)).data == big_data(UNDER_4K)
    assert_too_large(rest_error(messages.create, data=big_data(OVER_4K)))


@pytest.mark.parametrize("ttl", [-1, MAX_TTL + 1])
def test_ttl_out_of_range_is_54011_and_changes_nothing(service, ttl):
    name = unique("ttl")
    assert_error(rest_error(service.documents.create, unique_name=name, data={}, ttl=ttl), 400, 54011)
    assert_error(rest_error(service.documents(name).fetch), 404, NOT_FOUND["document"])
    doc = service.documents.create(unique_name=name, data={"v": 0})
    assert_error(rest_error(service.documents(doc.sid).update, data={"v": 1}, ttl=ttl), 400, 54011)
    after = service.documents(doc.sid).fetch()
    assert after.revision == doc.revision and after.data == {"v": 0} and after.date_expires is None

    assert_error(rest_error(service.sync_lists.create, unique_name=name, ttl=ttl), 400, 54011)
    assert_error(rest_error(service.sync_lists.create, unique_name=name, collection_ttl=ttl), 400, 54011)
    assert_error(rest_error(service.sync_maps.create, unique_name=name, ttl=ttl), 400, 54011)
    assert_error(rest_error(service.sync_streams.create, unique_name=name, ttl=ttl), 400, 54011)
    assert service.sync_lists.list() == [] and service.sync_maps.list() == [] and service.sync_streams.list() == []

    the_list = service.sync_lists.create(unique_name=name)
    items = service.sync_lists(the_list.sid).sync_list_items
    assert_error(rest_error(items.create, data={}, item_ttl=ttl), 400, 54011)
    assert items.list() == []
    the_map = service.sync_maps.create(unique_name=name)
    entries = service.sync_maps(the_map.sid).sync_map_items
    assert_error(rest_error(entries.create, key="k", data={}, ttl=ttl), 400, 54011)
    assert entries.list() == []


def test_the_largest_ttl_is_accepted(service):
    doc = service.documents.create(data={}, ttl=MAX_TTL)
    assert doc.date_expires is not None


def test_an_unknown_path_under_the_sync_mount_is_a_twilio_404():
    r = raw("GET", "/twilio/sync/v1/NoSuchResource")
    assert r.status_code == 404
    body = r.json()
    assert body["status"] == 404 and "code" in body and "type" not in body


def test_errors_raise_the_classic_exception_class(service):
    with pytest.raises(TwilioRestException) as info:
        service.documents("ET" + "0" * 32).fetch()
    assert type(info.value) is TwilioRestException
    # twilio-python appends the server's message to its own.
    assert info.value.msg.startswith("Unable to fetch record: ") and len(info.value.msg) > 24, info.value.msg


def test_an_unsupported_method_is_a_twilio_error(service_instance):
    r = raw("PUT", f"/twilio/sync/v1/Services/{service_instance.sid}", data={"FriendlyName": "x"})
    assert r.status_code == 405, r.text
    body = r.json()
    assert {"code", "message", "more_info", "status"} <= set(body) and body["status"] == 405, body
    assert "type" not in body and "title" not in body, body
