"""`default` names the account's default service wherever a ServiceSid goes (the spec says so
for map permissions; Twilio's samples mint tokens with it)."""

import requests

from helpers import ACCOUNT_SID, HTTP_TIMEOUT, SYNC_V1, URL, assert_sid, token_for, unique


def test_the_default_service(client):
    default = client.sync.v1.services("default")
    fetched = default.fetch()
    assert_sid(fetched.sid, "IS")
    assert fetched.url == f"{SYNC_V1}/Services/{fetched.sid}"
    assert client.sync.v1.services(fetched.sid).fetch().sid == fetched.sid

    name = unique("in-default")
    doc = default.documents.create(unique_name=name, data={"v": 1})
    assert doc.service_sid == fetched.sid
    assert client.sync.v1.services(fetched.sid).documents(name).fetch().sid == doc.sid

    the_map = default.sync_maps.create(unique_name=unique("map"))
    perm = default.sync_maps(the_map.sid).sync_map_permissions("alice").update(read=True, write=False, manage=False)
    assert perm.service_sid == fetched.sid and perm.map_sid == the_map.sid
    assert [p.identity for p in default.sync_maps(the_map.sid).sync_map_permissions.list()] == ["alice"]

    key = client.api.v2010.account.new_keys.create(friendly_name=unique("default-signer"))
    try:
        token = token_for(key.sid, key.secret, "default")
        r = requests.get(
            f"{URL}/api/v1/services/{fetched.sid}/documents/{doc.sid}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=HTTP_TIMEOUT,
        )
        assert r.status_code == 200, r.text
        assert r.json()["data"] == {"v": 1}
    finally:
        client.api.v2010.account.keys(key.sid).delete()
    default.documents(doc.sid).delete()
    default.sync_maps(the_map.sid).delete()
    assert fetched.account_sid == ACCOUNT_SID
