"""Refusals keep the connection usable. twilio-python (requests) reuses pooled keep-alive
connections, so a server that answers a POST before reading its body and then drops the
connection (without saying `Connection: close`) breaks the client's *next* call with
"Remote end closed connection without response". Here the body is sent a moment after the
headers, as it sometimes is on a real network, and the same connection is then reused."""

import base64
import socket
import time
from urllib.parse import urlsplit

import pytest

from helpers import ACCOUNT_SID, AUTH_TOKEN, HTTP_TIMEOUT, URL

ORIGIN = urlsplit(URL)
GOOD = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
BAD = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:wrong".encode()).decode()


class Connection:
    """One keep-alive HTTP/1.1 connection, spoken by hand."""

    def __init__(self):
        self.sock = socket.create_connection((ORIGIN.hostname, ORIGIN.port), timeout=HTTP_TIMEOUT)
        self.buffer = b""

    def close(self):
        self.sock.close()

    def send(self, method, path, authorization=GOOD, headers=None, body=b"", body_pause=0.0):
        lines = [f"{method} {path} HTTP/1.1", f"Host: {ORIGIN.netloc}", f"Authorization: {authorization}"]
        if body:
            lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        if body and body_pause:
            self.sock.sendall(head)
            time.sleep(body_pause)  # the body in a later segment; not a timing assertion
            self.sock.sendall(body)
        else:
            self.sock.sendall(head + body)
        return self.response()

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection without a response")
        self.buffer += chunk

    def response(self):
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, body


@pytest.fixture
def paths(service, service_instance):
    service.documents.create(unique_name="d", data={"v": 0})
    the_list = service.sync_lists.create(unique_name="l")
    service.sync_lists(the_list.sid).sync_list_items.create(data={"v": 0})
    service.sync_maps.create(unique_name="m")
    service.sync_maps("m").sync_map_items.create(key="k", data={"v": 0})
    base = f"/twilio/sync/v1/Services/{service_instance.sid}"
    return {
        "document": base + "/Documents/d",
        "list_item": base + "/Lists/l/Items/" + str(service.sync_lists("l").sync_list_items.list()[0].index),
        "map_item": base + "/Maps/m/Items/k",
        "service": base,
        "missing_service": "/twilio/sync/v1/Services/IS" + "0" * 32 + "/Documents",
    }


REFUSALS = [
    ("malformed If-Match on a document", "document", {"If-Match": "zz"}, GOOD, 400),
    ("malformed If-Match on a list item", "list_item", {"If-Match": "zz"}, GOOD, 400),
    ("malformed If-Match on a map item", "map_item", {"If-Match": "zz"}, GOOD, 400),
    ("stale If-Match", "document", {"If-Match": "999"}, GOOD, 412),
    ("wrong credentials", "document", {}, BAD, 401),
    ("an unknown service", "missing_service", {}, GOOD, 404),
]


@pytest.mark.parametrize("what,target,headers,authorization,status", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_the_connection_survives_a_refused_post(paths, what, target, headers, authorization, status):
    conn = Connection()
    try:
        got, response_headers, _ = conn.send(
            "POST", paths[target], authorization, headers, body=b"Data=%7B%22v%22%3A+1%7D", body_pause=0.2
        )
        assert got == status, f"{what}: {got}"
        if response_headers.get("connection", "").lower() == "close":
            return  # the server said so: a client opens a new connection
        try:
            after, _, _ = conn.send("GET", paths["service"])
        except (ConnectionError, OSError) as e:
            pytest.fail(f"after {what} ({status}) the kept-alive connection was dropped: {e!r}")
        assert after == 200
    finally:
        conn.close()
