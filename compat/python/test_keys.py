"""API keys through Twilio's two key APIs (2010-04-01 Keys.json and IAM v1 Keys), and access
tokens minted by twilio-python with such a key, accepted by the server's native API."""

import datetime

import jwt
import requests
from helpers import (
    ACCOUNT_SID,
    HTTP_TIMEOUT,
    NOT_FOUND,
    URL,
    assert_error,
    assert_recent,
    assert_sid,
    make_client,
    raw,
    rest_error,
    token_for,
    unique,
)


def native_get(path, token):
    return requests.get(URL + "/api/v1" + path, headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT)


def test_keys_through_the_2010_api(client):
    keys = client.api.v2010.account.keys
    name = unique("key-2010")
    created = client.api.v2010.account.new_keys.create(friendly_name=name)
    assert_sid(created.sid, "SK")
    assert created.friendly_name == name
    assert isinstance(created.secret, str) and len(created.secret) >= 16
    assert_recent(created.date_created)

    fetched = keys(created.sid).fetch()
    assert fetched.sid == created.sid and fetched.friendly_name == name
    assert_recent(fetched.date_created)
    renamed = unique("renamed")
    assert keys(created.sid).update(friendly_name=renamed).friendly_name == renamed
    assert keys(created.sid).fetch().friendly_name == renamed
    other_account = client.api.v2010.accounts("AC" + "0" * 32).keys(created.sid)
    assert_error(rest_error(other_account.fetch), 404, NOT_FOUND["key"])
    path = f"/twilio/api/2010-04-01/Accounts/{ACCOUNT_SID}/Keys/{created.sid}.json"
    body = raw("GET", path).json()
    assert "secret" not in body or body["secret"] in (None, ""), "the secret is shown only at creation"

    # The new key authenticates.
    as_key = make_client(created.sid, created.secret, account_sid=ACCOUNT_SID)
    assert as_key.api.v2010.account.keys(created.sid).fetch().sid == created.sid

    others = [client.api.v2010.account.new_keys.create(friendly_name=unique("more")).sid for _ in range(2)]
    listed = [k.sid for k in keys.list(page_size=1)]
    assert len(listed) == len(set(listed)), "a key listed twice across pages"
    assert {created.sid, *others} <= set(listed)

    for sid in (created.sid, *others):
        assert keys(sid).delete() is True
    assert_error(rest_error(keys(created.sid).fetch), 404, NOT_FOUND["key"])
    assert created.sid not in {k.sid for k in keys.list()}
    bad = make_client(created.sid, created.secret, account_sid=ACCOUNT_SID)
    assert_error(rest_error(bad.sync.v1.services.create, friendly_name="x"), 401, 20003)


def test_keys_through_the_iam_api(client):
    name = unique("key-iam")
    created = client.iam.v1.new_api_key.create(account_sid=ACCOUNT_SID, friendly_name=name)
    assert_sid(created.sid, "SK")
    assert created.friendly_name == name
    assert isinstance(created.secret, str) and len(created.secret) >= 16
    assert_recent(created.date_created)

    fetched = client.iam.v1.api_key(created.sid).fetch()
    assert fetched.sid == created.sid and fetched.friendly_name == name
    assert_recent(fetched.date_created)
    renamed = unique("renamed")
    assert client.iam.v1.api_key(created.sid).update(friendly_name=renamed).friendly_name == renamed
    name = renamed

    listed = {k.sid: k for k in client.iam.v1.get_api_keys.list(account_sid=ACCOUNT_SID, page_size=1)}
    assert created.sid in listed and listed[created.sid].friendly_name == name
    assert_recent(listed[created.sid].date_created)
    # A key made through one API is visible through the other.
    assert client.api.v2010.account.keys(created.sid).fetch().friendly_name == name

    as_key = make_client(created.sid, created.secret, account_sid=ACCOUNT_SID)
    service = as_key.sync.v1.services.create(friendly_name=unique("iam-key"))
    as_key.sync.v1.services(service.sid).delete()

    assert client.iam.v1.api_key(created.sid).delete() is True
    assert_error(rest_error(client.iam.v1.api_key(created.sid).fetch), 404, NOT_FOUND["key"])
    assert created.sid not in {k.sid for k in client.iam.v1.get_api_keys.list(account_sid=ACCOUNT_SID)}


