"""Paging through twilio-python's list(), stream() and page()/next_page(): next_page_url is
followed verbatim, so it must stay on the server's own origin and carry the query along."""

from helpers import SYNC_V1, unique

# Every walk through pages is bounded: more pages than this is a failure, not a hang.
MAX_PAGES = 50


def walk_pages(first_page):
    """All records of all pages, checking each page's next_page_url; returns (records, pages)."""
    records, pages, page = [], 0, first_page
    while page is not None:
        pages += 1
        assert pages <= MAX_PAGES, "next_page_url never ran out"
        records.extend(page)
        url = page.next_page_url
        if url is not None:
            assert url.startswith(SYNC_V1 + "/Services"), f"next_page_url left the server: {url}"
        page = page.next_page()
    return records, pages


def test_documents_across_pages(service):
    made = [service.documents.create(unique_name=unique(f"p{i}"), data={"i": i}).sid for i in range(7)]
    listed = [d.sid for d in service.documents.list(page_size=3)]
    assert sorted(listed) == sorted(made), "every document exactly once"

    streamed = [d.sid for d in service.documents.stream(limit=5, page_size=2)]
    assert len(streamed) == 5 and len(set(streamed)) == 5 and set(streamed) <= set(made)
    assert streamed == listed[:5], "stream() walks the same order as list()"

    first = service.documents.page(page_size=3)
    assert len(list(service.documents.page(page_size=3))) == 3
    records, pages = walk_pages(first)
    assert [d.sid for d in records] == listed
    assert pages == 3


def test_list_items_across_pages_in_both_orders(service):
    the_list = service.sync_lists.create(unique_name=unique("paged"))
    items = service.sync_lists(the_list.sid).sync_list_items
    idx = [items.create(data={"i": i}).index for i in range(11)]

    def indexes(**kw):
        return [x.index for x in items.list(page_size=3, **kw)]

    assert indexes() == idx
    assert indexes(order="desc") == idx[::-1]
    # From and Bounds must survive into the following pages' URLs.
    assert indexes(from_=str(idx[2])) == idx[2:]
    assert indexes(from_=str(idx[2]), bounds="exclusive") == idx[3:]
    assert indexes(order="desc", from_=str(idx[8])) == idx[8::-1]
    assert indexes(order="desc", from_=str(idx[8]), bounds="exclusive") == idx[7::-1]

    streamed = [x.index for x in items.stream(limit=7, page_size=2, order="desc")]
    assert streamed == idx[::-1][:7]

    records, pages = walk_pages(items.page(page_size=4))
    assert [x.index for x in records] == idx and pages == 3
    records, pages = walk_pages(items.page(page_size=4, order="desc", from_=str(idx[9]), bounds="exclusive"))
    assert [x.index for x in records] == idx[8::-1] and pages == 3

    # Exactly a page full: the last page has no next page (or an empty one after it).
    exact, _ = walk_pages(items.page(page_size=11))
    assert [x.index for x in exact] == idx


def test_map_items_across_pages_in_both_orders(service):
    the_map = service.sync_maps.create(unique_name=unique("paged"))
    items = service.sync_maps(the_map.sid).sync_map_items
    keys = [f"key {n:02d}/x" for n in range(10)]
    for k in reversed(keys):
        items.create(key=k, data={"k": k})

    def listed(**kw):
        return [x.key for x in items.list(page_size=3, **kw)]

    assert listed() == keys
    assert listed(order="desc") == keys[::-1]
    assert listed(from_=keys[4]) == keys[4:]
    assert listed(from_=keys[4], bounds="exclusive") == keys[5:]
    assert listed(order="desc", from_=keys[6]) == keys[6::-1]
    assert listed(order="desc", from_=keys[6], bounds="exclusive") == keys[5::-1]

    assert [x.key for x in items.stream(limit=4, page_size=3)] == keys[:4]
    records, pages = walk_pages(items.page(page_size=4, order="desc"))
    assert [x.key for x in records] == keys[::-1] and pages == 3


def test_collections_and_permissions_across_pages(service):
    lists = [service.sync_lists.create(unique_name=unique("l")).sid for _ in range(5)]
    maps = [service.sync_maps.create(unique_name=unique("m")).sid for _ in range(5)]
    streams = [service.sync_streams.create(unique_name=unique("s")).sid for _ in range(5)]
    assert sorted(x.sid for x in service.sync_lists.list(page_size=2)) == sorted(lists)
    assert sorted(x.sid for x in service.sync_maps.list(page_size=2)) == sorted(maps)
    assert sorted(x.sid for x in service.sync_streams.list(page_size=2)) == sorted(streams)
    records, pages = walk_pages(service.sync_streams.page(page_size=2))
    assert sorted(x.sid for x in records) == sorted(streams) and pages == 3

    doc = service.documents.create(data={})
    perms = service.documents(doc.sid).document_permissions
    identities = [f"user{n}" for n in range(5)]
    for identity in identities:
        perms(identity).update(read=True, write=False, manage=False)
    assert sorted(p.identity for p in perms.list(page_size=2)) == identities
    records, pages = walk_pages(perms.page(page_size=2))
    assert sorted(p.identity for p in records) == identities and pages == 3


def test_services_across_pages(client):
    made = [client.sync.v1.services.create(friendly_name=unique("paged-svc")).sid for _ in range(3)]
    try:
        records, _ = walk_pages(client.sync.v1.services.page(page_size=2))
        sids = [s.sid for s in records]
        assert len(sids) == len(set(sids)), "a service on two pages"
        assert set(made) <= set(sids)
    finally:
        for sid in made:
            client.sync.v1.services(sid).delete()
