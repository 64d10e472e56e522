//! Token lifetime: warnings, expiry, refresh, refusal.

use crate::support::{TestServer, next, next_event};
use ferrosync_client::{Client, ClientEvent, ConnectionState, SyncEventKind};
use serde_json::json;

#[tokio::test]
async fn expiry_warning_expiry_and_refresh_resume_the_subscriptions() {
    let server = TestServer::start().await;
    // Five seconds to live: the warning (due three minutes before) comes at once.
    let short = server.token("alice", 5).await;
    let client = Client::connect(&server.url(), &short).await.unwrap();
    let mut events = client.events();
    let list = client.list("l").await.unwrap();
    let mut items = list.subscribe().await.unwrap();
    next_event(&mut events, |e| matches!(e, ClientEvent::TokenAboutToExpire { .. }).then_some(())).await;
    next_event(&mut events, |e| matches!(e, ClientEvent::TokenExpired).then_some(())).await;
    client.wait_for(ConnectionState::Disconnected).await.unwrap();
    // REST refuses the expired token too.
    let refused = list.push(json!({"n": 0})).await.unwrap_err();
    assert_eq!(refused.status(), Some(401), "{refused}");

    // Written while the client waits for a token.
    let sid = list.sid().to_owned();
    server.svc("POST", &format!("/lists/{sid}/items"), json!({"data": {"n": 1}})).await;

    client.update_token(&server.token("alice", 3600).await).await.unwrap();
    client.wait_for(ConnectionState::Connected).await.unwrap();
    let e = next(&mut items).await;
    assert!(matches!(&e.kind, SyncEventKind::ItemAdded { item } if item.data == json!({"n": 1})), "{e:?}");
    list.push(json!({"n": 2})).await.unwrap();
    assert!(next(&mut items).await.is_local);
}

#[tokio::test]
async fn a_live_connection_takes_a_fresh_token() {
    let server = TestServer::start().await;
    let client = Client::connect(&server.url(), &server.token("alice", 30).await).await.unwrap();
    let mut events = client.events();
    client.update_token(&server.token("alice", 3600).await).await.unwrap();
    assert_eq!(client.connection_state(), ConnectionState::Connected);
    // A token for someone else is refused before anything is sent.
    let other = client.update_token(&server.token("bob", 3600).await).await.unwrap_err();
    assert!(other.to_string().contains("same identity"), "{other}");
    // Past the old token's life the connection stays up.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(client.connection_state(), ConnectionState::Connected);
    assert!(client.document("d").await.is_ok());
    drop(events.next());
}

#[tokio::test]
async fn refused_tokens_are_terminal_errors() {
    let server = TestServer::start().await;
    let token = server.token("alice", 3600).await;
    // Revoke the key that signed it.
    let keys = server.admin("GET", "/keys", serde_json::Value::Null).await;
    for k in keys.as_array().unwrap() {
        server.admin("DELETE", &format!("/keys/{}", k["sid"].as_str().unwrap()), serde_json::Value::Null).await;
    }
    let err = Client::connect(&server.url(), &token).await.err().unwrap();
    assert_eq!(err.status(), Some(401), "{err}");

    // Started lazily, the refusal arrives as an event and the state says denied.
    let client = Client::builder(&server.url(), &token).connect_lazily().unwrap();
    let mut events = client.events();
    let (terminal, status) = next_event(&mut events, |e| match e {
        ClientEvent::ConnectionError { terminal, http_status, .. } => Some((*terminal, *http_status)),
        _ => None,
    })
    .await;
    assert!(terminal);
    assert_eq!(status, Some(401));
    client.wait_for(ConnectionState::Denied).await.unwrap();

    // Not a token at all.
    let bad = Client::connect(&server.url(), "nonsense").await.err().unwrap();
    assert!(bad.to_string().starts_with("token:"), "{bad}");
}
