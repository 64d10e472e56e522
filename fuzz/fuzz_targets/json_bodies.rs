//! Arbitrary JSON bodies (the first byte picks the endpoint) through the whole router: the
//! native API's writes, Cognito Identity's unsigned calls (AWS JSON), Matrix's account and room
//! calls. Whatever arrives, the answer is never a server error.

#![no_main]

use ferrosync_fuzz::{Endpoint, exercise};
use libfuzzer_sys::fuzz_target;

const ENDPOINTS: &[Endpoint] = &[
    Endpoint::root("POST", "/api/v1/services"),
    Endpoint::root("POST", "/api/v1/services/fz"),
    Endpoint::root("POST", "/api/v1/services/fz/documents"),
    Endpoint::root("PUT", "/api/v1/services/fz/documents/doc"),
    Endpoint::root("POST", "/api/v1/services/fz/lists"),
    Endpoint::root("POST", "/api/v1/services/fz/lists/log/items"),
    Endpoint::root("PUT", "/api/v1/services/fz/lists/log/items/0"),
    Endpoint::root("POST", "/api/v1/services/fz/maps/m/items"),
    Endpoint::root("PUT", "/api/v1/services/fz/maps/m/items/k"),
    Endpoint::root("POST", "/api/v1/services/fz/streams/s/messages"),
    Endpoint::root("PUT", "/api/v1/services/fz/maps/m/permissions/alice"),
    Endpoint::root("PUT", "/api/v1/services/fz/indexes/ix"),
    Endpoint::root("POST", "/api/v1/services/fz/indexes/ix/query"),
    Endpoint::root("POST", "/api/v1/keys"),
    Endpoint::root("POST", "/api/v1/tokens"),
    Endpoint::aws("AWSCognitoIdentityService.CreateIdentityPool"),
    Endpoint::aws("AWSCognitoIdentityService.GetId"),
    Endpoint::aws("AWSCognitoIdentityService.GetCredentialsForIdentity"),
    Endpoint::aws("AWSCognitoIdentityService.GetOpenIdToken"),
    Endpoint::matrix("POST", "/_matrix/client/v3/register"),
    Endpoint::matrix("POST", "/_matrix/client/v3/login"),
    Endpoint::matrix("POST", "/_matrix/client/v3/createRoom"),
    Endpoint::matrix("POST", "/_matrix/client/v3/user/{user}/filter"),
    Endpoint::matrix("PUT", "/_matrix/client/v3/profile/{user}/displayname"),
    Endpoint::matrix("POST", "/_matrix/client/v3/keys/upload"),
    Endpoint::matrix("PUT", "/_matrix/client/v3/user/{user}/account_data/m.fuzz"),
];

fuzz_target!(|data: &[u8]| {
    let content_type = if data
        .first()
        .is_some_and(|b| usize::from(*b) % ENDPOINTS.len() >= 15 && usize::from(*b) % ENDPOINTS.len() < 19)
    {
        "application/x-amz-json-1.1"
    } else {
        "application/json"
    };
    exercise(ENDPOINTS, content_type, data);
});
