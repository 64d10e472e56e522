"""Shared helpers for the twilio-python compat suite (imported by conftest and the tests)."""

import datetime
import os
import re
import uuid

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import SyncGrant
from twilio.rest import Client

URL = os.environ["FERROSYNC_URL"].rstrip("/")
ACCOUNT_SID = os.environ["FERROSYNC_ACCOUNT_SID"]
AUTH_TOKEN = os.environ["FERROSYNC_AUTH_TOKEN"]
API_KEY_SID = os.environ["FERROSYNC_API_KEY_SID"]
API_KEY_SECRET = os.environ["FERROSYNC_API_KEY_SECRET"]

SYNC_BASE = URL + "/twilio/sync"
PROXY_BASE = URL + "/twilio/proxy"
SYNC_V1 = SYNC_BASE + "/v1"
API_BASE = URL + "/twilio/api"
IAM_BASE = URL + "/twilio/iam"

# Requests made directly (not through twilio-python) must not hang the suite.
HTTP_TIMEOUT = 30

# Not-found codes per kind of object: Twilio's generic 20404, or the kind's own code
# (54300 when an object is addressed by a unique name that does not exist).
NOT_FOUND = {
    "service": {20404},
    "document": {20404, 54100, 54300},
    "list": {20404, 54150, 54300},
    "list_item": {20404, 54151},
    "map": {20404, 54200, 54300},
    "map_item": {20404, 54201},
    "stream": {20404, 54300},
    "permission": {20404},
    "key": {20404},
}


def make_client(username, password, account_sid=None):
    """A twilio-python client pointed at the server under test."""
    # A non-empty environment keeps TWILIO_EDGE / TWILIO_REGION from rewriting the host.
    client = Client(username, password, account_sid=account_sid, environment={"_": "1"})
    client.sync.base_url = SYNC_BASE
    client.proxy.base_url = PROXY_BASE
    client.api.base_url = API_BASE
    client.iam.base_url = IAM_BASE
    return client


def unique(prefix):
    """A name no other test (or run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def rest_error(call, *args, **kwargs):
    """Runs `call`, which must fail with a TwilioRestException; returns the exception."""
    with pytest.raises(TwilioRestException) as info:
        call(*args, **kwargs)
    return info.value


def assert_error(exc, status, codes):
    """A TwilioRestException with this HTTP status and one of `codes` (an int or a set)."""
    codes = {codes} if isinstance(codes, int) else set(codes)
    assert exc.status == status, f"status {exc.status} (code {exc.code}): {exc.msg}"
    assert exc.code in codes, f"code {exc.code} not in {sorted(codes)} (status {exc.status}): {exc.msg}"


def raw(method, path, auth=(ACCOUNT_SID, AUTH_TOKEN), **kwargs):
    """A request made with `requests`, bypassing twilio-python; `path` is under the origin."""
    kwargs.setdefault("timeout", HTTP_TIMEOUT)
    url = path if path.startswith("http") else URL + path
    return requests.request(method, url, auth=auth, **kwargs)


def assert_error_body(response, status, codes):
    """The raw response is a legacy Twilio error: code, message, more_info, status and no
    RFC 9457 `type`/`title` (which would make twilio-python raise another exception class)."""
    codes = {codes} if isinstance(codes, int) else set(codes)
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    for field in ("code", "message", "more_info", "status"):
        assert field in body, f"no `{field}` in {body}"
    assert "type" not in body and "title" not in body, body
    assert body["code"] in codes, body
    assert body["status"] == status, body
    assert isinstance(body["message"], str) and body["message"], body
    assert isinstance(body["more_info"], str) and body["more_info"].startswith("http"), body
    return body


SID = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")


def assert_sid(value, prefix):
    assert isinstance(value, str) and SID.match(value), f"not a SID: {value!r}"
    assert value.startswith(prefix), f"{value} does not start with {prefix}"


def assert_recent(value):
    """A date twilio-python parsed (so it came in the format the library expects for that
    resource: ISO 8601 `…Z` for Sync, RFC 2822 for keys), close to now."""
    assert isinstance(value, datetime.datetime), f"not parsed as a date: {value!r}"
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - value).total_seconds()) < 3600, f"{value} is not around {now}"


def assert_expires_in(value, ttl):
    """`date_expires` is about now + ttl (generous slack: this is not a timing test)."""
    assert isinstance(value, datetime.datetime), f"date_expires not parsed as a date: {value!r}"
    now = datetime.datetime.now(datetime.timezone.utc)
    delta = (value - now).total_seconds()
    assert ttl - 300 <= delta <= ttl + 5, f"date_expires {value} is not about now ({now}) + {ttl}s"


def etag_of(response):
    """The ETag header of an ApiResponse, unquoted."""
    headers = {k.lower(): v for k, v in response.headers.items()}
    assert "etag" in headers, f"no ETag header in {headers}"
    return headers["etag"].strip('"')


def big_data(size):
    """A JSON object whose json.dumps form (as twilio-python sends it) is `size` bytes or more."""
    return {"blob": "x" * size}


def token_for(key_sid, key_secret, service_sid, identity="alice"):
    """An access token minted by twilio-python's own AccessToken with a SyncGrant."""
    token = AccessToken(ACCOUNT_SID, key_sid, key_secret, identity=identity, ttl=3600)
    token.add_grant(SyncGrant(service_sid=service_sid))
    jwt_text = token.to_jwt()
    return jwt_text.decode() if isinstance(jwt_text, bytes) else jwt_text
