"""twilio-python's Proxy client against the Proxy face: Sessions, Participants, Interactions and
Message Interactions through the library's own resource API (create, fetch, update, list, stream,
page, delete), the session lifecycle (close, re-open, first interaction, Ttl and DateExpiry
expiry), the number pool (picking, reserved numbers, `in_use`, pair conflicts), and Twilio's
errors for bad input, each in Twilio's error body and leaving nothing changed.

Every test makes its own Proxy service and random numbers, so the file runs again and again on
one server."""

import datetime
import json
import random
import time

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException

import helpers

# A session that expires by itself must be closed within this long of its deadline (the server
# sweeps several times a second; this bound is generous on purpose and is not a timing test).
EXPIRY_BOUND = 10.0

STATUSES = {"open", "in-progress", "closed", "failed", "unknown"}
RESOURCE_STATUSES = {
    "accepted", "answered", "busy", "canceled", "completed", "deleted", "delivered", "delivery-unknown",
    "failed", "in-progress", "initiated", "no-answer", "queued", "received", "receiving", "ringing",
    "scheduled", "sending", "sent", "undelivered", "unknown",
}  # fmt: skip


# --- helpers ---------------------------------------------------------------------------------


def e164():
    """A random US number in E.164 form (+1555 and seven digits)."""
    return "+1555" + str(random.randrange(10**7)).zfill(7)


def identifier():
    """A random participant identifier (a phone number)."""
    return "+1666" + str(random.randrange(10**7)).zfill(7)


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def later(seconds):
    """A datetime `seconds` ahead, whole seconds (twilio-python sends no fractions)."""
    return (now() + datetime.timedelta(seconds=seconds)).replace(microsecond=0)


def wait_for(probe, what, bound=EXPIRY_BOUND):
    """Polls `probe` until it returns something truthy, for at most `bound` seconds."""
    deadline = time.monotonic() + bound
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)
    pytest.fail(f"{what} did not happen within {bound}s (last seen: {last!r})")


def wire_error(px, exc, http_status, codes, field=None):
    """`exc` (raised by twilio-python: a TwilioRestException, or the TwilioException its pages
    raise) came from Twilio's error body with this status and code (code, message, more_info,
    status; no RFC 9457 type/title), whose message names `field`."""
    codes = {codes} if isinstance(codes, int) else set(codes)
    if isinstance(exc, TwilioRestException):
        helpers.assert_error(exc, http_status, codes)
    response = px.http_client._test_only_last_response
    assert response is not None, "no response recorded"
    assert response.status_code == http_status, f"{response.status_code}: {response.text}"
    headers = {k.lower(): v for k, v in (response.headers or {}).items()}
    assert headers.get("content-type", "").startswith("application/json"), headers
    body = json.loads(response.text)
    for key in ("code", "message", "more_info", "status"):
        assert key in body, f"no `{key}` in {body}"
    assert "type" not in body and "title" not in body, body
    assert body["code"] in codes and body["status"] == http_status, body
    assert isinstance(body["message"], str) and body["message"], body
    assert isinstance(body["more_info"], str) and body["more_info"].startswith("http"), body
    if field is not None:
        assert field in body["message"], f"the message does not name {field}: {body['message']!r}"
    return body


def fails(px, call, http_status, codes, field=None, **kwargs):
    """Runs a twilio-python call that must fail with this Twilio error; returns its body."""
    with pytest.raises(TwilioException) as info:
        call(**kwargs)
    return wire_error(px, info.value, http_status, codes, field)


def session_state(s):
    """What a session shows, to compare before and after a request that must change nothing."""
    return (
        s.sid, s.unique_name, s.status, s.closed_reason, s.ttl, s.mode, s.date_expiry, s.date_ended,
        s.date_last_interaction, s.date_updated,
    )  # fmt: skip


def sessions_state(svc):
    return [session_state(s) for s in svc.sessions.list()]


def participants_state(session):
    return [(p.sid, p.identifier, p.proxy_identifier, p.date_deleted) for p in session.participants.list()]


def in_use(svc, number_sid):
    return svc.phone_numbers(number_sid).fetch().in_use


def add_numbers(svc, count, reserved=False):
    """`count` random numbers added to the service's pool; their PhoneNumber instances."""
    return [svc.phone_numbers.create(phone_number=e164(), is_reserved=reserved) for _ in range(count)]


def case_ids(cases):
    """Test ids for (field, kwargs) cases: the field and the case's position."""
    return [f"{field}-{n}" for n, (field, _) in enumerate(cases)]


