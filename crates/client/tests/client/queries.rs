//! Instant and live queries through the client.

use crate::support::{TestServer, next, quiet};
use ferrosync_client::{LiveQueryEvent, Order};
use serde_json::json;

async fn people(server: &TestServer) -> String {
    server.svc("PUT", "/indexes/people", json!({"map_prefix": "people-", "fields": ["data.team"]})).await;
    let map = server.svc("POST", "/maps", json!({"unique_name": "people-1"})).await;
    let sid = map["sid"].as_str().unwrap().to_owned();
    for (key, team, age) in [("ann", "eng", 30), ("ben", "ops", 40), ("cat", "eng", 50)] {
        server
            .svc("POST", &format!("/maps/{sid}/items"), json!({"key": key, "data": {"team": team, "age": age}}))
            .await;
    }
    sid
}

#[tokio::test]
async fn instant_queries_page_through_current_results() {
    let server = TestServer::start().await;
    people(&server).await;
    let client = server.client("alice").await;
    let q = client.instant_query("people", r#"data.team == "eng""#, Order::Asc);
    let keys: Vec<String> = q.list(None, Some(1)).await.unwrap().into_iter().map(|i| i.key).collect();
    assert_eq!(keys, ["ann", "cat"]);
    let desc = client.instant_query("people", "data.age >= 40", Order::Desc).list(None, None).await.unwrap();
    assert_eq!(desc.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(), ["cat", "ben"]);
    let bad = client.instant_query("people", "data.team ==", Order::Asc).list(None, None).await.unwrap_err();
    assert_eq!(bad.status(), Some(400), "{bad}");
    assert!(bad.to_string().contains("column"), "{bad}");
}

#[tokio::test]
async fn live_queries_see_items_enter_change_and_leave() {
    let mut server = TestServer::start().await;
    let sid = people(&server).await;
    let client = server.client("alice").await;
    let mut eng = client.live_query("people", r#"data.team == "eng""#).await.unwrap();
    let mut first: Vec<&str> = eng.items().iter().map(|i| i.key.as_str()).collect();
    first.sort();
    assert_eq!(first, ["ann", "cat"]);

    server.svc("PUT", &format!("/maps/{sid}/items/ben"), json!({"data": {"team": "eng", "age": 41}})).await;
    assert!(
        matches!(next(&mut eng).await, LiveQueryEvent::ItemUpdated { key, revision, .. } if key == "ben" && revision > 0)
    );
    server.svc("PUT", &format!("/maps/{sid}/items/ann"), json!({"data": {"team": "ops", "age": 30}})).await;
    assert_eq!(next(&mut eng).await, LiveQueryEvent::ItemRemoved { map: "people-1".into(), key: "ann".into() });
    // Not in the results before or after: nothing.
    server.svc("PUT", &format!("/maps/{sid}/items/ann"), json!({"data": {"team": "ops", "age": 31}})).await;
    quiet(&mut eng).await;

    // Across a restart: changes made while away arrive once.
    server.stop().await;
    server
        .meanwhile(async |side| {
            side.svc("PUT", &format!("/maps/{sid}/items/ann"), json!({"data": {"team": "eng", "age": 32}})).await;
        })
        .await;
    server.resume().await;
    assert!(matches!(next(&mut eng).await, LiveQueryEvent::ItemUpdated { key, .. } if key == "ann"));
    quiet(&mut eng).await;

    // A removed Map takes each of its results out, one event per item.
    server.svc("DELETE", &format!("/maps/{sid}"), serde_json::Value::Null).await;
    let mut gone = Vec::new();
    for _ in 0..3 {
        match next(&mut eng).await {
            LiveQueryEvent::ItemRemoved { key, .. } => gone.push(key),
            other => panic!("{other:?}"),
        }
    }
    gone.sort();
    assert_eq!(gone, ["ann", "ben", "cat"]);
}
