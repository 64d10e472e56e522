"""Shared helpers for the matrix-nio compat tests (test_matrix_*.py): fresh users registered
through nio's AsyncClient, bounded syncs, raw requests for the calls nio lacks, a room two users
share, and readers for nio's parsed events.

Every client made here uses CONFIG and every request is bounded: nio would otherwise retry
connection errors and 429s forever, and applies no client timeout at all to a sync with
timeout=0 or full_state."""

import asyncio
import json
import uuid

from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinResponse,
    RegisterResponse,
    RoomCreateResponse,
    RoomMemberEvent,
    SyncResponse,
)

import helpers

CONFIG = AsyncClientConfig(max_limit_exceeded=0, max_timeouts=0, request_timeout=20)

# How long one request made through these helpers may take, in seconds.
TIMEOUT = 20


def run(coro):
    return asyncio.run(coro)


def localpart(prefix="nio-"):
    """A fresh user name; the prefix lets a test order users by name."""
    return prefix + uuid.uuid4().hex[:10]


async def user(name=None):
    """A client logged in as a newly registered user (password "pw", device "phone")."""
    name = name or localpart()
    client = AsyncClient(helpers.URL, name, config=CONFIG)
    registered = await client.register(name, "pw", "phone")
    assert isinstance(registered, RegisterResponse), registered
    return client


async def pair():
    return await user(), await user()


async def close(*clients):
    for c in clients:
        await c.close()


async def sync(client, **kwargs):
    """nio's sync, bounded even when nio applies no client timeout (timeout=0, full_state)."""
    kwargs.setdefault("timeout", 0)
    response = await asyncio.wait_for(client.sync(**kwargs), TIMEOUT)
    assert isinstance(response, SyncResponse), response
    return response


async def initial_sync(client, **kwargs):
    """nio turns a sync without `since` into an incremental one once it has synced."""
    client.next_batch = None
    return await sync(client, **kwargs)


async def raw(client, method, path, body=None):
    """A request nio has no call for, built as nio builds its own and sent with the client's
    access token (if any); answers the HTTP status and the JSON body."""
    headers = {"Content-Type": "application/json"}
    if client.access_token:
        headers["Authorization"] = f"Bearer {client.access_token}"
    data = None if body is None else json.dumps(body)
    response = await asyncio.wait_for(client.send(method, path, data, headers), TIMEOUT)
    return response.status, await response.json(content_type=None)


async def shared_room(a, b, **kwargs):
    """A room `a` creates (with room_create's kwargs), invites `b` to and `b` joins."""
    created = await a.room_create(invite=[b.user_id], **kwargs)
    assert isinstance(created, RoomCreateResponse), created
    assert isinstance(await b.join(created.room_id), JoinResponse)
    return created.room_id


def bodies(events):
    return [e.body for e in events if hasattr(e, "body")]


def members_in(events):
    """(user, membership) of the m.room.member events among nio's parsed events, in order
    (`dict(...)` of it keeps each user's last)."""
    return [(e.state_key, e.membership) for e in events if isinstance(e, RoomMemberEvent)]