def raw_post(path, data):
    """A form POST under the Proxy face without twilio-python (for parameters it cannot send)."""
    return helpers.raw("POST", "/twilio/proxy/v1" + path, data=data)


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def px():
    """A client of its own, so `_test_only_last_response` is this file's last response."""
    return helpers.make_client(helpers.ACCOUNT_SID, helpers.AUTH_TOKEN)


@pytest.fixture
def service(px, request):
    """A fresh Proxy service (default_ttl 900) as a ServiceContext; `.sid` is its SID."""
    made = px.proxy.v1.services.create(unique_name=helpers.unique("pxs-" + request.node.name[:30]), default_ttl=900)
    ctx = px.proxy.v1.services(made.sid)
    ctx.sid = made.sid
    yield ctx
    try:
        ctx.delete()
    except Exception:  # noqa: BLE001 - already gone is fine
        pass


# --- sessions --------------------------------------------------------------------------------


def test_a_bare_session_takes_the_defaults(px, service):
    before = now().replace(microsecond=0)
    s = service.sessions.create()
    helpers.assert_sid(s.sid, "KC")
    assert s.service_sid == service.sid and s.account_sid == helpers.ACCOUNT_SID
    assert s.status == "open" and s.mode == "voice-and-message"
    assert s.ttl == 900, "the service's default_ttl"
    assert s.unique_name is None and not s.closed_reason
    assert s.date_ended is None and s.date_last_interaction is None and s.date_expiry is None
    helpers.assert_recent(s.date_started)
    assert s.date_started >= before - datetime.timedelta(seconds=1)
    helpers.assert_recent(s.date_created)
    assert s.url.endswith(f"/v1/Services/{service.sid}/Sessions/{s.sid}")
    assert s.links["participants"] == s.url + "/Participants"
    assert s.links["interactions"] == s.url + "/Interactions"
    assert service.sessions(s.sid).participants.list() == []
    assert service.sessions(s.sid).interactions.list() == []


def test_a_session_is_created_with_every_field_and_its_participants(px, service):
    pool = add_numbers(service, 2)
    numbers = {n.phone_number: n.sid for n in pool}
    name = helpers.unique("order #1")
    expiry = later(3600)
    alice, bob = identifier(), identifier()
    s = service.sessions.create(
        unique_name=name,
        ttl=120,
        mode="message-only",
        status="in-progress",
        date_expiry=expiry,
        participants=[{"Identifier": alice, "FriendlyName": "alice"}, {"Identifier": bob, "FriendlyName": "bob"}],
    )
    assert (s.unique_name, s.ttl, s.mode, s.status) == (name, 120, "message-only", "in-progress")
    assert s.date_expiry == expiry
    made = service.sessions(s.sid).participants.list()
    assert [(p.identifier, p.friendly_name) for p in made] == [(alice, "alice"), (bob, "bob")]
    for p in made:
        helpers.assert_sid(p.sid, "KP")
        assert p.proxy_identifier in numbers, f"{p.proxy_identifier} is not a pool number"
        assert p.proxy_identifier_sid == numbers[p.proxy_identifier]
        assert p.session_sid == s.sid and p.date_deleted is None
    assert sum(in_use(service, sid) for sid in numbers.values()) == 2, "each participant holds a pair"

    # A ProxyIdentifier inside `Participants` is honoured.
    chosen = pool[0]
    carol = identifier()
    t = service.sessions.create(participants=[{"Identifier": carol, "ProxyIdentifier": chosen.phone_number}])
    [p] = service.sessions(t.sid).participants.list()
    assert (p.identifier, p.proxy_identifier, p.proxy_identifier_sid) == (carol, chosen.phone_number, chosen.sid)


def test_a_session_is_fetched_by_sid_and_unique_name_and_updated(px, service):
    name = helpers.unique("fetch-me")
    s = service.sessions.create(unique_name=name, ttl=300)
    by_sid = service.sessions(s.sid).fetch()
    by_name = service.sessions(name).fetch()
    assert by_sid.sid == by_name.sid == s.sid
    assert session_state(by_sid) == session_state(s)

    updated = service.sessions(s.sid).update(ttl=600)
    assert (updated.ttl, updated.status) == (600, "open")
    assert updated.date_updated >= s.date_updated
    expiry = later(7200)
    updated = service.sessions(name).update(date_expiry=expiry)
    assert updated.date_expiry == expiry and updated.ttl == 600
    fetched = service.sessions(s.sid).fetch()
    assert (fetched.ttl, fetched.date_expiry) == (600, expiry)


