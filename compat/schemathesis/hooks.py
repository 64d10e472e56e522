"""Schemathesis hooks: the service, objects, items, grants and index that schemathesis.toml's
dictionaries name exist before the first request, and again after any request that may have
removed, renamed or set to expire one of them, so most fuzzed requests get past a 404 and into
the handlers. schemathesis loads this module through SCHEMATHESIS_HOOKS=hooks."""

import os

import requests
import schemathesis

URL = os.environ["FERROSYNC_URL"].rstrip("/") + "/api/v1"
# Root credentials: unlike an API key, no fuzzed request can delete them.
AUTH = (os.environ["FERROSYNC_ACCOUNT_SID"], os.environ["FERROSYNC_AUTH_TOKEN"])
TIMEOUT = 10

# The same unique name for the service and for one object of each kind (names are per kind),
# so any collection drawn with any id names an existing object.
NAME = "fuzzed"
COLLECTIONS = ("documents", "lists", "maps", "streams")
# List indexes and map keys alike.
ITEMS = ("0", "1")
INDEX = "by-colour"
IDENTITY = "alice"


def _call(method, path, body=None, ok=(200, 201)):
    response = requests.request(method, URL + path, json=body, auth=AUTH, timeout=TIMEOUT)
    if response.status_code not in ok:
        raise RuntimeError(f"setting up {method} {path}: {response.status_code} {response.text}")
    return response


def ensure_fixtures():
    """Creates what is missing and takes the expiry off what is there."""
    if _call("GET", f"/services/{NAME}", ok=(200, 404)).status_code == 404:
        _call("POST", "/services", {"unique_name": NAME, "friendly_name": "fuzzed by schemathesis"})
    base = f"/services/{NAME}"
    for collection in COLLECTIONS:
        body = {"unique_name": NAME}
        if collection == "documents":
            body["data"] = {"colour": "red", "size": 3}
        _call("POST", f"{base}/{collection}", body)
        _call("PUT", f"{base}/{collection}/{NAME}", {"ttl": 0})
        _call("PUT", f"{base}/{collection}/{NAME}/permissions/{IDENTITY}", {"read": True, "write": True})
    # A list's indexes are never reused: once items 0 and 1 are gone, later ones take their place.
    items = _call("GET", f"{base}/lists/{NAME}/items", ok=(200,)).json()["items"]
    for n in range(len(items), len(ITEMS)):
        _call("POST", f"{base}/lists/{NAME}/items", {"data": {"colour": "blue", "n": n}})
    for key in ITEMS:
        _call("PUT", f"{base}/maps/{NAME}/items/{key}", {"data": {"colour": "green", "key": key}, "ttl": 0})
    _call("PUT", f"{base}/indexes/{INDEX}", {"map": NAME, "fields": ["data.colour"]})


_stale = True


@schemathesis.hook
def before_call(context, case, kwargs):
    global _stale
    if _stale:
        ensure_fixtures()
        _stale = False


@schemathesis.hook
def after_call(context, case, response):
    global _stale
    # The stateful phase checks that what a scenario deleted stays deleted (use_after_free), so
    # nothing is put back during it; it runs last.
    if not 200 <= response.status_code < 300 or (case.meta and case.meta.phase.name == "stateful"):
        return
    method = case.method.upper()
    renamed = method == "POST" and case.path == "/api/v1/services/{service}"
    expiring = isinstance(case.body, dict) and any(case.body.get(k) for k in ("ttl", "item_ttl", "collection_ttl"))
    if method == "DELETE" or renamed or expiring:
        _stale = True
