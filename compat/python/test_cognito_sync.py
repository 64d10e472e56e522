"""boto3's cognito-sync client against the Cognito Sync face at the server root: every
operation, the sync flow with conflicts and tombstones, and the error shapes botocore parses.

Identity pools, identities and their temporary credentials come from the Cognito Identity face
(boto3's cognito-identity client), as a Mobile SDK gets them."""

import datetime
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

import helpers

REGION = "us-east-1"
DATASET = "settings"
APP_ARN = "arn:aws:sns:us-east-1:123456789012:app/GCM/my-app"
ROLE_ARN = "arn:aws:iam::123456789012:role/cognito-sync"
LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:sync-trigger"


def aws_client(service, key=helpers.ACCOUNT_SID, secret=helpers.AUTH_TOKEN, token=None):
    return boto3.client(
        service,
        endpoint_url=helpers.URL,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
    )


@pytest.fixture(scope="module")
def sync():
    """cognito-sync with the account's developer credentials."""
    return aws_client("cognito-sync")


@pytest.fixture(scope="module")
def identity_api():
    return aws_client("cognito-identity")


def create_pool(identity_api):
    """A pool that allows unauthenticated identities, made through the Cognito Identity face."""
    created = identity_api.create_identity_pool(
        IdentityPoolName=helpers.unique("sync")[:60], AllowUnauthenticatedIdentities=True
    )
    return created["IdentityPoolId"]


@pytest.fixture
def pool(identity_api):
    pool_id = create_pool(identity_api)
    yield pool_id
    try:
        identity_api.delete_identity_pool(IdentityPoolId=pool_id)
    except ClientError:
        pass


def new_identity(identity_api, pool_id):
    return identity_api.get_id(IdentityPoolId=pool_id)["IdentityId"]


def as_identity(identity_api, identity_id):
    """cognito-sync with an identity's temporary credentials (session token included)."""
    creds = identity_api.get_credentials_for_identity(IdentityId=identity_id)["Credentials"]
    return aws_client("cognito-sync", creds["AccessKeyId"], creds["SecretKey"], creds["SessionToken"])


def error_of(call, **kwargs):
    """Runs `call`, which must fail; returns (code, message, HTTP status)."""
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    response = info.value.response
    assert response["ResponseMetadata"].get("RequestId"), response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def patch(key, value=None, sync_count=0, op=None, **extra):
    p = {"Op": op or ("replace" if value is not None else "remove"), "Key": key, "SyncCount": sync_count, **extra}
    if value is not None:
        p["Value"] = value
    return p


def push(client, pool_id, identity_id, patches, dataset=DATASET, device="device-1"):
    """A pull for the session token, then the push, as the Mobile SDKs do it."""
    ids = {"IdentityPoolId": pool_id, "IdentityId": identity_id, "DatasetName": dataset}
    token = client.list_records(**ids)["SyncSessionToken"]
    return client.update_records(**ids, DeviceId=device, SyncSessionToken=token, RecordPatches=patches)