def test_sessions_page_through_list_stream_and_page(px, service):
    made = [service.sessions.create(unique_name=helpers.unique(f"page-{n}")) for n in range(5)]
    sids = [s.sid for s in made]

    assert [s.sid for s in service.sessions.list(page_size=2)] == sids, "every session once, in the order made"
    assert [s.sid for s in service.sessions.stream(page_size=2)] == sids
    assert [s.sid for s in service.sessions.list(limit=3, page_size=2)] == sids[:3]
    assert [s.sid for s in service.sessions.stream(limit=4)] == sids[:4]

    page = service.sessions.page(page_size=2)
    seen = []
    pages = 0
    while page is not None:
        pages += 1
        rows = [s.sid for s in page]
        assert 1 <= len(rows) <= 2, rows
        seen.extend(rows)
        assert pages <= 3, "more pages than 5 sessions in pages of 2 can fill"
        page = page.next_page()
    assert seen == sids and pages == 3

    # The meta block, and its absolute next_page_url walked by hand.
    url = f"/twilio/proxy/v1/Services/{service.sid}/Sessions?PageSize=2"
    walked = []
    while url:
        response = helpers.raw("GET", url)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["meta"]["key"] == "sessions" and body["meta"]["page_size"] == 2, body["meta"]
        walked.extend(s["sid"] for s in body["sessions"])
        url = body["meta"]["next_page_url"]
        assert url is None or url.startswith("http"), url
    assert walked == sids


def test_a_deleted_session_is_gone_and_frees_its_name_and_numbers(px, service):
    [number] = add_numbers(service, 1)
    name = helpers.unique("doomed")
    s = service.sessions.create(unique_name=name, participants=[{"Identifier": identifier()}])
    assert in_use(service, number.sid) == 1
    response = service.sessions(s.sid).delete_with_http_info()
    assert response.status_code == 204
    fails(px, service.sessions(s.sid).fetch, 404, 20404)
    fails(px, service.sessions(name).fetch, 404, {20404, 80308})
    fails(px, service.sessions(s.sid).participants.list, 404, 20404)
    fails(px, service.sessions(s.sid).interactions.list, 404, 20404)
    fails(px, service.sessions(s.sid).delete, 404, 20404)
    assert s.sid not in [x.sid for x in service.sessions.list()]
    assert in_use(service, number.sid) == 0, "a deleted session holds no pair"
    again = service.sessions.create(unique_name=name)
    assert again.sid != s.sid and again.unique_name == name


# --- status transitions ----------------------------------------------------------------------


def test_a_session_closes_and_reopens(px, service):
    [number] = add_numbers(service, 1)
    s = service.sessions.create(participants=[{"Identifier": identifier()}])
    ctx = service.sessions(s.sid)
    assert in_use(service, number.sid) == 1

    closed = ctx.update(status="closed")
    assert (closed.status, closed.closed_reason) == ("closed", "api")
    helpers.assert_recent(closed.date_ended)
    assert in_use(service, number.sid) == 0, "a closed session frees its pairs"

    before = session_state(ctx.fetch())
    fails(px, ctx.update, 400, 80608, status="closed")
    fails(px, ctx.update, 400, 80607, ttl=60)
    fails(px, ctx.update, 400, 80607, date_expiry=later(600))
    assert session_state(ctx.fetch()) == before, "a refused update changes nothing"
    fails(px, ctx.participants.create, 400, 80607, identifier=identifier())
    assert len(ctx.participants.list()) == 1

    reopened = ctx.update(status="in-progress")
    assert reopened.status == "in-progress"
    assert not reopened.closed_reason and reopened.date_ended is None
    assert in_use(service, number.sid) == 1, "a re-opened session holds its pairs again"

    before = session_state(ctx.fetch())
    fails(px, ctx.update, 400, 80608, status="open")
    fails(px, ctx.update, 400, 80608, status="in-progress")
    assert session_state(ctx.fetch()) == before

    closed = ctx.update(status="closed")
    assert (closed.status, closed.closed_reason) == ("closed", "api")


def test_an_open_session_only_closes(px, service):
    s = service.sessions.create()
    ctx = service.sessions(s.sid)
    before = session_state(ctx.fetch())
    for status in ("in-progress", "failed", "unknown"):
        fails(px, ctx.update, 400, 80608, status=status)
    fails(px, ctx.update, 400, 20001, "Status", status="asleep")
    assert session_state(ctx.fetch()) == before
    assert ctx.fetch().status == "open"


