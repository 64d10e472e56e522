"""matrix-nio's AsyncClient against the Matrix face: register (the dummy stage in the first
request, and the interactive dance), username availability, whoami, password login on a second
device (by localpart, full user id and the deprecated `user` member), a refused login, logout and
logout/all; discovery (.well-known, /versions, GET /login, capabilities); filters, profiles
(display name, avatar, propagation to rooms) and devices (list, get, rename, delete one or many
with the password stage); presence; media (upload, download, thumbnails, config, the legacy
/_matrix/media/v3 routes). Calls nio lacks go through `AsyncClient.send` with paths built by
nio's `Api._build_path`."""

import asyncio
import uuid

from nio import (
    Api,
    AsyncClient,
    LoginError,
    LoginResponse,
    LogoutResponse,
    RegisterResponse,
    WhoamiError,
    WhoamiResponse,
)

import helpers
from matrix_helpers import CONFIG, localpart, raw, run


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


# ----- discovery, interactive registration, login forms, profiles, single devices, media -----

# Every request of the tests below is bounded (CONFIG, raw): nio would otherwise retry connection
# errors and 429s forever.


def test_discovery_versions_and_login_flows_need_no_account():
    async def flow():
        from nio import DiscoveryInfoResponse, LoginInfoResponse

        anonymous = AsyncClient(helpers.URL, config=CONFIG)
        try:
            found = await anonymous.discovery_info()
            assert isinstance(found, DiscoveryInfoResponse), found
            assert found.homeserver_url == helpers.URL
            flows = await anonymous.login_info()
            assert isinstance(flows, LoginInfoResponse), flows
            assert flows.flows == ["m.login.password"]
            # AsyncClient never asks for the versions; a client that does gets the spec's shape.
            status, versions = await raw(anonymous, "GET", "/_matrix/client/versions")
            assert status == 200 and isinstance(versions["unstable_features"], dict), versions
            assert {"r0.6.1", "v1.1", "v1.11"} <= set(versions["versions"])
            # The same API answers under the older r0 prefix, which nio never uses.
            assert await raw(anonymous, "GET", "/_matrix/client/r0/login") == (
                200, {"flows": [{"type": "m.login.password"}]})
            status, refused = await raw(anonymous, "GET", Api._build_path(["capabilities"]))
            assert (status, refused["errcode"]) == (401, "M_MISSING_TOKEN")
        finally:
            await anonymous.close()

    run(flow())


def test_interactive_registration_availability_login_forms_capabilities_and_logout_all():
    async def flow():
        from nio import LoginResponse, WhoamiError
        from nio.responses import RegisterInteractiveResponse  # not exported by nio's package

        name = localpart()
        phone = AsyncClient(helpers.URL, name, config=CONFIG)
        by_mxid = AsyncClient(helpers.URL, f"@{name}:localhost", config=CONFIG)
        legacy = AsyncClient(helpers.URL, config=CONFIG)
        try:
            available = Api._build_path(["register", "available"], {"username": name})
            assert await raw(phone, "GET", available) == (200, {"available": True})

            # The user-interactive dance: no auth stage yet, so the server names its flows...
            started = await phone.register_interactive(name, "pw", {"initial_device_display_name": "phone"})
            assert isinstance(started, RegisterInteractiveResponse), started
            assert started.stages == ["m.login.dummy"] and started.session
            assert started.transport_response.status == 401
            # ...and the dummy stage with that session completes it.
            registered = await phone.register(name, "pw", device_name="phone", session_token=started.session)
            assert isinstance(registered, RegisterResponse), registered
            assert registered.user_id == f"@{name}:localhost"
            status, taken = await raw(phone, "GET", available)
            assert (status, taken["errcode"]) == (400, "M_USER_IN_USE")

            status, caps = await raw(phone, "GET", Api._build_path(["capabilities"]))
            assert status == 200, caps
            versions = caps["capabilities"]["m.room_versions"]
            assert versions["default"] in versions["available"]
            assert caps["capabilities"]["m.change_password"] == {"enabled": False}

            # A full user id logs in as well as a localpart; so does the deprecated `user` member.
            assert isinstance(await by_mxid.login("pw", device_name="by mxid"), LoginResponse)
            assert by_mxid.user_id == registered.user_id
            old_style = await legacy.login_raw({"type": "m.login.password", "user": name, "password": "pw"})
            assert isinstance(old_style, LoginResponse), old_style
            assert old_style.user_id == registered.user_id
            devices = {registered.device_id, by_mxid.device_id, old_style.device_id}
            assert len(devices) == 3

            # logout/all ends every device's session, the caller's too.
            tokens = [(c.device_id, c.access_token) for c in (phone, by_mxid, legacy)]
            assert isinstance(await legacy.logout(all_devices=True), LogoutResponse)
            for device, token in tokens:
                phone.restore_login(registered.user_id, device, token)
                gone = await phone.whoami()
                assert isinstance(gone, WhoamiError) and gone.status_code == "M_UNKNOWN_TOKEN", (device, gone)
        finally:
            for c in (phone, by_mxid, legacy):
                await c.close()

    run(flow())


