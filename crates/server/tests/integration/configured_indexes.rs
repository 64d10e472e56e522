//! Indexes declared in the configuration file (`[[indexes]]`): declared before the server
//! serves, creating the services they name, queried like any other; a restart with the same
//! configuration changes nothing, and indexes declared through the API are kept.

use super::common::{Settings, TestServer};
use ferrosync_server::bootstrap::{ConfiguredIndex, DeclaredIndexes, declare_indexes};
use serde_json::{Value, json};

/// `[[indexes]]` tables, read as the configuration file's are.
fn configured(entries: Value) -> Vec<ConfiguredIndex> {
    serde_json::from_value(entries).expect("valid [[indexes]] entries")
}

fn keys(found: &Value) -> Vec<&str> {
    found["items"].as_array().into_iter().flatten().filter_map(|i| i["key"].as_str()).collect()
}

#[tokio::test]
async fn configured_indexes_are_declared_at_start_and_left_alone_on_restart() {
    let entries = configured(json!([
        { "service": "catalog", "name": "by-x", "map": "things", "fields": ["data.x"] },
        { "service": "default", "name": "workers", "map_prefix": "workers-" },
    ]));
    let Some(s) = TestServer::with(Settings::default(), |cfg| cfg.indexes = entries.clone()).await else { return };

    // The missing service was created; both indexes are declared as configured.
    let catalog = s.get("/services/catalog").await.ok();
    let sid = catalog["sid"].as_str().unwrap().to_owned();
    assert_eq!(
        s.get("/services/catalog/indexes/by-x").await.ok(),
        json!({ "name": "by-x", "map": "things", "fields": ["data.x"] })
    );
    assert_eq!(
        s.get("/services/default/indexes/workers").await.ok(),
        json!({ "name": "workers", "map_prefix": "workers-", "fields": [] })
    );

    // Instant queries over items written through the native API.
    s.post("/services/catalog/maps", json!({ "unique_name": "things" })).await.ok();
    for (key, x) in [("a", "y"), ("b", "z"), ("c", "y")] {
        let r = s.put(&format!("/services/catalog/maps/things/items/{key}"), json!({ "data": { "x": x } })).await;
        assert!(r.status == 200 || r.status == 201, "{}", r.text);
    }
    let query = json!({ "query": "data.x == \"y\"" });
    let found = s.post("/services/catalog/indexes/by-x/query", query.clone()).await.ok();
    assert_eq!(keys(&found), ["a", "c"]);
    assert_eq!(found["items"][0]["map"], "things");

    // One more declared through the API only.
    s.put("/services/catalog/indexes/api-only", json!({ "map": "things" })).await.ok();
    let before = s.get("/services/catalog").await.ok();
    let default_before = s.get("/services/default").await.ok();

    // A restart with the same configuration: nothing to do.
    let again = entries.clone();
    let s = s
        .restart(Settings::default(), async move |engine| {
            let done = declare_indexes(&engine, &again).await.unwrap();
            assert_eq!(done, DeclaredIndexes { changed: 0, unchanged: 2, services_created: 0 });
        })
        .await;
    let after = s.get("/services/catalog").await.ok();
    assert_eq!(after["sid"], sid.as_str(), "the same service, not another");
    assert_eq!(after["revision"], before["revision"], "the service did not change: {before} {after}");
    assert_eq!(after["date_updated"], before["date_updated"]);
    assert_eq!(s.get("/services/default").await.ok()["revision"], default_before["revision"]);
    let names: Vec<String> = s
        .get("/services/catalog/indexes")
        .await
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["by-x", "api-only"], "the API's index is kept");
    let found = s.post("/services/catalog/indexes/by-x/query", query.clone()).await.ok();
    assert_eq!(keys(&found), ["a", "c"]);

    // A changed configuration redeclares (here by SID), and the queries follow it.
    let changed = configured(json!([{ "service": sid, "name": "by-x", "map": "things", "fields": ["data.x", "key"] }]));
    let done = declare_indexes(&s.engine, &changed).await.unwrap();
    assert_eq!(done, DeclaredIndexes { changed: 1, unchanged: 0, services_created: 0 });
    assert_eq!(s.get("/services/catalog/indexes/by-x").await.ok()["fields"], json!(["data.x", "key"]));
    let found =
        s.post("/services/catalog/indexes/by-x/query", json!({ "query": "data.x == \"y\" and key != \"a\"" })).await;
    assert_eq!(keys(&found.ok()), ["c"]);
}

#[tokio::test]
async fn configured_indexes_that_cannot_be_declared_stop_the_start_naming_the_entry() {
    let Some(s) = TestServer::start().await else { return };
    let missing_sid = "IS0123456789abcdef0123456789abcdef";
    let entries = configured(json!([{ "service": missing_sid, "name": "i", "map": "m" }]));
    let error = declare_indexes(&s.engine, &entries).await.expect_err("a service given by SID must exist").to_string();
    assert!(error.contains("index 'i'") && error.contains(missing_sid), "{error}");

    // The same index of the same service, once by name and once by SID.
    let app = s.service("app").await;
    let sid = app["sid"].as_str().unwrap();
    let twice = configured(json!([
        { "service": "app", "name": "i", "map": "m" },
        { "service": sid, "name": "i", "map": "n" },
    ]));
    let error = declare_indexes(&s.engine, &twice).await.expect_err("declared twice").to_string();
    assert!(error.contains("twice"), "{error}");
    assert_eq!(s.get("/services/app/indexes").await.ok(), json!([]), "nothing declared");
}