def test_the_first_interaction_puts_a_session_in_progress(px, service):
    add_numbers(service, 2)
    s = service.sessions.create(participants=[{"Identifier": identifier()}, {"Identifier": identifier()}])
    assert s.status == "open" and s.date_last_interaction is None
    [alice, _] = service.sessions(s.sid).participants.list()
    mi = service.sessions(s.sid).participants(alice.sid).message_interactions.create(body="first")
    after = service.sessions(s.sid).fetch()
    assert after.status == "in-progress"
    helpers.assert_recent(after.date_last_interaction)
    assert abs((after.date_last_interaction - mi.date_created).total_seconds()) <= 1


# --- expiry ----------------------------------------------------------------------------------


def test_a_session_past_its_ttl_closes_and_frees_its_numbers(px, service):
    [number] = add_numbers(service, 1)
    s = service.sessions.create(ttl=2, participants=[{"Identifier": identifier()}])
    assert s.status == "open" and s.ttl == 2
    assert in_use(service, number.sid) == 1
    ended = wait_for(
        lambda: (lambda x: x if x.status == "closed" else None)(service.sessions(s.sid).fetch()),
        "closing at the Ttl",
        bound=2 + EXPIRY_BOUND,
    )
    assert ended.closed_reason == "ttl"
    helpers.assert_recent(ended.date_ended)
    assert in_use(service, number.sid) == 0


def test_a_session_closes_at_its_date_expiry_which_overrides_the_ttl(px, service):
    plain = service.sessions.create(date_expiry=later(2))
    overriding = service.sessions.create(ttl=3600, date_expiry=later(2))
    lasting = service.sessions.create(ttl=3600)
    for s in (plain, overriding):
        assert s.status == "open" and s.date_expiry is not None

    def both_closed():
        got = [service.sessions(s.sid).fetch() for s in (plain, overriding)]
        return got if all(x.status == "closed" for x in got) else None

    got = wait_for(both_closed, "closing at DateExpiry", bound=2 + EXPIRY_BOUND)
    for x in got:
        assert x.closed_reason == "date-expiry"
        helpers.assert_recent(x.date_ended)
    assert got[1].ttl == 3600
    assert service.sessions(lasting.sid).fetch().status == "open", "a session with time left stays open"


# --- participants ----------------------------------------------------------------------------


def test_participants_are_created_fetched_listed_and_soft_deleted(px, service):
    [free] = add_numbers(service, 1)
    reserved = add_numbers(service, 2, reserved=True)
    s = service.sessions.create()
    ctx = service.sessions(s.sid)

    alice = ctx.participants.create(identifier=identifier(), friendly_name="alice")
    helpers.assert_sid(alice.sid, "KP")
    assert (alice.session_sid, alice.service_sid, alice.account_sid) == (s.sid, service.sid, helpers.ACCOUNT_SID)
    assert alice.friendly_name == "alice" and alice.date_deleted is None
    assert (alice.proxy_identifier, alice.proxy_identifier_sid) == (free.phone_number, free.sid), "not a reserved one"
    assert alice.url.endswith(f"/Sessions/{s.sid}/Participants/{alice.sid}")
    assert alice.links["message_interactions"] == alice.url + "/MessageInteractions"
    helpers.assert_recent(alice.date_created)
    assert in_use(service, free.sid) == 1

    # An explicit ProxyIdentifier may name a reserved number.
    bob = ctx.participants.create(identifier=identifier(), proxy_identifier=reserved[0].phone_number)
    assert (bob.proxy_identifier, bob.proxy_identifier_sid) == (reserved[0].phone_number, reserved[0].sid)
    assert in_use(service, reserved[0].sid) == 1

    fetched = ctx.participants(alice.sid).fetch()
    assert (fetched.sid, fetched.identifier) == (alice.sid, alice.identifier)
    assert (fetched.proxy_identifier, fetched.friendly_name) == (free.phone_number, "alice")
    assert [p.sid for p in ctx.participants.list()] == [alice.sid, bob.sid]
    assert [p.sid for p in ctx.participants.stream(page_size=1)] == [alice.sid, bob.sid], "paged one at a time"
    first = ctx.participants.page(page_size=1)
    assert [p.sid for p in first] == [alice.sid]
    assert [p.sid for p in first.next_page()] == [bob.sid]

    # Pool picks in other sessions: still the one unreserved number, for other identifiers.
    for _ in range(2):
        other = service.sessions.create()
        p = service.sessions(other.sid).participants.create(identifier=identifier())
        assert p.proxy_identifier_sid == free.sid
    assert in_use(service, free.sid) == 3
    assert [in_use(service, n.sid) for n in reserved] == [1, 0]

    removed = ctx.participants(alice.sid).delete_with_http_info()
    assert removed.status_code == 200, "Twilio's participant delete answers 200 with the participant"
    assert isinstance(removed.data, dict) and removed.data["sid"] == alice.sid and removed.data["date_deleted"]
    kept = ctx.participants(alice.sid).fetch()
    assert kept.date_deleted is not None
    helpers.assert_recent(kept.date_deleted)
    assert [p.sid for p in ctx.participants.list()] == [alice.sid, bob.sid], "still listed"
    assert in_use(service, free.sid) == 2, "a removed participant frees its pair"

    # A removed participant cannot come back.
    before = participants_state(ctx)
    fails(px, ctx.participants.create, 400, 80103, identifier=alice.identifier)
    assert participants_state(ctx) == before


