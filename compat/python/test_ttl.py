"""Ttl, CollectionTtl and ItemTtl: date_expires is about now + ttl; 0 means no expiry."""

from helpers import assert_expires_in, unique


def test_document_ttl(service):
    doc = service.documents.create(unique_name=unique("ttl"), data={}, ttl=3600)
    assert_expires_in(doc.date_expires, 3600)
    assert_expires_in(service.documents(doc.sid).fetch().date_expires, 3600)
    assert_expires_in(service.documents(doc.sid).update(ttl=600).date_expires, 600)
    assert service.documents(doc.sid).update(ttl=0).date_expires is None, "Ttl=0 removes the expiry"
    assert service.documents(doc.sid).fetch().date_expires is None

    forever = service.documents.create(data={}, ttl=0)
    assert forever.date_expires is None

    # An update of the data alone leaves the expiry as it was.
    expiring = service.documents.create(data={"v": 0}, ttl=7200)
    assert_expires_in(service.documents(expiring.sid).update(data={"v": 1}).date_expires, 7200)


def test_list_and_item_ttl(service):
    the_list = service.sync_lists.create(unique_name=unique("ttl"), collection_ttl=3600)
    assert_expires_in(the_list.date_expires, 3600)
    # Ttl is an alias of CollectionTtl, ignored when both are given.
    alias = service.sync_lists.create(ttl=1800)
    assert_expires_in(alias.date_expires, 1800)
    both = service.sync_lists.create(ttl=100, collection_ttl=5400)
    assert_expires_in(both.date_expires, 5400)
    assert service.sync_lists(both.sid).update(collection_ttl=0).date_expires is None

    items = service.sync_lists(the_list.sid).sync_list_items
    item = items.create(data={}, item_ttl=600)
    assert_expires_in(item.date_expires, 600)
    aliased = items.create(data={}, ttl=900)
    assert_expires_in(aliased.date_expires, 900)
    assert items.create(data={}).date_expires is None
    assert_expires_in(items(item.index).update(item_ttl=1200).date_expires, 1200)

    # CollectionTtl on an item write sets the parent list's expiry.
    items.create(data={}, collection_ttl=9000)
    assert_expires_in(service.sync_lists(the_list.sid).fetch().date_expires, 9000)


def test_map_and_item_ttl(service):
    the_map = service.sync_maps.create(unique_name=unique("ttl"), collection_ttl=3600)
    assert_expires_in(the_map.date_expires, 3600)
    assert_expires_in(service.sync_maps.create(ttl=1800).date_expires, 1800)

    items = service.sync_maps(the_map.sid).sync_map_items
    item = items.create(key="k", data={}, item_ttl=600)
    assert_expires_in(item.date_expires, 600)
    assert_expires_in(items.create(key="alias", data={}, ttl=900).date_expires, 900)
    assert items.create(key="forever", data={}).date_expires is None
    assert_expires_in(items("k").update(ttl=1200).date_expires, 1200)
    assert items("k").update(item_ttl=0).date_expires is None

    items("forever").update(data={"v": 1}, collection_ttl=9000)
    assert_expires_in(service.sync_maps(the_map.sid).fetch().date_expires, 9000)


def test_stream_ttl(service):
    stream = service.sync_streams.create(unique_name=unique("ttl"), ttl=3600)
    assert_expires_in(stream.date_expires, 3600)
    assert_expires_in(service.sync_streams(stream.sid).update(ttl=60).date_expires, 60)
    assert service.sync_streams.create(ttl=0).date_expires is None
