"""twilio-python's Proxy client against the Proxy face: services created, fetched, updated,
listed through the library's paging (list, stream, page) and deleted, and their pools of numbers,
with Twilio's errors."""

import uuid

import helpers


def test_a_service_round_trips_through_the_library(client):
    name = helpers.unique("proxy")
    made = client.proxy.v1.services.create(
        unique_name=name, default_ttl=600, callback_url="https://example.com/cb", geo_match_level="area-code"
    )
    assert made.sid.startswith("KS") and len(made.sid) == 34
    assert (made.unique_name, made.default_ttl, made.geo_match_level) == (name, 600, "area-code")
    assert made.number_selection_behavior == "prefer-sticky"
    assert made.links["phone_numbers"].endswith(f"/Services/{made.sid}/PhoneNumbers")

    fetched = client.proxy.v1.services(made.sid).fetch()
    assert fetched.callback_url == "https://example.com/cb"
    updated = client.proxy.v1.services(made.sid).update(
        unique_name=name + "-b", number_selection_behavior="avoid-sticky", intercept_callback_url="https://example.com/i"
    )
    assert (updated.unique_name, updated.number_selection_behavior) == (name + "-b", "avoid-sticky")
    assert updated.intercept_callback_url == "https://example.com/i"
    assert updated.default_ttl == 600

    assert client.proxy.v1.services(made.sid).delete() is True
    err = helpers.rest_error(client.proxy.v1.services(made.sid).fetch)
    assert (err.status, err.code) == (404, 20404)


def test_unique_names_and_bad_fields_are_refused_with_twilios_codes(client):
    name = helpers.unique("proxy-dup")
    made = client.proxy.v1.services.create(unique_name=name)
    try:
        err = helpers.rest_error(client.proxy.v1.services.create, unique_name=name)
        assert (err.status, err.code) == (409, 54301)
        err = helpers.rest_error(client.proxy.v1.services.create, unique_name=name + "x", geo_match_level="planet")
        assert (err.status, err.code) == (400, 20001) and "GeoMatchLevel" in err.msg
    finally:
        client.proxy.v1.services(made.sid).delete()


def test_services_page_through_list_stream_and_page(client):
    prefix = helpers.unique("proxy-page")
    made = [client.proxy.v1.services.create(unique_name=f"{prefix}-{n}") for n in range(5)]
    try:
        mine = {s.sid for s in made}
        listed = [s.sid for s in client.proxy.v1.services.list(page_size=2) if s.sid in mine]
        assert listed == [s.sid for s in made], "every service once, in the order made"
        streamed = [s.sid for s in client.proxy.v1.services.stream(page_size=2) if s.sid in mine]
        assert streamed == listed
        page = client.proxy.v1.services.page(page_size=2)
        assert len(list(page)) == 2
        following = page.next_page()
        assert following is not None and len(list(following)) >= 1
    finally:
        for s in made:
            client.proxy.v1.services(s.sid).delete()


def test_the_number_pool_through_the_library(client):
    a = client.proxy.v1.services.create(unique_name=helpers.unique("pool-a"))
    b = client.proxy.v1.services.create(unique_name=helpers.unique("pool-b"))
    number = "+1415555" + str(uuid.uuid4().int % 10000).zfill(4)
    try:
        added = client.proxy.v1.services(a.sid).phone_numbers.create(phone_number=number, is_reserved=True)
        assert added.sid.startswith("PN") and (added.phone_number, added.is_reserved) == (number, True)
        assert added.iso_country == "US" and added.in_use == 0
        err = helpers.rest_error(client.proxy.v1.services(b.sid).phone_numbers.create, phone_number=number)
        assert (err.status, err.code) == (400, 80601)
        updated = client.proxy.v1.services(a.sid).phone_numbers(added.sid).update(is_reserved=False)
        assert updated.is_reserved is False
        listed = client.proxy.v1.services(a.sid).phone_numbers.list()
        assert [n.sid for n in listed] == [added.sid]
        assert client.proxy.v1.services(a.sid).phone_numbers(added.sid).delete() is True
        moved = client.proxy.v1.services(b.sid).phone_numbers.create(sid=added.sid)
        assert (moved.sid, moved.phone_number, moved.service_sid) == (added.sid, number, b.sid)
    finally:
        client.proxy.v1.services(a.sid).delete()
        client.proxy.v1.services(b.sid).delete()
