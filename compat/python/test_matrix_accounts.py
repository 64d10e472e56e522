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


def test_filters_profile_and_devices():
    async def flow():
        from nio import (
            DeleteDevicesAuthResponse,
            DeleteDevicesResponse,
            DevicesResponse,
            ProfileGetDisplayNameResponse,
            ProfileGetResponse,
            ProfileSetDisplayNameResponse,
            UpdateDeviceResponse,
            UploadFilterResponse,
        )

        name = localpart()
        phone, laptop = AsyncClient(helpers.URL, name), AsyncClient(helpers.URL, name)
        try:
            registered = await phone.register(name, "pw", "phone")
            assert isinstance(registered, RegisterResponse), registered
            assert isinstance(await laptop.login("pw", device_name="laptop"), LoginResponse)

            uploaded = await phone.upload_filter(room={"timeline": {"limit": 7}})
            assert isinstance(uploaded, UploadFilterResponse), uploaded
            assert uploaded.filter_id and not uploaded.filter_id.startswith("{")

            assert isinstance(await phone.set_displayname("Phone Owner"), ProfileSetDisplayNameResponse)
            shown = await laptop.get_displayname()
            assert isinstance(shown, ProfileGetDisplayNameResponse), shown
            assert shown.displayname == "Phone Owner"
            profile = await laptop.get_profile(registered.user_id)
            assert isinstance(profile, ProfileGetResponse), profile
            assert profile.displayname == "Phone Owner"

            devices = await phone.devices()
            assert isinstance(devices, DevicesResponse), devices
            assert sorted(d.id for d in devices.devices) == sorted([registered.device_id, laptop.device_id])
            renamed = await phone.update_device(laptop.device_id, {"display_name": "old laptop"})
            assert isinstance(renamed, UpdateDeviceResponse), renamed
            names = {d.id: d.display_name for d in (await phone.devices()).devices}
            assert names[laptop.device_id] == "old laptop"

            # The first call learns the auth stage; the second passes the password.
            challenge = await phone.delete_devices([laptop.device_id])
            assert isinstance(challenge, DeleteDevicesAuthResponse), challenge
            auth = {"type": "m.login.password", "user": registered.user_id, "password": "pw",
                    "session": challenge.session}
            deleted = await phone.delete_devices([laptop.device_id], auth)
            assert isinstance(deleted, DeleteDevicesResponse), deleted
            assert [d.id for d in (await phone.devices()).devices] == [registered.device_id]
        finally:
            await phone.close()
            await laptop.close()

    run(flow())


def test_media_upload_and_download():
    async def flow():
        import io

        from nio import DownloadResponse, UploadResponse

        name = localpart()
        client = AsyncClient(helpers.URL, name)
        try:
            assert isinstance(await client.register(name, "pw"), RegisterResponse)
            data = b"hello, media" * 100
            uploaded, _keys = await client.upload(
                io.BytesIO(data), content_type="text/plain", filename="hello.txt", filesize=len(data)
            )
            assert isinstance(uploaded, UploadResponse), uploaded
            assert uploaded.content_uri.startswith("mxc://localhost/")
            downloaded = await client.download(uploaded.content_uri)
            assert isinstance(downloaded, DownloadResponse), downloaded
            assert downloaded.body == data
            assert downloaded.content_type == "text/plain"
            assert downloaded.filename == "hello.txt"
        finally:
            await client.close()

    run(flow())


def test_presence_is_set_and_read():
    async def flow():
        from nio import PresenceGetResponse, PresenceSetResponse

        name = localpart()
        client = AsyncClient(helpers.URL, name)
        try:
            registered = await client.register(name, "pw")
            assert isinstance(registered, RegisterResponse), registered
            assert isinstance(await client.set_presence("online", "around"), PresenceSetResponse)
            seen = await client.get_presence(registered.user_id)
            assert isinstance(seen, PresenceGetResponse), seen
            assert (seen.presence, seen.status_msg, seen.currently_active) == ("online", "around", True)
        finally:
            await client.close()

    run(flow())


def test_rooms_create_join_send_state_leave():
    async def flow():
        from nio import (
            JoinResponse,
            JoinedMembersResponse,
            RoomCreateResponse,
            RoomInviteResponse,
            RoomLeaveResponse,
            RoomPutStateResponse,
            RoomSendResponse,
        )

        a_name, b_name = localpart(), localpart()
        a, b = AsyncClient(helpers.URL, a_name), AsyncClient(helpers.URL, b_name)
        try:
            assert isinstance(await a.register(a_name, "pw"), RegisterResponse)
            assert isinstance(await b.register(b_name, "pw"), RegisterResponse)
            created = await a.room_create(name="nio room", topic="testing")
            assert isinstance(created, RoomCreateResponse), created
            room = created.room_id
            assert isinstance(await a.room_invite(room, b.user_id), RoomInviteResponse)
            joined = await b.join(room)
            assert isinstance(joined, JoinResponse), joined
            assert joined.room_id == room
            sent = await b.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "hi"})
            assert isinstance(sent, RoomSendResponse), sent
            assert sent.event_id.startswith("$")
            put = await a.room_put_state(room, "m.room.topic", {"topic": "changed"})
            assert isinstance(put, RoomPutStateResponse), put
            members = await a.joined_members(room)
            assert isinstance(members, JoinedMembersResponse), members
            assert sorted(m.user_id for m in members.members) == sorted([a.user_id, b.user_id])
            assert isinstance(await b.room_leave(room), RoomLeaveResponse)
        finally:
            await a.close()
            await b.close()

    run(flow())
