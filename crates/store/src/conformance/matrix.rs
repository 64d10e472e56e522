//! Matrix accounts: registration, password login, tokens that die with their device.

use ferrosync_core::auth::{RootCredentials, SecretBox};
use ferrosync_core::engine::{MatrixCaller, MatrixRegistration};
use ferrosync_core::error::CoreError;
use ferrosync_core::store::Store;
use ferrosync_core::{Engine, Limits};
use std::future::Future;
use std::sync::Arc;

const SERVER: &str = "example.org";

pub async fn run_all<F, Fut>(make: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    accounts_register_log_in_and_out(make().await).await;
}

fn engine(store: Arc<dyn Store>) -> Engine {
    let secrets = SecretBox::from_hex(&SecretBox::generate_key_hex()).expect("master key");
    Engine::new(store, Limits::default(), RootCredentials::generate(), secrets)
}

async fn caller(e: &Engine, token: &str) -> Option<MatrixCaller> {
    e.matrix_caller(token).await.expect("the store answers")
}

async fn accounts_register_log_in_and_out(store: Arc<dyn Store>) {
    let e = engine(store);
    let alice = MatrixRegistration {
        localpart: Some("alice"),
        password: Some("correct horse"),
        device_id: Some("PHONE"),
        device_name: Some("Alice's phone"),
    };
    let first = e.matrix_register(SERVER, alice.clone()).await.expect("registered");
    assert_eq!((first.user_id.as_str(), first.device_id.as_str()), ("@alice:example.org", "PHONE"));
    let me = caller(&e, &first.access_token).await.expect("the token works");
    assert_eq!((me.user_id.as_str(), me.device_id.as_str()), ("@alice:example.org", "PHONE"));
    assert!(matches!(e.matrix_register(SERVER, alice).await, Err(CoreError::AlreadyExists { .. })), "one alice");
    assert!(!e.matrix_username_available(SERVER, "alice").await.expect("checked"));
    assert!(e.matrix_username_available(SERVER, "bob").await.expect("checked"));
    let bad = MatrixRegistration { localpart: Some("Bad Name"), ..Default::default() };
    assert!(matches!(e.matrix_register(SERVER, bad).await, Err(CoreError::InvalidField { .. })));
    let generated = e.matrix_register(SERVER, MatrixRegistration::default()).await.expect("a generated id");
    assert!(generated.user_id.starts_with('@') && generated.user_id.ends_with(":example.org"));

    // Wrong password, unknown user and another server's user are refused alike.
    for (user, password) in [("alice", "wrong"), ("nobody", "correct horse"), ("@alice:elsewhere.org", "correct horse")]
    {
        let refused = e.matrix_login(SERVER, user, password, None, None).await;
        assert!(
            matches!(&refused, Err(CoreError::NotAuthorized(m)) if m == "Invalid username or password"),
            "{refused:?}"
        );
    }
    let laptop = e.matrix_login(SERVER, "@alice:example.org", "correct horse", None, None).await.expect("logged in");
    assert_ne!(laptop.device_id, "PHONE", "a new device");
    assert!(caller(&e, &laptop.access_token).await.is_some());

    // Logging the same device in again replaces its token.
    let again = e.matrix_login(SERVER, "alice", "correct horse", Some("PHONE"), None).await.expect("again");
    assert_eq!(again.device_id, "PHONE");
    assert!(caller(&e, &first.access_token).await.is_none(), "the old token of the device is dead");
    assert!(caller(&e, &again.access_token).await.is_some());

    // Tokens that are not ours, or altered, name nobody.
    assert!(caller(&e, "mat_garbage").await.is_none());
    assert!(caller(&e, "syt_other_server_token").await.is_none());
    let mut altered = again.access_token.clone();
    altered.push('A');
    assert!(caller(&e, &altered).await.is_none());

    // Logout ends one device; logout/all every one.
    let me = caller(&e, &again.access_token).await.expect("caller");
    assert_eq!(e.matrix_logout(&me, false).await.expect("logged out"), 1);
    assert!(caller(&e, &again.access_token).await.is_none());
    assert!(caller(&e, &laptop.access_token).await.is_some(), "other devices stay");
    let third = e.matrix_login(SERVER, "alice", "correct horse", None, None).await.expect("logged in");
    let me = caller(&e, &third.access_token).await.expect("caller");
    assert_eq!(e.matrix_logout(&me, true).await.expect("all out"), 2);
    assert!(caller(&e, &laptop.access_token).await.is_none());
    assert!(caller(&e, &third.access_token).await.is_none());
}
