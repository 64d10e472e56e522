//! The server stops and comes back mid-subscription: every change made meanwhile arrives
//! once, in order.

use crate::support::{TestServer, next, next_event, quiet};
use ferrosync_client::{ClientEvent, ConnectionState, SyncEventKind};
use serde_json::json;

fn number(e: &ferrosync_client::SyncEvent) -> i64 {
    match &e.kind {
        SyncEventKind::ItemAdded { item } => item.data["n"].as_i64().unwrap(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_server_restart_loses_and_repeats_nothing() {
    let mut server = TestServer::start().await;
    let client = server.client("alice").await;
    let mut states = client.events();
    let list = client.list("log").await.unwrap();
    let doc = client.document("doc").await.unwrap();
    let mut items = list.subscribe().await.unwrap();
    let mut doc_events = doc.subscribe().await.unwrap();
    let (list_sid, doc_sid) = (list.sid().to_owned(), doc.sid().to_owned());

    for n in 0..10 {
        server.svc("POST", &format!("/lists/{list_sid}/items"), json!({"data": {"n": n}})).await;
    }
    for n in 0..10 {
        assert_eq!(number(&next(&mut items).await), n);
    }

    // Killed: the client sees the connection go and retries.
    server.stop().await;
    next_event(&mut states, |e| {
        matches!(e, ClientEvent::ConnectionStateChanged(ConnectionState::Connecting)).then_some(())
    })
    .await;
    // Writes the client cannot see happen elsewhere.
    server
        .meanwhile(async |side| {
            for n in 10..60 {
                side.svc("POST", &format!("/lists/{list_sid}/items"), json!({"data": {"n": n}})).await;
            }
            side.svc("PUT", &format!("/documents/{doc_sid}"), json!({"data": {"v": "while away"}})).await;
        })
        .await;
    // Back on the same port: the client reconnects and resumes from its tokens.
    server.resume().await;
    client.wait_for(ConnectionState::Connected).await.unwrap();
    for n in 10..60 {
        assert_eq!(number(&next(&mut items).await), n, "in order, none missing");
    }
    let e = next(&mut doc_events).await;
    assert!(matches!(&e.kind, SyncEventKind::Updated { data, .. } if *data == json!({"v": "while away"})));
    assert_eq!(doc.data(), json!({"v": "while away"}));
    quiet(&mut items).await;

    // And live again after the reconnect, with local writes still told apart.
    list.push(json!({"n": 60})).await.unwrap();
    let e = next(&mut items).await;
    assert_eq!(number(&e), 60);
    assert!(e.is_local);

    // A second restart, this time with writes racing the reconnect.
    server.stop().await;
    server.resume().await;
    for n in 61..81 {
        server.svc("POST", &format!("/lists/{list_sid}/items"), json!({"data": {"n": n}})).await;
    }
    for n in 61..81 {
        assert_eq!(number(&next(&mut items).await), n);
    }
    quiet(&mut items).await;
}

#[tokio::test]
async fn an_object_removed_while_away_is_reported_removed() {
    let mut server = TestServer::start().await;
    let client = server.client("alice").await;
    let map = client.map("ephemeral").await.unwrap();
    let mut events = map.subscribe().await.unwrap();
    let sid = map.sid().to_owned();
    server.stop().await;
    server
        .meanwhile(async |side| {
            side.svc("DELETE", &format!("/maps/{sid}"), serde_json::Value::Null).await;
        })
        .await;
    server.resume().await;
    let e = next(&mut events).await;
    assert!(matches!(e.kind, SyncEventKind::Removed { .. }), "{e:?}");
}

#[tokio::test]
async fn subscriptions_made_offline_start_when_the_server_is_back() {
    let mut server = TestServer::start().await;
    let token = server.token("alice", 3600).await;
    let client = ferrosync_client::Client::connect(&server.url(), &token).await.unwrap();
    let list = client.list("later").await.unwrap();
    let sid = list.sid().to_owned();
    server.stop().await;
    // Registered while no connection is up; made as soon as one is.
    let mut items = list.subscribe().await.unwrap();
    server.resume().await;
    client.wait_for(ConnectionState::Connected).await.unwrap();
    // The subscribe frame goes out right after connecting; give it a moment before writing.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    server.svc("POST", &format!("/lists/{sid}/items"), json!({"data": {"n": 1}})).await;
    assert_eq!(number(&next(&mut items).await), 1);
}
