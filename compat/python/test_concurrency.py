"""Conditional updates racing through the REST face: of writers holding the same revision,
exactly one wins and every other gets 412 with the kind's code."""

from concurrent.futures import ThreadPoolExecutor

from twilio.base.exceptions import TwilioRestException

from helpers import unique

WRITERS = 8


def race(update, revision, code):
    def attempt(n):
        try:
            return update(data={"writer": n}, if_match=revision)
        except TwilioRestException as e:
            assert (e.status, e.code) == (412, code), f"{e.status} {e.code}: {e.msg}"
            return None

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        results = list(pool.map(attempt, range(WRITERS)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1, f"{len(winners)} of {WRITERS} writers with the same If-Match succeeded"
    return winners[0]


def test_one_conditional_document_update_wins(service):
    doc = service.documents.create(unique_name=unique("race"), data={"writer": None})
    winner = race(service.documents(doc.sid).update, doc.revision, 54103)
    assert service.documents(doc.sid).fetch().data == winner.data


def test_one_conditional_list_item_update_wins(service):
    the_list = service.sync_lists.create(unique_name=unique("race"))
    items = service.sync_lists(the_list.sid).sync_list_items
    item = items.create(data={"writer": None})
    winner = race(items(item.index).update, item.revision, 54155)
    assert items(item.index).fetch().data == winner.data


def test_one_conditional_map_item_update_wins(service):
    the_map = service.sync_maps.create(unique_name=unique("race"))
    items = service.sync_maps(the_map.sid).sync_map_items
    item = items.create(key="shared/key", data={"writer": None})
    winner = race(items("shared/key").update, item.revision, 54205)
    assert items("shared/key").fetch().data == winner.data
