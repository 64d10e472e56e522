"""Cognito Identity through boto3: every supported operation, the unsigned calls the Mobile SDKs
start with (botocore.UNSIGNED), developer-authenticated identities, and errors as ClientError
codes and messages."""

import base64
import hashlib
import json
import time
import uuid

import boto3
import botocore
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from helpers import ACCOUNT_SID, API_KEY_SECRET, API_KEY_SID, AUTH_TOKEN, HTTP_TIMEOUT, URL

FACEBOOK = "graph.facebook.com"
DEVELOPER = "login.compat.app"
# A refused call must fail once, not be retried.
NO_RETRIES = {"max_attempts": 1, "mode": "standard"}


def cognito(access_key=ACCOUNT_SID, secret=AUTH_TOKEN, session_token=None):
    return boto3.client(
        "cognito-identity",
        endpoint_url=URL,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        aws_session_token=session_token,
        config=Config(retries=NO_RETRIES, connect_timeout=HTTP_TIMEOUT, read_timeout=HTTP_TIMEOUT),
    )


def unsigned():
    """What a Mobile SDK holds before it has credentials: nothing to sign with."""
    return boto3.client(
        "cognito-identity",
        endpoint_url=URL,
        region_name="us-east-1",
        config=Config(
            signature_version=botocore.UNSIGNED,
            retries=NO_RETRIES,
            connect_timeout=HTTP_TIMEOUT,
            read_timeout=HTTP_TIMEOUT,
        ),
    )


def refused(call, **kwargs):
    """Runs a call that must fail; returns (code, message, HTTP status, request id)."""
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    error = info.value.response
    return (
        error["Error"]["Code"],
        error["Error"].get("Message", ""),
        error["ResponseMetadata"]["HTTPStatusCode"],
        error["ResponseMetadata"].get("RequestId"),
    )


@pytest.fixture
def dev():
    return cognito()


@pytest.fixture
def pool(dev):
    created = dev.create_identity_pool(
        IdentityPoolName=f"compat {uuid.uuid4().hex[:10]}",
        AllowUnauthenticatedIdentities=True,
        SupportedLoginProviders={FACEBOOK: "1234567890"},
        DeveloperProviderName=DEVELOPER,
    )
    yield created["IdentityPoolId"]
    try:
        dev.delete_identity_pool(IdentityPoolId=created["IdentityPoolId"])
    except ClientError:
        pass


def test_identity_pools_round_trip(dev):
    name = f"pool {uuid.uuid4().hex[:10]}"
    created = dev.create_identity_pool(
        IdentityPoolName=name,
        AllowUnauthenticatedIdentities=False,
        AllowClassicFlow=True,
        SupportedLoginProviders={FACEBOOK: "42"},
        DeveloperProviderName=DEVELOPER,
        OpenIdConnectProviderARNs=["arn:aws:iam::123456789012:oidc-provider/accounts.example.com"],
        IdentityPoolTags={"team": "compat"},
    )
    pool_id = created["IdentityPoolId"]
    assert pool_id.startswith("us-east-1:")
    assert created["ResponseMetadata"]["RequestId"]
    assert created["IdentityPoolName"] == name
    assert created["AllowUnauthenticatedIdentities"] is False
    assert created["AllowClassicFlow"] is True
    assert created["SupportedLoginProviders"] == {FACEBOOK: "42"}
    assert created["DeveloperProviderName"] == DEVELOPER
    assert created["IdentityPoolTags"] == {"team": "compat"}

    described = dev.describe_identity_pool(IdentityPoolId=pool_id)
    assert described["IdentityPoolName"] == name
    assert described["OpenIdConnectProviderARNs"] == ["arn:aws:iam::123456789012:oidc-provider/accounts.example.com"]

    seen, token = [], None
    while True:
        page = dev.list_identity_pools(MaxResults=2, **({"NextToken": token} if token else {}))
        seen += page["IdentityPools"]
        token = page.get("NextToken")
        if not token:
            break
    assert {"IdentityPoolId": pool_id, "IdentityPoolName": name} in seen

    updated = dev.update_identity_pool(
        IdentityPoolId=pool_id, IdentityPoolName=name + " renamed", AllowUnauthenticatedIdentities=True
    )
    assert updated["IdentityPoolName"] == name + " renamed"
    assert updated["AllowUnauthenticatedIdentities"] is True

    dev.delete_identity_pool(IdentityPoolId=pool_id)
    code, message, status, request_id = refused(dev.describe_identity_pool, IdentityPoolId=pool_id)
    assert (code, status) == ("ResourceNotFoundException", 400)
    assert message == f"IdentityPool '{pool_id}' not found."
    assert request_id


