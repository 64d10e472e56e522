"""Documents and Document Permissions."""

import datetime

from helpers import (
    ACCOUNT_SID,
    NOT_FOUND,
    SYNC_V1,
    assert_error,
    assert_recent,
    assert_sid,
    etag_of,
    rest_error,
    unique,
)

DATA = {"a": 1, "s": "é&=+ %", "nested": {"list": [1, 2.5, None, True], "empty": {}}}


def test_create_fetch_update_delete(service, service_instance):
    name = unique("doc")
    created_response = service.documents.create_with_http_info(unique_name=name, data=DATA)
    assert created_response.status_code == 201
    doc = created_response.data
    assert_sid(doc.sid, "ET")
    assert doc.unique_name == name
    assert doc.account_sid == ACCOUNT_SID
    assert doc.service_sid == service_instance.sid
    assert doc.data == DATA
    assert isinstance(doc.revision, str)
    assert etag_of(created_response) == doc.revision
    assert doc.created_by == "system"
    assert doc.date_expires is None
    assert_recent(doc.date_created)
    assert_recent(doc.date_updated)
    url = f"{SYNC_V1}/Services/{service_instance.sid}/Documents/{doc.sid}"
    assert doc.url == url
    assert doc.links == {"permissions": url + "/Permissions"}

    for address in (doc.sid, name):
        fetched_response = service.documents(address).fetch_with_http_info()
        assert fetched_response.status_code == 200
        fetched = fetched_response.data
        assert fetched.sid == doc.sid
        assert fetched.data == DATA
        assert fetched.revision == doc.revision
        assert fetched.url == url
        assert etag_of(fetched_response) == doc.revision

    updated_response = service.documents(doc.sid).update_with_http_info(data={"b": [2]})
    assert updated_response.status_code == 200
    updated = updated_response.data
    assert updated.sid == doc.sid
    assert updated.data == {"b": [2]}, "update replaces the data"
    assert updated.revision != doc.revision
    assert etag_of(updated_response) == updated.revision
    assert updated.date_updated >= doc.date_updated
    assert updated.date_created == doc.date_created

    by_name = service.documents(name).update(data={"c": 3})
    assert by_name.sid == doc.sid and by_name.data == {"c": 3}

    assert service.documents(doc.sid).delete() is True
    assert_error(rest_error(service.documents(doc.sid).fetch), 404, NOT_FOUND["document"])
    assert_error(rest_error(service.documents(name).fetch), 404, NOT_FOUND["document"])
    assert_error(rest_error(service.documents(doc.sid).delete), 404, NOT_FOUND["document"])
    assert_error(rest_error(service.documents(doc.sid).update, data={}), 404, NOT_FOUND["document"])


def test_a_document_without_data_or_name(service):
    doc = service.documents.create()
    assert_sid(doc.sid, "ET")
    assert doc.data == {}
    assert service.documents(doc.sid).fetch().data == {}


def test_list_documents(service):
    docs = [service.documents.create(unique_name=unique("listed"), data={"i": i}) for i in range(3)]
    listed = service.documents.list()
    assert sorted(d.sid for d in listed) == sorted(d.sid for d in docs)
    by_sid = {d.sid: d for d in listed}
    for d in docs:
        assert by_sid[d.sid].data == d.data
        assert by_sid[d.sid].unique_name == d.unique_name
        assert by_sid[d.sid].revision == d.revision


def test_if_match(service):
    doc = service.documents.create(unique_name=unique("cond"), data={"v": 0})
    first = service.documents(doc.sid).update(data={"v": 1}, if_match=doc.revision)
    assert first.data == {"v": 1}
    assert first.revision != doc.revision

    stale = rest_error(service.documents(doc.sid).update, data={"v": "stale"}, if_match=doc.revision)
    assert_error(stale, 412, 54103)
    garbage = rest_error(service.documents(doc.sid).update, data={"v": "garbage"}, if_match="not-a-revision")
    assert garbage.code == 54003, f"{garbage.status} {garbage.code}: {garbage.msg}"
    assert garbage.status in (400, 412)

    current = service.documents(doc.sid).fetch()
    assert current.data == {"v": 1}, "a refused update changes nothing"
    assert current.revision == first.revision

    quoted = service.documents(doc.sid).update(data={"v": 2}, if_match=f'"{first.revision}"')
    assert quoted.data == {"v": 2}, "a quoted revision is accepted too"


def test_duplicate_unique_name_is_409(service):
    name = unique("dup")
    service.documents.create(unique_name=name, data={"first": True})
    assert_error(rest_error(service.documents.create, unique_name=name, data={"second": True}), 409, 54301)
    assert service.documents(name).fetch().data == {"first": True}


def test_document_permissions(service, service_instance):
    doc = service.documents.create(unique_name=unique("perm"), data={})
    perms = service.documents(doc.sid).document_permissions
    alice = perms("alice").update(read=True, write=False, manage=False)
    assert alice.identity == "alice"
    assert (alice.read, alice.write, alice.manage) == (True, False, False)
    assert alice.account_sid == ACCOUNT_SID
    assert alice.service_sid == service_instance.sid
    assert alice.document_sid == doc.sid
    doc_url = f"{SYNC_V1}/Services/{service_instance.sid}/Documents/{doc.sid}"
    assert alice.url == doc_url + "/Permissions/alice"

    fetched = perms("alice").fetch()
    assert (fetched.identity, fetched.read, fetched.write, fetched.manage) == ("alice", True, False, False)

    # Update is an upsert: a second call replaces all three flags.
    changed = perms("alice").update(read=False, write=True, manage=True)
    assert (changed.read, changed.write, changed.manage) == (False, True, True)

    bob = "bob@example.com"
    perms(bob).update(read=True, write=True, manage=False)
    listed = {p.identity: p for p in perms.list()}
    assert set(listed) == {"alice", bob}
    assert (listed["alice"].read, listed["alice"].write, listed["alice"].manage) == (False, True, True)
    assert listed[bob].document_sid == doc.sid

    # The document's unique name addresses it here too.
    assert service.documents(doc.unique_name).document_permissions(bob).fetch().read is True

    assert perms("alice").delete() is True
    assert_error(rest_error(perms("alice").fetch), 404, NOT_FOUND["permission"])
    assert [p.identity for p in perms.list()] == [bob]


def test_permissions_of_a_missing_document_are_404(service):
    perms = service.documents("ET" + "0" * 32).document_permissions
    assert_error(rest_error(perms("alice").update, read=True, write=True, manage=True), 404, NOT_FOUND["document"])


def test_dates_are_utc(service):
    doc = service.documents.create(data={})
    assert doc.date_created.tzinfo == datetime.timezone.utc