def test_a_session_has_at_most_two_participants_each_identifier_once(px, service):
    add_numbers(service, 3)
    s = service.sessions.create()
    ctx = service.sessions(s.sid)
    first = ctx.participants.create(identifier=identifier())
    before = participants_state(ctx)
    fails(px, ctx.participants.create, 400, 80103, identifier=first.identifier)
    assert participants_state(ctx) == before
    ctx.participants.create(identifier=identifier())
    before = participants_state(ctx)
    fails(px, ctx.participants.create, 400, 80609, identifier=identifier())
    assert participants_state(ctx) == before, "a third participant is refused"


def test_explicit_proxy_identifiers_must_be_in_the_pool_and_free(px, service):
    [number] = add_numbers(service, 1)
    other_service = px.proxy.v1.services.create(unique_name=helpers.unique("pxs-other"))
    try:
        foreign = px.proxy.v1.services(other_service.sid).phone_numbers.create(phone_number=e164())
        s = service.sessions.create()
        ctx = service.sessions(s.sid)
        fails(px, ctx.participants.create, 400, 80605, identifier=identifier(), proxy_identifier=e164())
        fails(px, ctx.participants.create, 400, 80605, identifier=identifier(), proxy_identifier=foreign.phone_number)
        fails(px, ctx.participants.create, 400, 80605, identifier=identifier(), proxy_identifier_sid=foreign.sid)
        assert ctx.participants.list() == []

        who = identifier()
        first = service.sessions.create()
        service.sessions(first.sid).participants.create(identifier=who, proxy_identifier=number.phone_number)
        fails(px, ctx.participants.create, 400, 80604, identifier=who, proxy_identifier=number.phone_number)
        fails(px, ctx.participants.create, 400, 80604, identifier=who, proxy_identifier_sid=number.sid)
        assert ctx.participants.list() == []
        assert in_use(service, number.sid) == 1
    finally:
        px.proxy.v1.services(other_service.sid).delete()


def test_an_empty_or_reserved_only_pool_has_no_proxy_for_a_participant(px, service):
    s = service.sessions.create()
    ctx = service.sessions(s.sid)
    fails(px, ctx.participants.create, 400, 80203, identifier=identifier())
    add_numbers(service, 1, reserved=True)
    fails(px, ctx.participants.create, 400, 80203, identifier=identifier())
    assert ctx.participants.list() == []
    before = sessions_state(service)
    fails(px, service.sessions.create, 400, 80203, participants=[{"Identifier": identifier()}])
    assert sessions_state(service) == before, "a session whose participant cannot be placed is not made"


def test_a_one_number_pool_shares_or_refuses_a_pair(px, service):
    [number] = add_numbers(service, 1)
    who = identifier()
    a = service.sessions.create(participants=[{"Identifier": who}])
    b = service.sessions.create()
    shared = service.sessions(b.sid).participants.create(identifier=who)
    assert shared.proxy_identifier_sid == number.sid, "without FailOnParticipantConflict the pair is shared"
    assert in_use(service, number.sid) == 2

    c = service.sessions.create()
    path = f"/Services/{service.sid}/Sessions/{c.sid}/Participants"
    response = raw_post(path, {"Identifier": who, "FailOnParticipantConflict": "true"})
    helpers.assert_error_body(response, 400, 80604)
    assert service.sessions(c.sid).participants.list() == []

    before = sessions_state(service)
    response = raw_post(
        f"/Services/{service.sid}/Sessions",
        {"Participants": json.dumps({"Identifier": who}), "FailOnParticipantConflict": "true"},
    )
    helpers.assert_error_body(response, 400, 80604)
    assert sessions_state(service) == before
    assert in_use(service, number.sid) == 2

    # Closing the sessions frees the pair for a new one, even with the flag.
    service.sessions(a.sid).update(status="closed")
    service.sessions(b.sid).update(status="closed")
    assert in_use(service, number.sid) == 0
    response = raw_post(path, {"Identifier": who, "FailOnParticipantConflict": "true"})
    assert response.status_code == 201, response.text
    assert response.json()["proxy_identifier_sid"] == number.sid
    assert in_use(service, number.sid) == 1

    # Re-opening a session whose pair is active elsewhere: refused with the flag, shared without.
    reopen = {"Status": "in-progress", "FailOnParticipantConflict": "true"}
    response = raw_post(f"/Services/{service.sid}/Sessions/{a.sid}", reopen)
    helpers.assert_error_body(response, 400, 80604)
    assert service.sessions(a.sid).fetch().status == "closed"
    assert service.sessions(a.sid).update(status="in-progress").status == "in-progress"
    assert in_use(service, number.sid) == 2