def test_mobile_sdk_start_gets_credentials_that_reach_no_developer_operation(pool):
    mobile = unsigned()
    identity_id = mobile.get_id(IdentityPoolId=pool)["IdentityId"]
    issued = mobile.get_credentials_for_identity(IdentityId=identity_id)
    assert issued["IdentityId"] == identity_id
    creds = issued["Credentials"]
    assert creds["AccessKeyId"] and creds["SecretKey"] and creds["SessionToken"]
    # botocore parses the epoch-seconds Expiration into a datetime.
    assert creds["Expiration"].timestamp() > time.time()

    as_identity = cognito(creds["AccessKeyId"], creds["SecretKey"], creds["SessionToken"])
    code, message, status, _ = refused(as_identity.list_identity_pools, MaxResults=5)
    assert (code, status) == ("NotAuthorizedException", 400)
    assert "developer credentials" in message
    code, _, _, _ = refused(as_identity.describe_identity, IdentityId=identity_id)
    assert code == "NotAuthorizedException"


def test_unauthenticated_identities_follow_the_pool_setting(dev, pool):
    mobile = unsigned()
    dev.update_identity_pool(
        IdentityPoolId=pool,
        IdentityPoolName="no guests",
        AllowUnauthenticatedIdentities=False,
        SupportedLoginProviders={FACEBOOK: "1234567890"},
    )
    code, _, status, _ = refused(mobile.get_id, IdentityPoolId=pool)
    assert (code, status) == ("NotAuthorizedException", 400)
    first = mobile.get_id(IdentityPoolId=pool, Logins={FACEBOOK: "bob"})["IdentityId"]
    assert mobile.get_id(IdentityPoolId=pool, Logins={FACEBOOK: "bob"})["IdentityId"] == first


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_rs256(token, jwks):
    """RS256 (RSASSA-PKCS1-v1_5 over SHA-256) checked by hand against the JWKS, so the suite
    needs no crypto library: the signature raised to e mod n must be the padded digest."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(b64url(header_b64))
    assert header["alg"] == "RS256"
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    n = int.from_bytes(b64url(key["n"]), "big")
    e = int.from_bytes(b64url(key["e"]), "big")
    size = (n.bit_length() + 7) // 8
    signed = pow(int.from_bytes(b64url(signature_b64), "big"), e, n).to_bytes(size, "big")
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420")
    digest = hashlib.sha256(f"{header_b64}.{payload_b64}".encode()).digest()
    expected = b"\x00\x01" + b"\xff" * (size - 3 - len(digest_info) - len(digest)) + b"\x00" + digest_info + digest
    assert signed == expected, "the token's signature does not verify against the published keys"
    return json.loads(b64url(payload_b64))


def test_open_id_tokens_and_the_published_keys(pool):
    mobile = unsigned()
    identity_id = mobile.get_id(IdentityPoolId=pool)["IdentityId"]
    issued = mobile.get_open_id_token(IdentityId=identity_id)
    assert issued["IdentityId"] == identity_id
    config = requests.get(URL + "/.well-known/openid-configuration", timeout=HTTP_TIMEOUT).json()
    jwks = requests.get(config["jwks_uri"], timeout=HTTP_TIMEOUT).json()
    claims = verify_rs256(issued["Token"], jwks)
    assert claims["iss"] == config["issuer"]
    assert claims["aud"] == pool
    assert claims["sub"] == identity_id
    assert claims["amr"] == ["unauthenticated"]
    assert claims["exp"] > time.time()
    forged = issued["Token"][:-4] + ("AAAA" if not issued["Token"].endswith("AAAA") else "BBBB")
    with pytest.raises(AssertionError):
        verify_rs256(forged, jwks)


def test_identities_are_listed_described_and_deleted(dev, pool):
    mobile = unsigned()
    guest = mobile.get_id(IdentityPoolId=pool)["IdentityId"]
    member = mobile.get_id(IdentityPoolId=pool, Logins={FACEBOOK: "carol"})["IdentityId"]

    listed = dev.list_identities(IdentityPoolId=pool, MaxResults=60, HideDisabled=False)
    assert listed["IdentityPoolId"] == pool
    assert sorted(i["IdentityId"] for i in listed["Identities"]) == sorted([guest, member])
    page = dev.list_identities(IdentityPoolId=pool, MaxResults=1)
    assert len(page["Identities"]) == 1 and page["NextToken"]

    described = dev.describe_identity(IdentityId=member)
    assert described["IdentityId"] == member
    assert described["Logins"] == [FACEBOOK]
    assert described["CreationDate"].timestamp() <= time.time() + 60
    assert described["LastModifiedDate"]

    deleted = dev.delete_identities(IdentityIdsToDelete=[guest])
    assert deleted["UnprocessedIdentityIds"] == []
    code, message, _, _ = refused(dev.describe_identity, IdentityId=guest)
    assert code == "ResourceNotFoundException"
    assert message == f"Identity '{guest}' not found."


def test_developer_authenticated_identities(dev, pool):
    first = dev.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool, Logins={DEVELOPER: "dev-user-1"}, TokenDuration=600
    )
    id1 = first["IdentityId"]
    assert first["Token"].count(".") == 2

    # The token is a login of its identity: the "enhanced flow" of the Mobile SDKs.
    creds = unsigned().get_credentials_for_identity(
        IdentityId=id1, Logins={"cognito-identity.amazonaws.com": first["Token"]}
    )
    assert creds["IdentityId"] == id1

    found = dev.lookup_developer_identity(IdentityPoolId=pool, DeveloperUserIdentifier="dev-user-1")
    assert found["IdentityId"] == id1
    assert found["DeveloperUserIdentifierList"] == ["dev-user-1"]

    id2 = dev.get_open_id_token_for_developer_identity(IdentityPoolId=pool, Logins={DEVELOPER: "dev-user-2"})[
        "IdentityId"
    ]
    code, _, _, _ = refused(
        dev.get_open_id_token_for_developer_identity,
        IdentityPoolId=pool,
        IdentityId=id2,
        Logins={DEVELOPER: "dev-user-1"},
    )
    assert code == "DeveloperUserAlreadyRegisteredException"

    merged = dev.merge_developer_identities(
        SourceUserIdentifier="dev-user-2",
        DestinationUserIdentifier="dev-user-1",
        DeveloperProviderName=DEVELOPER,
        IdentityPoolId=pool,
    )
    assert merged["IdentityId"] == id1
    users = dev.lookup_developer_identity(IdentityPoolId=pool, IdentityId=id1, MaxResults=10)
    assert sorted(users["DeveloperUserIdentifierList"]) == ["dev-user-1", "dev-user-2"]

    dev.unlink_developer_identity(
        IdentityId=id1, IdentityPoolId=pool, DeveloperProviderName=DEVELOPER, DeveloperUserIdentifier="dev-user-2"
    )
    code, _, _, _ = refused(dev.lookup_developer_identity, IdentityPoolId=pool, DeveloperUserIdentifier="dev-user-2")
    assert code == "ResourceNotFoundException"


def test_api_keys_are_developer_credentials(pool):
    by_key = cognito(API_KEY_SID, API_KEY_SECRET)
    assert by_key.describe_identity_pool(IdentityPoolId=pool)["IdentityPoolId"] == pool


def test_signing_failures():
    code, message, status, _ = refused(cognito(ACCOUNT_SID, "wrong-secret").list_identity_pools, MaxResults=5)
    assert (code, status) == ("InvalidSignatureException", 400)
    assert message.startswith("The request signature we calculated does not match")
    code, _, _, _ = refused(cognito("AKIDEXAMPLE", "secret").list_identity_pools, MaxResults=5)
    assert code == "UnrecognizedClientException"
    code, _, _, _ = refused(unsigned().list_identity_pools, MaxResults=5)
    assert code == "MissingAuthenticationTokenException"


def test_invalid_parameters_are_worded_as_aws_words_them(dev, pool):
    code, message, status, _ = refused(dev.list_identity_pools, MaxResults=61)
    assert (code, status) == ("InvalidParameterException", 400)
    assert message == (
        "1 validation error detected: Value '61' at 'maxResults' failed to satisfy constraint: "
        "Member must have value less than or equal to 60"
    )
    code, message, _, _ = refused(
        dev.create_identity_pool, IdentityPoolName="no/slash", AllowUnauthenticatedIdentities=True
    )
    assert code == "InvalidParameterException"
    assert message == (
        "1 validation error detected: Value 'no/slash' at 'identityPoolName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [\\w\\s+=,.@-]+"
    )
    code, message, _, _ = refused(unsigned().get_id, IdentityPoolId="us-east-1:NOT-HEX")
    assert code == "InvalidParameterException"
    assert "at 'identityPoolId'" in message
    code, message, _, _ = refused(
        dev.get_open_id_token_for_developer_identity,
        IdentityPoolId=pool,
        Logins={DEVELOPER: "u"},
        TokenDuration=86401,
    )
    assert code == "InvalidParameterException"
    assert message.endswith(
        "at 'tokenDuration' failed to satisfy constraint: Member must have value less than or equal to 86400"
    )


def test_unsupported_operations_answer_a_client_error(dev, pool):
    code, message, status, _ = refused(dev.get_identity_pool_roles, IdentityPoolId=pool)
    assert (code, status) == ("UnsupportedOperationException", 400)
    assert message == "GetIdentityPoolRoles is not supported by this server."


def test_tags_of_identity_pools(dev, pool):
    arn = f"arn:aws:cognito-identity:us-east-1:123456789012:identitypool/{pool}"
    dev.tag_resource(ResourceArn=arn, Tags={"env": "test", "owner": "compat"})
    dev.untag_resource(ResourceArn=arn, TagKeys=["owner"])
    assert dev.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"env": "test"}
    assert dev.describe_identity_pool(IdentityPoolId=pool)["IdentityPoolTags"] == {"env": "test"}
