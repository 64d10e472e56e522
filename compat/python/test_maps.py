"""Sync Maps, Map Items (keys with `/` and spaces) and Map Permissions."""

from helpers import (
    ACCOUNT_SID,
    NOT_FOUND,
    SYNC_V1,
    assert_error,
    assert_error_body,
    assert_recent,
    assert_sid,
    etag_of,
    raw,
    rest_error,
    unique,
)


def test_map_create_fetch_update_delete(service, service_instance):
    name = unique("map")
    created = service.sync_maps.create(unique_name=name)
    assert_sid(created.sid, "MP")
    assert created.unique_name == name
    assert created.account_sid == ACCOUNT_SID
    assert created.service_sid == service_instance.sid
    assert isinstance(created.revision, str)
    assert created.created_by == "system"
    assert created.date_expires is None
    assert_recent(created.date_created)
    url = f"{SYNC_V1}/Services/{service_instance.sid}/Maps/{created.sid}"
    assert created.url == url
    assert created.links == {"items": url + "/Items", "permissions": url + "/Permissions"}

    for address in (created.sid, name):
        assert service.sync_maps(address).fetch().sid == created.sid

    updated = service.sync_maps(created.sid).update(ttl=3600)
    assert updated.date_expires is not None

    assert [m.sid for m in service.sync_maps.list()] == [created.sid]
    assert service.sync_maps(name).delete() is True
    assert_error(rest_error(service.sync_maps(created.sid).fetch), 404, NOT_FOUND["map"])


def test_duplicate_map_name_is_409(service):
    name = unique("dup-map")
    service.sync_maps.create(unique_name=name)
    assert_error(rest_error(service.sync_maps.create, unique_name=name), 409, 54301)


def test_items_with_slashes_and_spaces_in_keys(service, service_instance):
    the_map = service.sync_maps.create(unique_name=unique("keys"))
    items = service.sync_maps(the_map.sid).sync_map_items
    keys = ["plain", "k/1 x", "a b/c/d", "trailing space ", "ümlaut+plus&amp=eq"]
    for n, key in enumerate(keys):
        response = items.create_with_http_info(key=key, data={"n": n})
        assert response.status_code == 201
        item = response.data
        assert item.key == key
        assert item.data == {"n": n}
        assert etag_of(response) == item.revision
        assert item.map_sid == the_map.sid
        assert item.service_sid == service_instance.sid
        assert item.account_sid == ACCOUNT_SID
        assert item.created_by == "system"
        assert item.date_expires is None
        assert isinstance(item.revision, str)
        assert_recent(item.date_created)
        assert item.url.startswith(f"{SYNC_V1}/Services/{service_instance.sid}/Maps/{the_map.sid}/Items/")

    for n, key in enumerate(keys):
        response = items(key).fetch_with_http_info()
        assert response.data.key == key, f"fetch by {key!r}"
        assert response.data.data == {"n": n}
        assert etag_of(response) == response.data.revision

    assert sorted(i.key for i in items.list()) == sorted(keys)

    slashed = items("k/1 x").update(data={"n": "updated"})
    assert slashed.key == "k/1 x" and slashed.data == {"n": "updated"}
    assert items("k/1 x").fetch().data == {"n": "updated"}
    # A prefix of a key is another key.
    assert_error(rest_error(items("k").fetch), 404, NOT_FOUND["map_item"])

    assert items("a b/c/d").delete() is True
    assert_error(rest_error(items("a b/c/d").fetch), 404, NOT_FOUND["map_item"])
    assert sorted(i.key for i in items.list()) == sorted(k for k in keys if k != "a b/c/d")


def test_duplicate_key_is_409(service):
    the_map = service.sync_maps.create(unique_name=unique("dup-key"))
    items = service.sync_maps(the_map.sid).sync_map_items
    items.create(key="k", data={"first": True})
    assert_error(rest_error(items.create, key="k", data={"second": True}), 409, 54208)
    assert items("k").fetch().data == {"first": True}


def test_item_if_match(service, service_instance):
    the_map = service.sync_maps.create(unique_name=unique("cond"))
    items = service.sync_maps(the_map.sid).sync_map_items
    item = items.create(key="a/b", data={"v": 0})
    ok = items("a/b").update(data={"v": 1}, if_match=item.revision)
    assert ok.data == {"v": 1} and ok.revision != item.revision

    assert_error(rest_error(items("a/b").update, data={"v": "stale"}, if_match=item.revision), 412, 54205)
    garbage = rest_error(items("a/b").update, data={"v": "garbage"}, if_match="%%%")
    assert garbage.code == 54003 and garbage.status in (400, 412), f"{garbage.status} {garbage.code}"
    assert items("a/b").fetch().data == {"v": 1}

    # twilio-python 9.13.0 drops If-Match on item delete, so the header is sent directly.
    path = f"/twilio/sync/v1/Services/{service_instance.sid}/Maps/{the_map.sid}/Items/a/b"
    assert_error_body(raw("DELETE", path, headers={"If-Match": item.revision}), 412, 54205)
    assert items("a/b").fetch().data == {"v": 1}
    assert raw("DELETE", path, headers={"If-Match": ok.revision}).status_code == 204
    assert_error(rest_error(items("a/b").fetch), 404, NOT_FOUND["map_item"])


def test_item_query_order_from_bounds(service):
    the_map = service.sync_maps.create(unique_name=unique("query"))
    items = service.sync_maps(the_map.sid).sync_map_items
    keys = ["delta", "alpha", "echo", "charlie", "bravo", "a/z"]
    for k in keys:
        items.create(key=k, data={"k": k})
    asc = sorted(keys)  # lexicographic by key

    def listed(**kw):
        return [x.key for x in items.list(**kw)]

    assert listed() == asc
    assert listed(order="asc") == asc
    assert listed(order="desc") == asc[::-1]
    assert listed(from_="charlie") == asc[asc.index("charlie"):]
    assert listed(from_="charlie", bounds="exclusive") == asc[asc.index("charlie") + 1:]
    assert listed(order="desc", from_="charlie") == asc[: asc.index("charlie") + 1][::-1]
    assert listed(order="desc", from_="charlie", bounds="exclusive") == asc[: asc.index("charlie")][::-1]


def test_map_permissions(service, service_instance):
    the_map = service.sync_maps.create(unique_name=unique("perm"))
    perms = service.sync_maps(the_map.sid).sync_map_permissions
    p = perms("erin").update(read=True, write=False, manage=True)
    assert (p.identity, p.read, p.write, p.manage) == ("erin", True, False, True)
    assert p.map_sid == the_map.sid
    assert p.service_sid == service_instance.sid
    assert p.account_sid == ACCOUNT_SID
    assert p.url == f"{SYNC_V1}/Services/{service_instance.sid}/Maps/{the_map.sid}/Permissions/erin"
    assert perms("erin").fetch().manage is True
    perms("frank").update(read=False, write=True, manage=False)
    assert sorted(x.identity for x in perms.list()) == ["erin", "frank"]
    assert perms("erin").delete() is True
    assert_error(rest_error(perms("erin").fetch), 404, NOT_FOUND["permission"])
    assert [x.identity for x in perms.list()] == ["frank"]