# --- message interactions and interactions ---------------------------------------------------


def test_message_interactions_are_sent_listed_and_fetched(px, service):
    add_numbers(service, 2)
    s = service.sessions.create(participants=[{"Identifier": identifier()}, {"Identifier": identifier()}])
    ctx = service.sessions(s.sid)
    alice, bob = ctx.participants.list()

    response = ctx.participants(alice.sid).message_interactions.create_with_http_info(body="hello there")
    assert response.status_code == 200, "Twilio's Message Interaction create answers 200"
    mi = response.data
    helpers.assert_sid(mi.sid, "KI")
    assert (mi.session_sid, mi.service_sid, mi.account_sid) == (s.sid, service.sid, helpers.ACCOUNT_SID)
    assert isinstance(mi.data, str) and json.loads(mi.data)["body"] == "hello there"
    assert mi.participant_sid == alice.sid and mi.type == "message"
    assert mi.outbound_resource_type == "Message"
    assert mi.outbound_participant_sid == alice.sid
    assert mi.outbound_resource_status in RESOURCE_STATUSES
    helpers.assert_sid(mi.outbound_resource_sid, "SM")
    for field in ("inbound_participant_sid", "inbound_resource_sid", "inbound_resource_type", "inbound_resource_url"):
        assert not getattr(mi, field), f"{field} is {getattr(mi, field)!r}, not empty"
    assert not mi.inbound_resource_status
    assert mi.url.endswith(f"/Sessions/{s.sid}/Participants/{alice.sid}/MessageInteractions/{mi.sid}")
    helpers.assert_recent(mi.date_created)

    second = ctx.participants(alice.sid).message_interactions.create(body="x" * 1600)
    assert len(json.loads(second.data)["body"]) == 1600
    listed = ctx.participants(alice.sid).message_interactions.list()
    assert [m.sid for m in listed] == [mi.sid, second.sid]
    assert all(m.participant_sid == alice.sid for m in listed)
    assert [m.sid for m in ctx.participants(alice.sid).message_interactions.list(page_size=1)] == [mi.sid, second.sid]
    assert ctx.participants(bob.sid).message_interactions.list() == []
    fetched = ctx.participants(alice.sid).message_interactions(mi.sid).fetch()
    assert (fetched.sid, fetched.data, fetched.participant_sid) == (mi.sid, mi.data, alice.sid)
    fails(px, ctx.participants(bob.sid).message_interactions(mi.sid).fetch, 404, 20404)

    # The same messages are the session's interactions.
    assert [i.sid for i in ctx.interactions.list()] == [mi.sid, second.sid]
    through_session = ctx.interactions(mi.sid).fetch()
    assert (through_session.data, through_session.type) == (mi.data, "message")
    assert through_session.url.endswith(f"/Sessions/{s.sid}/Interactions/{mi.sid}")

    # Too long a body, a removed participant and a closed session are refused, sending nothing.
    fails(px, ctx.participants(alice.sid).message_interactions.create, 400, 20001, "Body", body="x" * 1601)
    ctx.participants(bob.sid).delete()
    exc = helpers.rest_error(ctx.participants(bob.sid).message_interactions.create, body="to nobody")
    assert exc.status == 400, (exc.status, exc.code, exc.msg)
    ctx.update(status="closed")
    fails(px, ctx.participants(alice.sid).message_interactions.create, 400, 80607, body="too late")
    assert [i.sid for i in ctx.interactions.list()] == [mi.sid, second.sid]


