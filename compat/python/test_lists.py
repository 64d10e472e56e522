"""Sync Lists, List Items and List Permissions."""

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


def test_list_create_fetch_update_delete(service, service_instance):
    name = unique("list")
    created = service.sync_lists.create(unique_name=name)
    assert_sid(created.sid, "ES")
    assert created.unique_name == name
    assert created.account_sid == ACCOUNT_SID
    assert created.service_sid == service_instance.sid
    assert isinstance(created.revision, str)
    assert created.created_by == "system"
    assert created.date_expires is None
    assert_recent(created.date_created)
    assert_recent(created.date_updated)
    url = f"{SYNC_V1}/Services/{service_instance.sid}/Lists/{created.sid}"
    assert created.url == url
    assert created.links == {"items": url + "/Items", "permissions": url + "/Permissions"}

    for address in (created.sid, name):
        fetched = service.sync_lists(address).fetch()
        assert fetched.sid == created.sid and fetched.unique_name == name and fetched.url == url

    updated = service.sync_lists(name).update(collection_ttl=3600)
    assert updated.sid == created.sid
    assert updated.date_expires is not None

    listed = service.sync_lists.list()
    assert [x.sid for x in listed] == [created.sid]

    assert service.sync_lists(created.sid).delete() is True
    assert_error(rest_error(service.sync_lists(created.sid).fetch), 404, NOT_FOUND["list"])
    assert_error(rest_error(service.sync_lists(name).fetch), 404, NOT_FOUND["list"])
    assert_error(rest_error(service.sync_lists(created.sid).sync_list_items.create, data={}), 404, NOT_FOUND["list"])


def test_duplicate_list_name_is_409(service):
    name = unique("dup-list")
    service.sync_lists.create(unique_name=name)
    assert_error(rest_error(service.sync_lists.create, unique_name=name), 409, 54301)


def test_items_create_fetch_update_delete(service, service_instance):
    the_list = service.sync_lists.create(unique_name=unique("items"))
    items = service.sync_lists(the_list.sid).sync_list_items
    created = []
    for i in range(3):
        response = items.create_with_http_info(data={"n": i, "text": f"item {i} é"})
        assert response.status_code == 201
        item = response.data
        assert etag_of(response) == item.revision
        created.append(item)
    indexes = [item.index for item in created]
    assert all(isinstance(i, int) for i in indexes)
    assert indexes == sorted(indexes) and len(set(indexes)) == 3, f"indexes grow: {indexes}"

    first = created[0]
    list_url = f"{SYNC_V1}/Services/{service_instance.sid}/Lists/{the_list.sid}"
    assert first.list_sid == the_list.sid
    assert first.service_sid == service_instance.sid
    assert first.account_sid == ACCOUNT_SID
    assert first.url == f"{list_url}/Items/{first.index}"
    assert first.data == {"n": 0, "text": "item 0 é"}
    assert isinstance(first.revision, str)
    assert first.created_by == "system"
    assert first.date_expires is None
    assert_recent(first.date_created)

    fetched_response = items(first.index).fetch_with_http_info()
    fetched = fetched_response.data
    assert fetched.index == first.index and fetched.data == first.data
    assert etag_of(fetched_response) == fetched.revision
    # The list's unique name addresses it for items too.
    assert service.sync_lists(the_list.unique_name).sync_list_items(first.index).fetch().data == first.data

    updated = items(first.index).update(data={"n": 10})
    assert updated.index == first.index
    assert updated.data == {"n": 10}
    assert updated.revision != first.revision

    assert [x.data["n"] for x in items.list()] == [10, 1, 2]

    assert items(created[1].index).delete() is True
    assert_error(rest_error(items(created[1].index).fetch), 404, NOT_FOUND["list_item"])
    assert_error(rest_error(items(created[1].index).update, data={}), 404, NOT_FOUND["list_item"])
    assert [x.index for x in items.list()] == [created[0].index, created[2].index]

    # A new item never reuses an index.
    later = items.create(data={"n": 3})
    assert later.index > created[2].index