def test_avatars_single_devices_and_profile_changes_reaching_rooms():
    async def flow():
        from nio import (
            ProfileGetAvatarResponse,
            ProfileGetError,
            ProfileGetResponse,
            ProfileSetAvatarResponse,
            SyncResponse,
            WhoamiError,
        )

        name = localpart()
        phone = AsyncClient(helpers.URL, name, config=CONFIG)
        laptop = AsyncClient(helpers.URL, name, config=CONFIG)
        try:
            registered = await phone.register(name, "pw", "phone")
            assert isinstance(registered, RegisterResponse), registered
            assert isinstance(await laptop.login("pw", device_name="laptop"), LoginResponse)
            room = (await phone.room_create()).room_id
            assert isinstance(await phone.sync(timeout=0), SyncResponse)

            set_avatar = await phone.set_avatar("mxc://localhost/avatar")
            assert isinstance(set_avatar, ProfileSetAvatarResponse), set_avatar
            avatar = await laptop.get_avatar()
            assert isinstance(avatar, ProfileGetAvatarResponse), avatar
            assert avatar.avatar_url == "mxc://localhost/avatar"
            await phone.set_displayname("Renamed")
            profile = await laptop.get_profile()
            assert isinstance(profile, ProfileGetResponse), profile
            assert (profile.displayname, profile.avatar_url) == ("Renamed", "mxc://localhost/avatar")
            nobody = await laptop.get_profile("@nobody-" + uuid.uuid4().hex[:8] + ":localhost")
            assert isinstance(nobody, ProfileGetError) and nobody.status_code == "M_NOT_FOUND", nobody

            one = Api._build_path(["devices", laptop.device_id])
            status, device = await raw(phone, "GET", one)
            assert status == 200 and (device["device_id"], device["display_name"]) == (laptop.device_id, "laptop")
            status, challenge = await raw(phone, "DELETE", one, {})
            assert status == 401 and challenge["flows"] == [{"stages": ["m.login.password"]}], challenge
            auth = {"type": "m.login.password", "password": "wrong", "session": challenge["session"],
                    "identifier": {"type": "m.id.user", "user": registered.user_id}}
            status, refused = await raw(phone, "DELETE", one, {"auth": auth})
            assert status == 401 and refused["errcode"] == "M_FORBIDDEN", refused
            auth["password"] = "pw"
            assert await raw(phone, "DELETE", one, {"auth": auth}) == (200, {})
            gone = await laptop.whoami()
            assert isinstance(gone, WhoamiError) and gone.status_code == "M_UNKNOWN_TOKEN", gone
            status, missing = await raw(phone, "GET", one)
            assert (status, missing["errcode"]) == (404, "M_NOT_FOUND")

            # "an m.room.member event (with a join membership) is sent to every room the user is a
            # member of, to update the displayname and avatar_url" (Events on Change of Profile
            # Information).
            member = await phone.room_get_state_event(room, "m.room.member", registered.user_id)
            assert (member.content.get("displayname"), member.content.get("avatar_url")) == (
                "Renamed", "mxc://localhost/avatar"), member.content
            assert isinstance(await asyncio.wait_for(phone.sync(timeout=0), 20), SyncResponse)
            assert phone.rooms[room].user_name(registered.user_id) == "Renamed"
            assert phone.rooms[room].avatar_url(registered.user_id) == "mxc://localhost/avatar"
        finally:
            await phone.close()
            await laptop.close()

    run(flow())


# A 1×1 transparent PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def test_media_config_thumbnails_and_the_legacy_routes():
    async def flow():
        import io

        from nio import (
            ContentRepositoryConfigResponse,
            DownloadError,
            DownloadResponse,
            ThumbnailError,
            ThumbnailResponse,
            UploadResponse,
        )

        name = localpart()
        client = AsyncClient(helpers.URL, name, config=CONFIG)
        anonymous = AsyncClient(helpers.URL, config=CONFIG)
        try:
            assert isinstance(await client.register(name, "pw"), RegisterResponse)
            config = await client.content_repository_config()
            assert isinstance(config, ContentRepositoryConfigResponse), config
            assert config.upload_size == 10 * 1024 * 1024
            assert await raw(client, "GET", "/_matrix/media/v3/config") == (200, {"m.upload.size": config.upload_size})

            image, _ = await client.upload(io.BytesIO(PNG), content_type="image/png", filename="dot.png",
                                           filesize=len(PNG))
            assert isinstance(image, UploadResponse), image
            text, _ = await client.upload(io.BytesIO(b"words"), content_type="text/plain", filesize=5)
            server, image_id = image.content_uri[len("mxc://"):].split("/")

            thumb = await client.thumbnail(server, image_id, 32, 32)
            assert isinstance(thumb, ThumbnailResponse), thumb
            assert (thumb.body, thumb.content_type) == (PNG, "image/png")
            text_id = text.content_uri.rsplit("/", 1)[1]
            no_thumb = await client.thumbnail(server, text_id, 32, 32)
            assert isinstance(no_thumb, ThumbnailError), "text has no thumbnail"
            renamed = await client.download(image.content_uri, filename="renamed.png")
            assert isinstance(renamed, DownloadResponse), renamed
            assert (renamed.body, renamed.filename) == (PNG, "renamed.png")
            unknown = await client.download(f"mxc://{server}/nothere")
            assert isinstance(unknown, DownloadError) and unknown.status_code == "M_NOT_FOUND", unknown

            # Authenticated media wants a token; the legacy routes do not.
            refused = await anonymous.download(image.content_uri)
            assert isinstance(refused, DownloadError) and refused.status_code == "M_MISSING_TOKEN", refused
            for path in (f"/_matrix/media/v3/download/{server}/{image_id}",
                         f"/_matrix/media/v3/thumbnail/{server}/{image_id}?width=32&height=32"):
                legacy = await anonymous.send("GET", path)
                assert legacy.status == 200, path
                assert (await legacy.read(), legacy.headers["Content-Type"]) == (PNG, "image/png")
        finally:
            await client.close()
            await anonymous.close()

    run(flow())