def test_interactions_page_fetch_and_delete_through_the_session(px, service):
    add_numbers(service, 2)
    s = service.sessions.create(participants=[{"Identifier": identifier()}, {"Identifier": identifier()}])
    ctx = service.sessions(s.sid)
    alice, bob = ctx.participants.list()
    sent = [
        ctx.participants(who.sid).message_interactions.create(body=f"message {n}")
        for n, who in enumerate([alice, bob, alice])
    ]
    sids = [m.sid for m in sent]

    assert [i.sid for i in ctx.interactions.list(page_size=2)] == sids
    assert [i.sid for i in ctx.interactions.stream(limit=2, page_size=1)] == sids[:2]
    page = ctx.interactions.page(page_size=2)
    first = [i.sid for i in page]
    following = page.next_page()
    assert following is not None
    rest = [i.sid for i in following]
    assert first + rest == sids and following.next_page() is None

    for m in sent:
        got = ctx.interactions(m.sid).fetch()
        assert (got.sid, got.session_sid, got.data, got.type) == (m.sid, s.sid, m.data, "message")
        assert got.outbound_resource_type == "Message"

    response = ctx.interactions(sids[1]).delete_with_http_info()
    assert response.status_code == 204
    fails(px, ctx.interactions(sids[1]).fetch, 404, 20404)
    fails(px, ctx.interactions(sids[1]).delete, 404, 20404)
    fails(px, ctx.participants(bob.sid).message_interactions(sids[1]).fetch, 404, 20404)
    assert [i.sid for i in ctx.interactions.list()] == [sids[0], sids[2]]
    assert ctx.participants(bob.sid).message_interactions.list() == []


# --- bad input -------------------------------------------------------------------------------

BAD_SESSION_CREATES = [
    ("UniqueName", {"unique_name": "n" * 192}),
    ("Ttl", {"ttl": "soon"}),
    ("Ttl", {"ttl": "1.5"}),
    ("Ttl", {"ttl": -1}),
    ("Ttl", {"ttl": 10**12}),
    ("Mode", {"mode": "carrier-pigeon"}),
    ("Status", {"status": "asleep"}),
    ("Status", {"status": "closed"}),
    ("DateExpiry", {"date_expiry": "tomorrow"}),
    ("DateExpiry", {"date_expiry": "2030-13-45T00:00:00Z"}),
    ("Participants", {"participants": ["not json"]}),
    ("Participants", {"participants": ['"a string"']}),
    ("Participants", {"participants": [["a", "list"]]}),
    ("Participants", {"participants": [{"Identifier": "+15550000001", "Colour": "red"}]}),
    ("Participants", {"participants": [{"FriendlyName": "nobody"}]}),
    ("Identifier", {"participants": [{"Identifier": "i" * 192}]}),
    ("FriendlyName", {"participants": [{"Identifier": "+15550000002", "FriendlyName": "f" * 256}]}),
    ("ProxyIdentifierSid", {"participants": [{"Identifier": "+15550000003", "ProxyIdentifierSid": "PN123"}]}),
    ("ProxyIdentifierSid", {"participants": [{"Identifier": "+15550000004", "ProxyIdentifierSid": "KS" + "0" * 32}]}),
]


@pytest.mark.parametrize("field,kwargs", BAD_SESSION_CREATES, ids=case_ids(BAD_SESSION_CREATES))
def test_a_bad_session_create_is_refused_naming_the_field(px, service, field, kwargs):
    add_numbers(service, 1)
    service.sessions.create(unique_name=helpers.unique("already-there"))
    before = sessions_state(service)
    fails(px, service.sessions.create, 400, 20001, field, **kwargs)
    assert sessions_state(service) == before, "a refused create makes nothing"


def test_more_than_two_participants_at_session_create_are_refused(px, service):
    add_numbers(service, 3)
    before = sessions_state(service)
    three = [{"Identifier": identifier()} for _ in range(3)]
    fails(px, service.sessions.create, 400, 80609, "Participants", participants=three)
    assert sessions_state(service) == before
    assert [in_use(service, n.sid) for n in service.phone_numbers.list()] == [0, 0, 0]


def test_the_longest_unique_name_is_accepted_and_a_taken_one_refused(px, service):
    name = helpers.unique("n") + "n" * (191 - len(helpers.unique("n")))
    assert len(name) == 191
    s = service.sessions.create(unique_name=name)
    assert s.unique_name == name
    before = sessions_state(service)
    # Twilio documents 80603 "Non Unique Session Name" (its HTTP status is not documented).
    exc = helpers.rest_error(service.sessions.create, unique_name=name)
    assert exc.status in (400, 409), (exc.status, exc.code, exc.msg)
    wire_error(px, exc, exc.status, 80603, "UniqueName")
    assert sessions_state(service) == before