def test_item_if_match(service):
    the_list = service.sync_lists.create(unique_name=unique("cond"))
    items = service.sync_lists(the_list.sid).sync_list_items
    item = items.create(data={"v": 0})
    ok = items(item.index).update(data={"v": 1}, if_match=item.revision)
    assert ok.data == {"v": 1}

    assert_error(rest_error(items(item.index).update, data={"v": "stale"}, if_match=item.revision), 412, 54155)
    garbage = rest_error(items(item.index).update, data={"v": "garbage"}, if_match="garbage!")
    assert garbage.code == 54003 and garbage.status in (400, 412), f"{garbage.status} {garbage.code}"
    assert items(item.index).fetch().data == {"v": 1}


def test_item_delete_with_if_match(service, service_instance):
    # twilio-python 9.13.0 drops If-Match on item delete, so the header is sent directly.
    the_list = service.sync_lists.create(unique_name=unique("cond-del"))
    items = service.sync_lists(the_list.sid).sync_list_items
    item = items.create(data={"v": 0})
    newer = items(item.index).update(data={"v": 1})
    path = f"/twilio/sync/v1/Services/{service_instance.sid}/Lists/{the_list.sid}/Items/{item.index}"
    stale = raw("DELETE", path, headers={"If-Match": item.revision})
    assert_error_body(stale, 412, 54155)
    assert items(item.index).fetch().data == {"v": 1}
    current = raw("DELETE", path, headers={"If-Match": newer.revision})
    assert current.status_code == 204, current.text
    assert_error(rest_error(items(item.index).fetch), 404, NOT_FOUND["list_item"])


def test_item_query_order_from_bounds(service):
    the_list = service.sync_lists.create(unique_name=unique("query"))
    items = service.sync_lists(the_list.sid).sync_list_items
    idx = [items.create(data={"i": i}).index for i in range(6)]

    def indexes(**kw):
        return [x.index for x in items.list(**kw)]

    assert indexes() == idx
    assert indexes(order="asc") == idx
    assert indexes(order="desc") == idx[::-1]
    assert indexes(from_=str(idx[2])) == idx[2:], "Bounds defaults to inclusive"
    assert indexes(from_=str(idx[2]), bounds="inclusive") == idx[2:]
    assert indexes(from_=str(idx[2]), bounds="exclusive") == idx[3:]
    assert indexes(order="desc", from_=str(idx[3])) == idx[3::-1]
    assert indexes(order="desc", from_=str(idx[3]), bounds="exclusive") == idx[2::-1]
    assert indexes(order="desc", from_=str(idx[0]), bounds="exclusive") == []
    assert indexes(from_=str(idx[-1]), bounds="exclusive") == []


def test_list_permissions(service, service_instance):
    the_list = service.sync_lists.create(unique_name=unique("perm"))
    perms = service.sync_lists(the_list.sid).sync_list_permissions
    p = perms("carol").update(read=True, write=True, manage=False)
    assert (p.identity, p.read, p.write, p.manage) == ("carol", True, True, False)
    assert p.list_sid == the_list.sid
    assert p.service_sid == service_instance.sid
    assert p.account_sid == ACCOUNT_SID
    assert p.url == f"{SYNC_V1}/Services/{service_instance.sid}/Lists/{the_list.sid}/Permissions/carol"
    assert perms("carol").fetch().write is True
    assert perms("carol").update(read=False, write=False, manage=True).manage is True
    perms("dave").update(read=True, write=False, manage=False)
    assert sorted(x.identity for x in perms.list()) == ["carol", "dave"]
    assert perms("carol").delete() is True
    assert_error(rest_error(perms("carol").fetch), 404, NOT_FOUND["permission"])
    assert [x.identity for x in perms.list()] == ["dave"]
