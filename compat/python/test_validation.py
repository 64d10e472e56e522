"""Bad input beyond sizes and TTLs: required parameters, name and key lengths, service
settings out of range. Each is a 400 in Twilio's error shape and changes nothing."""

import pytest

from helpers import assert_error, assert_error_body, raw, rest_error, unique

NAME_LIMIT = 320


def path(service_instance, tail):
    return f"/twilio/sync/v1/Services/{service_instance.sid}{tail}"


def status_400(response):
    body = assert_error_body(response, 400, {response.json().get("code")})
    assert isinstance(body["code"], int)
    return body


@pytest.mark.parametrize(
    "collection,create",
    [
        ("documents", lambda s, name: s.documents.create(unique_name=name, data={})),
        ("sync_lists", lambda s, name: s.sync_lists.create(unique_name=name)),
        ("sync_maps", lambda s, name: s.sync_maps.create(unique_name=name)),
        ("sync_streams", lambda s, name: s.sync_streams.create(unique_name=name)),
    ],
)
def test_unique_names_up_to_320_characters(service, collection, create):
    longest = "n" * NAME_LIMIT
    assert create(service, longest).unique_name == longest
    err = rest_error(create, service, "m" * (NAME_LIMIT + 1))
    assert err.status == 400, f"{err.status} {err.code}: {err.msg}"
    assert [x.unique_name for x in getattr(service, collection).list()] == [longest]


def test_map_keys_have_a_length_limit(service):
    the_map = service.sync_maps.create(unique_name=unique("keys"))
    items = service.sync_maps(the_map.sid).sync_map_items
    assert items.create(key="k" * 256, data={}).key == "k" * 256
    err = rest_error(items.create, key="x" * (NAME_LIMIT + 1), data={})
    assert_error(err, 400, 54209)
    err = rest_error(items.create, key="", data={})
    assert err.status == 400, f"an empty key: {err.status} {err.code}"
    assert [i.key for i in items.list()] == ["k" * 256]


def test_required_parameters(service, service_instance):
    the_list = service.sync_lists.create(unique_name="l")
    the_map = service.sync_maps.create(unique_name="m")
    service.sync_streams.create(unique_name="s")
    doc = service.documents.create(unique_name="d")

    status_400(raw("POST", path(service_instance, "/Lists/l/Items"), data={}))
    status_400(raw("POST", path(service_instance, "/Maps/m/Items"), data={"Data": "{}"}))
    status_400(raw("POST", path(service_instance, "/Maps/m/Items"), data={"Key": "k"}))
    status_400(raw("POST", path(service_instance, "/Streams/s/Messages"), data={}))
    status_400(raw("POST", path(service_instance, "/Documents/d/Permissions/alice"), data={"Read": "true"}))
    status_400(
        raw("POST", path(service_instance, "/Documents/d/Permissions/alice"),
            data={"Read": "maybe", "Write": "true", "Manage": "false"})
    )
    assert service.sync_lists(the_list.sid).sync_list_items.list() == []
    assert service.sync_maps(the_map.sid).sync_map_items.list() == []
    assert service.documents(doc.sid).document_permissions.list() == []


def test_malformed_numbers_and_enums(service, service_instance):
    the_list = service.sync_lists.create(unique_name="l")
    service.sync_lists(the_list.sid).sync_list_items.create(data={})
    status_400(raw("POST", path(service_instance, "/Documents"), data={"Ttl": "soon"}))
    status_400(raw("GET", path(service_instance, "/Lists/l/Items?Order=sideways")))
    status_400(raw("GET", path(service_instance, "/Lists/l/Items?Bounds=both")))
    status_400(raw("GET", path(service_instance, "/Lists/l/Items?From=first")))
    status_400(raw("GET", path(service_instance, "/Lists/l/Items?PageSize=0")))
    assert service.documents.list() == []


@pytest.mark.parametrize("window", [999, 30001])
def test_reachability_debouncing_window_is_1000_to_30000(client, service_instance, window):
    ctx = client.sync.v1.services(service_instance.sid)
    err = rest_error(ctx.update, reachability_debouncing_window=window)
    assert err.status == 400, f"{err.status} {err.code}: {err.msg}"
    assert ctx.fetch().reachability_debouncing_window == 5000
    assert ctx.update(reachability_debouncing_window=30000).reachability_debouncing_window == 30000
    assert ctx.update(reachability_debouncing_window=1000).reachability_debouncing_window == 1000


def test_a_webhook_url_must_be_a_url(client):
    err = rest_error(client.sync.v1.services.create, friendly_name=unique("hook"), webhook_url="not a url")
    assert err.status == 400, f"{err.status} {err.code}: {err.msg}"


def test_deleting_a_collection_deletes_its_items(service):
    the_list = service.sync_lists.create(unique_name="l")
    item = service.sync_lists(the_list.sid).sync_list_items.create(data={"v": 1})
    the_map = service.sync_maps.create(unique_name="m")
    service.sync_maps(the_map.sid).sync_map_items.create(key="k", data={})
    service.sync_lists(the_list.sid).delete()
    service.sync_maps(the_map.sid).delete()
    assert rest_error(service.sync_lists(the_list.sid).sync_list_items(item.index).fetch).status == 404
    assert rest_error(service.sync_maps(the_map.sid).sync_map_items("k").fetch).status == 404
    # A new list of the same name starts empty.
    again = service.sync_lists.create(unique_name="l")
    assert service.sync_lists(again.sid).sync_list_items.list() == []
