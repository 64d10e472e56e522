//! Arbitrary form bodies (the first byte picks the endpoint) through the whole router: the
//! Twilio Sync and Twilio Proxy faces and Twilio's key endpoints, as twilio-python sends them.
//! Whatever arrives, the answer is never a server error.

#![no_main]

use ferrosync_fuzz::{Endpoint, exercise};
use libfuzzer_sys::fuzz_target;

const ENDPOINTS: &[Endpoint] = &[
    Endpoint::root("POST", "/twilio/sync/v1/Services"),
    Endpoint::root("POST", "/twilio/sync/v1/Services/{svc}"),
    Endpoint::root("POST", "/twilio/sync/v1/Services/{svc}/Documents"),
    Endpoint::root("POST", "/twilio/sync/v1/Services/{svc}/Documents/doc"),
    Endpoint::root("POST", "/twilio/sync/v1/Services/{svc}/Lists"),
    Endpoint::root("POST", "/twilio/sync/v1/Services/{svc}/Lists/log/Items"),
    Endpoint::root("POST", "/twilio/sync/v1/Services/{svc}/Lists/log/Items/0"),
    Endpoint::root("POST", "/twilio/sync/v1/Services/{svc}/Maps"),
    Endpoint::root("POST", "/twilio/sync/v1/Services/{svc}/Maps/m/Items"),
    Endpoint::root("POST", "/twilio/sync/v1/Services/{svc}/Maps/m/Items/k"),
    Endpoint::root("POST", "/twilio/sync/v1/Services/{svc}/Streams"),
    Endpoint::root("POST", "/twilio/sync/v1/Services/{svc}/Streams/s/Messages"),
    Endpoint::root("POST", "/twilio/sync/v1/Services/{svc}/Maps/m/Permissions/alice"),
    Endpoint::root("POST", "/twilio/proxy/v1/Services"),
    Endpoint::root("POST", "/twilio/proxy/v1/Services/{proxy}"),
    Endpoint::root("POST", "/twilio/proxy/v1/Services/{proxy}/PhoneNumbers"),
    Endpoint::root("POST", "/twilio/proxy/v1/Services/{proxy}/Sessions"),
    Endpoint::root("POST", "/twilio/proxy/v1/Services/{proxy}/Sessions/{session}"),
    Endpoint::root("POST", "/twilio/proxy/v1/Services/{proxy}/Sessions/{session}/Participants"),
    Endpoint::root(
        "POST",
        "/twilio/proxy/v1/Services/{proxy}/Sessions/{session}/Participants/{participant}/MessageInteractions",
    ),
    Endpoint::root("POST", "/twilio/api/2010-04-01/Accounts/AC00000000000000000000000000000000/Keys.json"),
    Endpoint::root("POST", "/twilio/iam/v1/Keys"),
];

fuzz_target!(|data: &[u8]| {
    exercise(ENDPOINTS, "application/x-www-form-urlencoded", data);
});
