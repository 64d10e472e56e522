"""Sync Streams and Stream Messages."""

from helpers import (
    ACCOUNT_SID,
    NOT_FOUND,
    SYNC_V1,
    assert_error,
    assert_recent,
    assert_sid,
    rest_error,
    unique,
)


def test_stream_create_fetch_update_delete(service, service_instance):
    name = unique("stream")
    created = service.sync_streams.create(unique_name=name)
    assert_sid(created.sid, "TO")
    assert created.unique_name == name
    assert created.account_sid == ACCOUNT_SID
    assert created.service_sid == service_instance.sid
    assert created.created_by == "system"
    assert created.date_expires is None
    assert_recent(created.date_created)
    assert_recent(created.date_updated)
    url = f"{SYNC_V1}/Services/{service_instance.sid}/Streams/{created.sid}"
    assert created.url == url
    assert created.links == {"messages": url + "/Messages"}

    for address in (created.sid, name):
        fetched = service.sync_streams(address).fetch()
        assert fetched.sid == created.sid and fetched.url == url

    updated = service.sync_streams(created.sid).update(ttl=3600)
    assert updated.sid == created.sid and updated.date_expires is not None

    assert [s.sid for s in service.sync_streams.list()] == [created.sid]
    assert service.sync_streams(created.sid).delete() is True
    assert_error(rest_error(service.sync_streams(created.sid).fetch), 404, NOT_FOUND["stream"])
    assert_error(
        rest_error(service.sync_streams(created.sid).stream_messages.create, data={"x": 1}),
        404,
        NOT_FOUND["stream"],
    )


def test_duplicate_stream_name_is_409(service):
    name = unique("dup-stream")
    service.sync_streams.create(unique_name=name)
    assert_error(rest_error(service.sync_streams.create, unique_name=name), 409, 54301)


def test_publish_messages(service):
    stream = service.sync_streams.create(unique_name=unique("pub"))
    messages = service.sync_streams(stream.sid).stream_messages
    sids = set()
    for n in range(3):
        response = messages.create_with_http_info(data={"n": n, "text": "héllo & bye"})
        assert response.status_code == 201
        message = response.data
        assert_sid(message.sid, "TZ")
        assert message.data == {"n": n, "text": "héllo & bye"}
        sids.add(message.sid)
    assert len(sids) == 3, "each message has its own SID"
    # Messages can be published through the stream's unique name as well.
    by_name = service.sync_streams(stream.unique_name).stream_messages.create(data={"by": "name"})
    assert by_name.data == {"by": "name"}