def test_an_access_token_from_twilio_python_is_accepted_until_its_key_is_deleted(client, service, service_instance):
    doc = service.documents.create(unique_name=unique("tok"), data={"hello": "world"})
    key = client.api.v2010.account.new_keys.create(friendly_name=unique("signer"))
    token = token_for(key.sid, key.secret, service_instance.sid)

    header = jwt.get_unverified_header(token)
    assert header["cty"] == "twilio-fpa;v=1"
    claims = jwt.decode(token, key.secret, algorithms=["HS256"], options={"verify_aud": False})
    assert claims["iss"] == key.sid and claims["sub"] == ACCOUNT_SID
    assert claims["grants"]["data_sync"]["service_sid"] == service_instance.sid

    r = native_get(f"/services/{service_instance.sid}/documents/{doc.sid}", token)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"hello": "world"}

    # What the token's identity creates is created_by that identity on the Twilio face.
    made = requests.post(
        f"{URL}/api/v1/services/{service_instance.sid}/documents",
        json={"unique_name": "by-alice", "data": {"from": "sdk"}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=HTTP_TIMEOUT,
    )
    assert made.status_code == 201, made.text
    assert service.documents("by-alice").fetch().created_by == "alice"

    forged = token_for(key.sid, key.secret + "x", service_instance.sid)
    assert native_get(f"/services/{service_instance.sid}/documents/{doc.sid}", forged).status_code == 401

    client.api.v2010.account.keys(key.sid).delete()
    r = native_get(f"/services/{service_instance.sid}/documents/{doc.sid}", token)
    assert r.status_code == 401, f"a token signed by a deleted key: {r.status_code} {r.text}"


def test_permissions_set_through_twilio_rest_govern_token_holders(client):
    acl = client.sync.v1.services.create(friendly_name=unique("acl"), acl_enabled=True)
    try:
        service = client.sync.v1.services(acl.sid)
        doc = service.documents.create(unique_name="guarded", data={"secret": 1})
        key = client.api.v2010.account.new_keys.create(friendly_name=unique("acl-signer"))
        token = token_for(key.sid, key.secret, acl.sid, identity="alice")
        path = f"/services/{acl.sid}/documents/{doc.sid}"

        assert native_get(path, token).status_code == 403, "no permission yet"
        service.documents(doc.sid).document_permissions("alice").update(read=True, write=False, manage=False)
        r = native_get(path, token)
        assert r.status_code == 200, r.text
        service.documents(doc.sid).document_permissions("alice").delete()
        assert native_get(path, token).status_code == 403, "the permission was removed"

        # With the ACL off, every identity of the service may read.
        client.sync.v1.services(acl.sid).update(acl_enabled=False)
        assert native_get(path, token).status_code == 200
        client.api.v2010.account.keys(key.sid).delete()
    finally:
        client.sync.v1.services(acl.sid).delete()


def test_key_dates_are_rfc2822(client):
    created = client.api.v2010.account.new_keys.create(friendly_name=unique("dates"))
    try:
        assert isinstance(created.date_created, datetime.datetime)
        body = raw("GET", f"/twilio/api/2010-04-01/Accounts/{ACCOUNT_SID}/Keys/{created.sid}.json").json()
        # e.g. "Mon, 13 Jun 2016 22:50:08 +0000"
        assert body["date_created"].endswith("+0000") and "," in body["date_created"], body
    finally:
        client.api.v2010.account.keys(created.sid).delete()
