"""matrix-nio's AsyncClient against the Matrix face: register (the dummy stage in the first
request), whoami, password login on a second device, a refused login, logout."""

import asyncio
import uuid

from nio import (
    AsyncClient,
    LoginError,
    LoginResponse,
    LogoutResponse,
    RegisterResponse,
    WhoamiError,
    WhoamiResponse,
)

import helpers


def run(coro):
    return asyncio.run(coro)


def localpart():
    return "nio-" + uuid.uuid4().hex[:10]


def test_register_whoami_login_logout():
    async def flow():
        name = localpart()
        first = AsyncClient(helpers.URL, name)
        second = AsyncClient(helpers.URL, name)
        stranger = AsyncClient(helpers.URL, name)
        try:
            registered = await first.register(name, "correct horse", "phone")
            assert isinstance(registered, RegisterResponse), registered
            assert registered.user_id == f"@{name}:localhost"
            assert registered.access_token and registered.device_id

            me = await first.whoami()
            assert isinstance(me, WhoamiResponse), me
            assert (me.user_id, me.device_id) == (registered.user_id, registered.device_id)

            logged_in = await second.login("correct horse", device_name="laptop")
            assert isinstance(logged_in, LoginResponse), logged_in
            assert logged_in.user_id == registered.user_id
            assert logged_in.device_id != registered.device_id

            refused = await stranger.login("wrong password")
            assert isinstance(refused, LoginError), refused
            assert refused.status_code == "M_FORBIDDEN"

            token = second.access_token
            out = await second.logout()
            assert isinstance(out, LogoutResponse), out
            # nio forgets the token on logout; a client still holding it is refused.
            stranger.restore_login(registered.user_id, logged_in.device_id, token)
            gone = await stranger.whoami()
            assert isinstance(gone, WhoamiError), gone
            assert gone.status_code == "M_UNKNOWN_TOKEN"
            still = await first.whoami()
            assert isinstance(still, WhoamiResponse), "the other device stays logged in"
        finally:
            for c in (first, second, stranger):
                await c.close()

    run(flow())


def test_a_taken_name_is_refused():
    async def flow():
        name = localpart()
        a, b = AsyncClient(helpers.URL, name), AsyncClient(helpers.URL, name)
        try:
            assert isinstance(await a.register(name, "pw"), RegisterResponse)
            again = await b.register(name, "pw")
            assert not isinstance(again, RegisterResponse)
            assert again.status_code == "M_USER_IN_USE"
        finally:
            await a.close()
            await b.close()

    run(flow())
