"""What twilio-python relies on, checked on the raw responses: list envelopes and their meta,
status codes, empty 204 bodies, ETags."""

import json

from helpers import SYNC_V1, URL, raw, unique


def envelope(response, key, page_size):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    meta = body["meta"]
    assert meta["key"] == key and isinstance(body[key], list), body
    assert meta["page_size"] == page_size
    for field in ("url", "first_page_url"):
        assert meta[field].startswith(SYNC_V1 + "/Services"), meta
    for field in ("next_page_url", "previous_page_url"):
        assert meta[field] is None or meta[field].startswith(SYNC_V1 + "/Services"), meta
    return body


def test_list_envelopes_name_their_records(service_instance):
    base = f"/twilio/sync/v1/Services/{service_instance.sid}"
    assert raw("POST", base + "/Documents", data={"UniqueName": "d"}).status_code == 201
    assert raw("POST", base + "/Lists", data={"UniqueName": "l"}).status_code == 201
    assert raw("POST", base + "/Maps", data={"UniqueName": "m"}).status_code == 201
    assert raw("POST", base + "/Streams", data={"UniqueName": "s"}).status_code == 201
    assert raw("POST", base + "/Lists/l/Items", data={"Data": "{}"}).status_code == 201
    assert raw("POST", base + "/Maps/m/Items", data={"Key": "k", "Data": "{}"}).status_code == 201
    perm = {"Read": "true", "Write": "false", "Manage": "false"}
    assert raw("POST", base + "/Documents/d/Permissions/alice", data=perm).status_code == 200

    envelope(raw("GET", "/twilio/sync/v1/Services?PageSize=5"), "services", 5)
    for tail, key in [
        ("/Documents", "documents"),
        ("/Lists", "lists"),
        ("/Maps", "maps"),
        ("/Streams", "streams"),
        ("/Lists/l/Items", "items"),
        ("/Maps/m/Items", "items"),
        ("/Documents/d/Permissions", "permissions"),
        ("/Lists/l/Permissions", "permissions"),
        ("/Maps/m/Permissions", "permissions"),
    ]:
        body = envelope(raw("GET", f"{base}{tail}?PageSize=7"), key, 7)
        assert body["meta"]["page"] == 0 and body["meta"]["previous_page_url"] is None, tail
    body = envelope(raw("GET", base + "/Documents"), "documents", 50)
    assert len(body["documents"]) == 1


def test_pages_link_forwards_and_back(service, service_instance):
    the_list = service.sync_lists.create(unique_name=unique("pages"))
    items = service.sync_lists(the_list.sid).sync_list_items
    idx = [items.create(data={"i": i}).index for i in range(5)]
    first = raw("GET", f"/twilio/sync/v1/Services/{service_instance.sid}/Lists/{the_list.sid}/Items?PageSize=2")
    meta = envelope(first, "items", 2)["meta"]
    second = envelope(raw("GET", meta["next_page_url"]), "items", 2)
    assert [x["index"] for x in second["items"]] == idx[2:4]
    assert second["meta"]["page"] == 1
    assert second["meta"]["previous_page_url"] is not None
    back = envelope(raw("GET", second["meta"]["previous_page_url"]), "items", 2)
    assert [x["index"] for x in back["items"]] == idx[:2]

    # The same through twilio-python.
    page2 = items.page(page_size=2).next_page()
    assert [x.index for x in page2] == idx[2:4]
    assert [x.index for x in page2.previous_page()] == idx[:2]
    page3 = page2.next_page()
    assert [x.index for x in page3] == idx[4:] and page3.next_page() is None


def test_status_codes_bodies_and_etags(service_instance):
    base = f"/twilio/sync/v1/Services/{service_instance.sid}"
    created = raw("POST", base + "/Documents", data={"UniqueName": "d", "Data": json.dumps({"v": 0})})
    assert created.status_code == 201
    assert created.headers["etag"].strip('"') == created.json()["revision"]
    fetched = raw("GET", base + "/Documents/d")
    assert fetched.status_code == 200 and fetched.headers["etag"].strip('"') == fetched.json()["revision"]
    updated = raw("POST", base + "/Documents/d", data={"Data": json.dumps({"v": 1})})
    assert updated.status_code == 200 and updated.headers["etag"].strip('"') == updated.json()["revision"]

    raw("POST", base + "/Maps", data={"UniqueName": "m"})
    item = raw("POST", base + "/Maps/m/Items", data={"Key": "a b", "Data": "{}"})
    assert item.status_code == 201 and item.headers["etag"].strip('"') == item.json()["revision"]
    assert item.json()["url"] == f"{URL}{base}/Maps/{item.json()['map_sid']}/Items/a%20b"

    for path in (base + "/Maps/m/Items/a%20b", base + "/Maps/m", base + "/Documents/d"):
        deleted = raw("DELETE", path)
        assert deleted.status_code == 204 and deleted.content == b"", path