def test_records_sync_with_conflicts_and_tombstones(sync, identity_api, pool):
    identity_id = new_identity(identity_api, pool)
    ids = {"IdentityPoolId": pool, "IdentityId": identity_id, "DatasetName": DATASET}

    first = sync.list_records(**ids)
    assert first["Records"] == [] and first["Count"] == 0
    assert first["DatasetSyncCount"] == 0 and first["DatasetExists"] is False
    assert first["DatasetDeletedAfterRequestedSyncCount"] is False
    assert first["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"] == first["ResponseMetadata"]["RequestId"]

    written = sync.update_records(
        **ids,
        DeviceId="device-a",
        ClientContext="eyJjbGllbnQiOnt9fQ==",
        SyncSessionToken=first["SyncSessionToken"],
        RecordPatches=[
            patch("color", "blue", DeviceLastModifiedDate=datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)),
            patch("size", "10"),
        ],
    )
    records = {r["Key"]: r for r in written["Records"]}
    assert {k: r["SyncCount"] for k, r in records.items()} == {"color": 1, "size": 1}
    assert records["color"]["LastModifiedBy"] == "device-a"
    assert records["color"]["DeviceLastModifiedDate"] == datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert isinstance(records["color"]["LastModifiedDate"], datetime.datetime)

    # A device still at sync count 0 changes `color`: the whole push is refused.
    code, message, status = error_of(
        sync.update_records,
        **ids,
        SyncSessionToken=first["SyncSessionToken"],
        RecordPatches=[patch("color", "red"), patch("shape", "round")],
    )
    assert (code, message, status) == ("ResourceConflictException", "Current SyncCount for: color is: 1 not: 0", 409)
    pulled = sync.list_records(**ids, LastSyncCount=0)
    assert pulled["DatasetSyncCount"] == 1
    assert sorted((r["Key"], r["Value"]) for r in pulled["Records"]) == [("color", "blue"), ("size", "10")]

    # Resolved against the count it now knows.
    resolved = sync.update_records(
        **ids, SyncSessionToken=pulled["SyncSessionToken"], RecordPatches=[patch("color", "red", 1)]
    )
    assert resolved["Records"][0]["SyncCount"] == 2

    # A removal is a tombstone (no Value), pulled by counts before it only.
    push(sync, pool, identity_id, [patch("size", sync_count=1)])
    since_two = sync.list_records(**ids, LastSyncCount=2)
    assert since_two["DatasetSyncCount"] == 3
    assert [(r["Key"], "Value" in r, r["SyncCount"]) for r in since_two["Records"]] == [("size", False, 3)]
    assert sync.list_records(**ids, LastSyncCount=3)["Records"] == []
    paged = sync.list_records(**ids, MaxResults=1)
    assert paged["Count"] == 1 and paged["NextToken"]
    rest = sync.list_records(**ids, MaxResults=1, NextToken=paged["NextToken"])
    assert [r["Key"] for r in paged["Records"] + rest["Records"]] == ["color", "size"]

    dataset = sync.describe_dataset(**ids)["Dataset"]
    assert dataset["DatasetName"] == DATASET and dataset["IdentityId"] == identity_id
    assert dataset["NumRecords"] == 1 and dataset["DataStorage"] == len("color") + len("red")
    assert isinstance(dataset["CreationDate"], datetime.datetime)

    push(sync, pool, identity_id, [patch("k", "v")], dataset="other")
    page = sync.list_datasets(IdentityPoolId=pool, IdentityId=identity_id, MaxResults=1)
    assert page["Count"] == 1 and page["Datasets"][0]["DatasetName"] == "other"
    rest = sync.list_datasets(IdentityPoolId=pool, IdentityId=identity_id, MaxResults=1, NextToken=page["NextToken"])
    assert rest["Datasets"][0]["DatasetName"] == DATASET

    deleted = sync.delete_dataset(**ids)
    assert deleted["Dataset"]["DatasetName"] == DATASET
    after = sync.list_records(**ids, LastSyncCount=3)
    assert after["DatasetDeletedAfterRequestedSyncCount"] is True and after["DatasetExists"] is False
    code, _, status = error_of(sync.describe_dataset, **ids)
    assert (code, status) == ("ResourceNotFoundException", 404)

    code, message, status = error_of(
        sync.update_records,
        IdentityPoolId=pool,
        IdentityId=identity_id,
        DatasetName="other",
        SyncSessionToken=first["SyncSessionToken"],
        RecordPatches=[patch("k", "w", 1)],
    )
    assert (code, message, status) == ("InvalidParameterException", "SyncSessionToken not valid for these inputs", 400)


def test_usage(sync, identity_api, pool):
    identity_id = new_identity(identity_api, pool)
    push(sync, pool, identity_id, [patch("a", "bc")])

    usage = sync.describe_identity_usage(IdentityPoolId=pool, IdentityId=identity_id)["IdentityUsage"]
    assert usage["IdentityId"] == identity_id and usage["IdentityPoolId"] == pool
    assert usage["DatasetCount"] == 1 and usage["DataStorage"] == 3
    assert isinstance(usage["LastModifiedDate"], datetime.datetime)

    pool_usage = sync.describe_identity_pool_usage(IdentityPoolId=pool)["IdentityPoolUsage"]
    assert pool_usage["IdentityPoolId"] == pool
    assert pool_usage["SyncSessionsCount"] == 1 and pool_usage["DataStorage"] == 3

    seen, token = [], None
    while True:
        page = sync.list_identity_pool_usage(MaxResults=5, **({"NextToken": token} if token else {}))
        assert page["MaxResults"] == 5 and page["Count"] == len(page["IdentityPoolUsages"])
        seen += [u["IdentityPoolId"] for u in page["IdentityPoolUsages"]]
        token = page.get("NextToken")
        if not token:
            break
    assert pool in seen

    unknown = f"{REGION}:{uuid.uuid4()}"
    assert error_of(sync.describe_identity_usage, IdentityPoolId=pool, IdentityId=unknown)[0] == (
        "ResourceNotFoundException"
    )
    assert error_of(sync.describe_identity_pool_usage, IdentityPoolId=unknown)[::2] == (
        "ResourceNotFoundException",
        404,
    )


