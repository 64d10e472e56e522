"""Fixtures: twilio-python clients built from the FERROSYNC_* variables, and a fresh Sync
service per test (a unique friendly name; deleted afterwards)."""

import pytest
from twilio.base.exceptions import TwilioRestException

import helpers


@pytest.fixture(scope="session")
def client():
    """Basic auth with the account's SID and auth token."""
    return helpers.make_client(helpers.ACCOUNT_SID, helpers.AUTH_TOKEN)


@pytest.fixture(scope="session")
def key_client():
    """Basic auth with an API key's SID and secret."""
    return helpers.make_client(helpers.API_KEY_SID, helpers.API_KEY_SECRET, account_sid=helpers.ACCOUNT_SID)


@pytest.fixture
def service_instance(client, request):
    name = helpers.unique("compat-" + request.node.name[:40])
    instance = client.sync.v1.services.create(friendly_name=name)
    yield instance
    try:
        client.sync.v1.services(instance.sid).delete()
    except TwilioRestException:
        pass


@pytest.fixture
def service(client, service_instance):
    """The ServiceContext of a fresh service: `service.documents`, `service.sync_lists`, …"""
    return client.sync.v1.services(service_instance.sid)
