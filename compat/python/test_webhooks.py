"""Service webhooks checked by Twilio's own code: twilio-python's RequestValidator accepts the
X-Twilio-Signature of every webhook the server sends, computed with the account's AuthToken."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator

import helpers

# Webhooks are delivered promptly; this bounds the wait, it is not a timing assertion.
DELIVERY_TIMEOUT = 30


class Receiver:
    """A local HTTP server that records the webhooks it is sent and answers 204."""

    def __init__(self):
        self.received = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                with receiver.cond:
                    receiver.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, dict(parse_qsl(body, keep_blank_values=True))))
                    receiver.cond.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/sync?tenant=a"

    def wait_for(self, n):
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        with self.cond:
            while len(self.received) < n:
                left = deadline - time.monotonic()
                assert left > 0, f"only {len(self.received)} of {n} webhooks arrived"
                self.cond.wait(left)
            return list(self.received)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_webhooks_validate_with_twilios_request_validator(client):
    receiver = Receiver()
    try:
        service = client.sync.v1.services.create(
            friendly_name=helpers.unique("hooks"), webhook_url=receiver.url, webhooks_from_rest_enabled=True
        )
        assert service.webhook_url == receiver.url and service.webhooks_from_rest_enabled is True
        docs = client.sync.v1.services(service.sid).documents
        doc = docs.create(unique_name="settings", data={"theme": "dark", "note": "é & ="})
        docs(doc.sid).update(data={"theme": "light"})
        received = receiver.wait_for(2)

        validator = RequestValidator(helpers.AUTH_TOKEN)
        for path, headers, params in received:
            assert path == "/hooks/sync?tenant=a"
            signature = headers.get("x-twilio-signature")
            assert signature, f"no signature on {params}"
            assert validator.validate(receiver.url, params, signature), f"signature rejected for {params}"
            assert not validator.validate(receiver.url, {**params, "Identity": "mallory"}, signature)

        created, updated = (p for _, _, p in received[:2])
        assert (created["EventType"], updated["EventType"]) == ("document_created", "document_updated")
        assert created["AccountSid"] == helpers.ACCOUNT_SID and created["ServiceSid"] == service.sid
        assert created["DocumentSid"] == doc.sid and created["DocumentUniqueName"] == "settings"
        assert created["Identity"] == "system"
        assert (created["DocumentRevision"], updated["DocumentRevision"]) == ("0", "1")
        assert json.loads(created["DocumentData"]) == {"theme": "dark", "note": "é & ="}
        client.sync.v1.services(service.sid).delete()
    finally:
        receiver.close()