def test_configuration_events_and_bulk_publish(sync, pool):
    empty = sync.get_identity_pool_configuration(IdentityPoolId=pool)
    assert empty["IdentityPoolId"] == pool and "PushSync" not in empty and "CognitoStreams" not in empty
    assert error_of(sync.bulk_publish, IdentityPoolId=pool)[0] == "InvalidConfigurationException"

    set_ = sync.set_identity_pool_configuration(
        IdentityPoolId=pool,
        PushSync={"ApplicationArns": [APP_ARN], "RoleArn": ROLE_ARN},
        CognitoStreams={"StreamName": "sync-stream", "RoleArn": ROLE_ARN, "StreamingStatus": "ENABLED"},
    )
    assert set_["PushSync"] == {"ApplicationArns": [APP_ARN], "RoleArn": ROLE_ARN}
    got = sync.get_identity_pool_configuration(IdentityPoolId=pool)
    assert got["CognitoStreams"] == {"StreamName": "sync-stream", "RoleArn": ROLE_ARN, "StreamingStatus": "ENABLED"}

    assert sync.get_cognito_events(IdentityPoolId=pool).get("Events", {}) == {}
    sync.set_cognito_events(IdentityPoolId=pool, Events={"SyncTrigger": LAMBDA_ARN})
    assert sync.get_cognito_events(IdentityPoolId=pool)["Events"] == {"SyncTrigger": LAMBDA_ARN}
    sync.set_cognito_events(IdentityPoolId=pool, Events={"SyncTrigger": ""})
    assert sync.get_cognito_events(IdentityPoolId=pool).get("Events", {}) == {}
    code, message, status = error_of(
        sync.set_cognito_events, IdentityPoolId=pool, Events={"SyncTrigger": LAMBDA_ARN, "Other": LAMBDA_ARN}
    )
    assert (code, status) == ("InvalidParameterException", 400)
    assert "at 'events' failed to satisfy constraint: Member must have length less than or equal to 1" in message

    details = sync.get_bulk_publish_details(IdentityPoolId=pool)
    assert details["IdentityPoolId"] == pool and details["BulkPublishStatus"] == "NOT_STARTED"
    assert sync.bulk_publish(IdentityPoolId=pool)["IdentityPoolId"] == pool
    details = sync.get_bulk_publish_details(IdentityPoolId=pool)
    assert details["BulkPublishStatus"] == "IN_PROGRESS"
    assert isinstance(details["BulkPublishStartTime"], datetime.datetime)
    assert error_of(sync.bulk_publish, IdentityPoolId=pool)[::2] == ("DuplicateRequestException", 400)


