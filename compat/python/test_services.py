"""Services: create / fetch / update / list / delete and every field twilio-python exposes."""

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

# Webhooks must never leave the machine: a loopback address nothing listens on.
HOOK = "http://127.0.0.1:9/sync-hook"


def assert_links(service):
    url = f"{SYNC_V1}/Services/{service.sid}"
    assert service.url == url
    assert service.links == {
        "documents": url + "/Documents",
        "lists": url + "/Lists",
        "maps": url + "/Maps",
        "streams": url + "/Streams",
    }


def test_create_with_every_field_then_fetch_update_delete(client):
    services = client.sync.v1.services
    name = unique("svc-all")
    created = services.create(
        friendly_name=name,
        webhook_url=HOOK,
        reachability_webhooks_enabled=True,
        acl_enabled=True,
        reachability_debouncing_enabled=True,
        reachability_debouncing_window=2000,
        webhooks_from_rest_enabled=False,
    )
    assert_sid(created.sid, "IS")
    assert created.account_sid == ACCOUNT_SID
    assert created.friendly_name == name
    assert created.webhook_url == HOOK
    assert created.reachability_webhooks_enabled is True
    assert created.acl_enabled is True
    assert created.reachability_debouncing_enabled is True
    assert created.reachability_debouncing_window == 2000
    assert created.webhooks_from_rest_enabled is False
    assert_recent(created.date_created)
    assert_recent(created.date_updated)
    assert_links(created)

    fetched = services(created.sid).fetch()
    for field in (
        "sid",
        "account_sid",
        "friendly_name",
        "webhook_url",
        "reachability_webhooks_enabled",
        "acl_enabled",
        "reachability_debouncing_enabled",
        "reachability_debouncing_window",
        "webhooks_from_rest_enabled",
        "date_created",
        "url",
        "links",
    ):
        assert getattr(fetched, field) == getattr(created, field), field

    renamed = unique("svc-renamed")
    updated = services(created.sid).update(
        friendly_name=renamed, acl_enabled=False, reachability_debouncing_window=3000
    )
    assert updated.sid == created.sid
    assert updated.friendly_name == renamed
    assert updated.acl_enabled is False
    assert updated.reachability_debouncing_window == 3000
    # Fields the update left out keep their values.
    assert updated.webhook_url == HOOK
    assert updated.reachability_webhooks_enabled is True
    assert updated.reachability_debouncing_enabled is True
    assert updated.date_updated >= created.date_updated
    assert_links(updated)

    again = services(created.sid).fetch()
    assert again.friendly_name == renamed and again.acl_enabled is False
    assert again.reachability_debouncing_window == 3000

    assert services(created.sid).delete() is True
    assert_error(rest_error(services(created.sid).fetch), 404, NOT_FOUND["service"])
    assert_error(rest_error(services(created.sid).delete), 404, NOT_FOUND["service"])


def test_defaults_of_a_service_created_with_a_name_only(client, service_instance):
    s = service_instance
    assert s.acl_enabled is False
    assert s.reachability_webhooks_enabled is False
    assert s.reachability_debouncing_enabled is False
    assert s.webhooks_from_rest_enabled is False
    assert s.reachability_debouncing_window == 5000
    assert s.webhook_url is None
    assert_links(s)


def test_the_webhook_url_can_be_changed(client, service_instance):
    ctx = client.sync.v1.services(service_instance.sid)
    assert ctx.update(webhook_url=HOOK).webhook_url == HOOK
    assert ctx.fetch().webhook_url == HOOK
    other = HOOK + "/other"
    assert ctx.update(webhook_url=other).webhook_url == other


def test_list_shows_each_created_service_once(client):
    names = [unique("svc-list") for _ in range(3)]
    created = [client.sync.v1.services.create(friendly_name=n) for n in names]
    try:
        listed = client.sync.v1.services.list(page_size=2)
        sids = [s.sid for s in listed]
        assert len(sids) == len(set(sids)), "a service listed twice"
        for s in created:
            assert sids.count(s.sid) == 1
            match = next(x for x in listed if x.sid == s.sid)
            assert match.friendly_name == s.friendly_name
            assert match.url == f"{SYNC_V1}/Services/{s.sid}"
    finally:
        for s in created:
            client.sync.v1.services(s.sid).delete()
    remaining = {s.sid for s in client.sync.v1.services.list(page_size=50)}
    assert not remaining & {s.sid for s in created}


def test_an_unknown_service_is_404(client):
    missing = "IS" + "f" * 32
    ctx = client.sync.v1.services(missing)
    assert_error(rest_error(ctx.fetch), 404, NOT_FOUND["service"])
    assert_error(rest_error(ctx.update, friendly_name="x"), 404, NOT_FOUND["service"])
    assert_error(rest_error(ctx.documents.create, data={}), 404, NOT_FOUND["service"])


def test_deleting_a_service_deletes_its_objects(client):
    s = client.sync.v1.services.create(friendly_name=unique("svc-cascade"))
    doc = client.sync.v1.services(s.sid).documents.create(unique_name="d", data={"a": 1})
    client.sync.v1.services(s.sid).delete()
    err = rest_error(client.sync.v1.services(s.sid).documents(doc.sid).fetch)
    assert err.status == 404