BAD_SESSION_UPDATES = [
    ("Ttl", {"ttl": "forever"}),
    ("Ttl", {"ttl": 10**12}),
    ("DateExpiry", {"date_expiry": "next tuesday"}),
    ("Status", {"status": "paused"}),
]


@pytest.mark.parametrize("field,kwargs", BAD_SESSION_UPDATES, ids=case_ids(BAD_SESSION_UPDATES))
def test_a_bad_session_update_is_refused_naming_the_field(px, service, field, kwargs):
    s = service.sessions.create(ttl=100)
    before = session_state(service.sessions(s.sid).fetch())
    fails(px, service.sessions(s.sid).update, 400, 20001, field, **kwargs)
    assert session_state(service.sessions(s.sid).fetch()) == before


BAD_PARTICIPANTS = [
    ("Identifier", {"identifier": "i" * 192}),
    ("Identifier", {"identifier": ""}),
    ("FriendlyName", {"friendly_name": "f" * 256}),
    ("ProxyIdentifierSid", {"proxy_identifier_sid": "PN-not-a-sid"}),
    ("ProxyIdentifierSid", {"proxy_identifier_sid": "KC" + "a" * 32}),
]


@pytest.mark.parametrize("field,kwargs", BAD_PARTICIPANTS, ids=case_ids(BAD_PARTICIPANTS))
def test_a_bad_participant_is_refused_naming_the_field(px, service, field, kwargs):
    [number] = add_numbers(service, 1)
    s = service.sessions.create()
    ctx = service.sessions(s.sid)
    kwargs = {"identifier": identifier(), **kwargs}
    fails(px, ctx.participants.create, 400, 20001, field, **kwargs)
    assert ctx.participants.list() == []
    assert in_use(service, number.sid) == 0


@pytest.mark.parametrize("size", [0, 1001])
def test_page_sizes_outside_1_to_1000_are_refused_on_every_list(px, service, size):
    add_numbers(service, 2)
    s = service.sessions.create(participants=[{"Identifier": identifier()}])
    ctx = service.sessions(s.sid)
    [p] = ctx.participants.list()
    lists = [
        service.sessions,
        ctx.participants,
        ctx.interactions,
        ctx.participants(p.sid).message_interactions,
    ]
    for listing in lists:
        fails(px, listing.page, 400, 20001, "PageSize", page_size=size)
        assert listing.page(page_size=1000) is not None


def test_malformed_or_unknown_sids_in_paths_are_not_found(px, service):
    add_numbers(service, 1)
    s = service.sessions.create(participants=[{"Identifier": identifier()}])
    ctx = service.sessions(s.sid)
    [p] = ctx.participants.list()
    mi = ctx.participants(p.sid).message_interactions.create(body="hi")
    unknown_kc, unknown_kp, unknown_ki = "KC" + "0" * 32, "KP" + "0" * 32, "KI" + "0" * 32
    calls = [
        px.proxy.v1.services("KSnot-a-sid").sessions.list,
        px.proxy.v1.services("KS" + "0" * 32).sessions.list,
        service.sessions("KCbogus").fetch,
        service.sessions(unknown_kc).fetch,
        service.sessions(unknown_kc).participants.list,
        ctx.participants("KPbogus").fetch,
        ctx.participants(unknown_kp).fetch,
        ctx.participants("KPbogus").delete,
        ctx.participants("KPbogus").message_interactions.list,
        ctx.participants(unknown_kp).message_interactions.list,
        ctx.participants(p.sid).message_interactions("KIbogus").fetch,
        ctx.participants(p.sid).message_interactions(unknown_ki).fetch,
        ctx.interactions("KIbogus").fetch,
        ctx.interactions(unknown_ki).fetch,
        ctx.interactions("KIbogus").delete,
        service.sessions(unknown_kc).interactions(mi.sid).fetch,
    ]
    for call in calls:
        fails(px, call, 404, 20404)
    fails(px, ctx.participants("KPbogus").message_interactions.create, 404, 20404, body="hi")
    fails(px, service.sessions(unknown_kc).participants.create, 404, 20404, identifier=identifier())
    fails(px, service.sessions(unknown_kc).update, 404, 20404, ttl=5)
    fails(px, service.sessions("KCbogus").delete, 404, 20404)
    assert [i.sid for i in ctx.interactions.list()] == [mi.sid]
    assert [x.sid for x in service.sessions.list()] == [s.sid]