def test_push_sync_takes_identity_credentials(sync, identity_api, pool):
    identity_id = new_identity(identity_api, pool)
    me = as_identity(identity_api, identity_id)
    device = {"IdentityPoolId": pool, "IdentityId": identity_id, "Platform": "GCM", "Token": "push-token"}

    assert error_of(me.register_device, **device)[0] == "InvalidConfigurationException"
    sync.set_identity_pool_configuration(IdentityPoolId=pool, PushSync={"ApplicationArns": [APP_ARN]})
    assert error_of(sync.register_device, **device)[::2] == ("NotAuthorizedException", 403)
    device_id = me.register_device(**device)["DeviceId"]
    assert me.register_device(**device)["DeviceId"] == device_id

    push(me, pool, identity_id, [patch("k", "v")])
    subscription = {"IdentityPoolId": pool, "IdentityId": identity_id, "DatasetName": DATASET, "DeviceId": device_id}
    assert error_of(sync.subscribe_to_dataset, **subscription)[0] == "NotAuthorizedException"
    assert me.subscribe_to_dataset(**subscription)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert me.unsubscribe_from_dataset(**subscription)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_an_identity_reaches_only_its_own_datasets(sync, identity_api, pool):
    mine, theirs = new_identity(identity_api, pool), new_identity(identity_api, pool)
    me = as_identity(identity_api, mine)
    push(me, pool, mine, [patch("score", "1")])
    push(sync, pool, theirs, [patch("score", "2")])

    own = me.list_records(IdentityPoolId=pool, IdentityId=mine, DatasetName=DATASET)
    assert [r["Value"] for r in own["Records"]] == ["1"]
    code, message, status = error_of(me.list_records, IdentityPoolId=pool, IdentityId=theirs, DatasetName=DATASET)
    assert (code, status) == ("NotAuthorizedException", 403) and theirs in message
    assert error_of(me.describe_identity_pool_usage, IdentityPoolId=pool)[0] == "NotAuthorizedException"
    theirs_now = sync.list_records(IdentityPoolId=pool, IdentityId=theirs, DatasetName=DATASET)
    assert [r["Value"] for r in theirs_now["Records"]] == ["2"]


def test_validation_errors_in_aws_words(sync, identity_api, pool):
    identity_id = new_identity(identity_api, pool)
    ids = {"IdentityPoolId": pool, "IdentityId": identity_id}

    assert error_of(sync.list_records, **ids, DatasetName="bad name!") == (
        "InvalidParameterException",
        "1 validation error detected: Value 'bad name!' at 'datasetName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.:-]+",
        400,
    )
    long = "d" * 129
    assert error_of(sync.describe_dataset, **ids, DatasetName=long)[1] == (
        f"1 validation error detected: Value '{long}' at 'datasetName' failed to satisfy constraint: "
        "Member must have length less than or equal to 128"
    )
    token = sync.list_records(**ids, DatasetName=DATASET)["SyncSessionToken"]
    code, message, _ = error_of(
        sync.update_records,
        **ids,
        DatasetName=DATASET,
        SyncSessionToken=token,
        RecordPatches=[patch("k", "v", op="upsert")],
    )
    assert (code, message) == (
        "InvalidParameterException",
        "1 validation error detected: Value 'upsert' at 'recordPatches.1.member.op' failed to satisfy constraint: "
        "Member must satisfy enum value set: [replace, remove]",
    )
    code, message, _ = error_of(
        sync.update_records, **ids, DatasetName=DATASET, SyncSessionToken=token, RecordPatches=[patch("k" * 1025, "v")]
    )
    assert code == "InvalidParameterException"
    assert message.endswith(
        "at 'recordPatches.1.member.key' failed to satisfy constraint: Member must have length less than or equal to 1024"
    )
    assert error_of(sync.register_device, **ids, Platform="WINDOWS_PHONE", Token="t")[1] == (
        "1 validation error detected: Value 'WINDOWS_PHONE' at 'platform' failed to satisfy constraint: "
        "Member must satisfy enum value set: [APNS, APNS_SANDBOX, GCM, ADM]"
    )
    assert error_of(sync.describe_identity_pool_usage, IdentityPoolId="us-east-1:ABC")[1] == (
        "1 validation error detected: Value 'us-east-1:ABC' at 'identityPoolId' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [\\w-]+:[0-9a-f-]+"
    )
    assert sync.list_records(**ids, DatasetName=DATASET)["DatasetExists"] is False, "nothing was written"


def test_signatures_are_checked(pool):
    wrong = aws_client("cognito-sync", secret="not-the-auth-token")
    code, message, status = error_of(wrong.describe_identity_pool_usage, IdentityPoolId=pool)
    assert (code, status) == ("InvalidSignatureException", 403)
    assert message.startswith("The request signature we calculated does not match")
    unknown = aws_client("cognito-sync", key="AKIDEXAMPLE", secret="secret")
    assert error_of(unknown.list_identity_pool_usage)[::2] == ("UnrecognizedClientException", 403)
