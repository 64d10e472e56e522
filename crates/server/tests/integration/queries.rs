//! Indexes over a service's Maps and instant queries on them through the native API: index
//! declarations, every operator, paging, fresh data on every call, identities' read rights,
//! bad input, and results checked against a brute-force evaluation over random data.

use super::common::TestServer;
use ferrosync_core::auth::Principal;
use ferrosync_core::engine::parse_query;
use ferrosync_core::page::{Order, PageRequest};
use serde_json::{Value, json};

async fn put_item(s: &TestServer, map: &str, key: &str, data: Value) {
    let r = s.put(&format!("/services/app/maps/{map}/items/{key}"), json!({ "data": data })).await;
    assert!(r.status == 200 || r.status == 201, "{}", r.text);
}

async fn query(s: &TestServer, index: &str, q: &str, extra: Value) -> Value {
    let mut body = json!({ "query": q });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    s.post(&format!("/services/app/indexes/{index}/query"), body).await.ok()
}

fn keys(found: &Value) -> Vec<String> {
    found["items"].as_array().into_iter().flatten().map(|i| i["key"].as_str().unwrap_or_default().to_owned()).collect()
}

#[tokio::test]
async fn instant_queries_answer_from_an_index_with_every_operator() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    for map in ["workers-eu", "workers-us", "tasks"] {
        s.post("/services/app/maps", json!({ "unique_name": map })).await.ok();
    }
    put_item(&s, "workers-eu", "w1", json!({"attributes": {"worker_name": "Bob", "skills": ["en", "fr"]}, "age": 31}))
        .await;
    put_item(&s, "workers-eu", "w2", json!({"attributes": {"worker_name": "Ann", "skills": ["de"]}, "age": "45"}))
        .await;
    put_item(&s, "workers-us", "w3", json!({"attributes": {"worker_name": "Bob", "skills": []}, "age": 25})).await;
    put_item(&s, "tasks", "t1", json!({"attributes": {"worker_name": "Bob"}})).await;

    let declared = s
        .put(
            "/services/app/indexes/tr-worker",
            json!({ "map_prefix": "workers-", "fields": ["data.attributes.worker_name", "data.age"] }),
        )
        .await
        .ok();
    assert_eq!(declared["map_prefix"], "workers-");
    assert_eq!(s.get("/services/app/indexes").await.ok().as_array().map(Vec::len), Some(1));

    let cases = [
        (r#"data.attributes.worker_name == "Bob""#, vec!["w1", "w3"]),
        (r#"data.attributes.worker_name EQ "Bob" AND data.age > 30"#, vec!["w1"]),
        (r#"data.attributes.worker_name in ["Ann", "Zed"]"#, vec!["w2"]),
        (r#"data.attributes.worker_name not_in ["Ann"]"#, vec!["w1", "w3"]),
        (r#"data.attributes.worker_name != "Bob""#, vec!["w2"]),
        (r#"data.attributes.skills contains "fr" || key == "w2""#, vec!["w1", "w2"]),
        (r#"data.age >= 31 and data.age <= 45"#, vec!["w1", "w2"]),
        (r#"data.age == "25""#, vec!["w3"]),
        (r#"(data.age < 30 or data.age > 40) and data.attributes.worker_name exists"#, vec!["w2", "w3"]),
        (r#"key == "t1""#, vec![]),
    ];
    for (q, expected) in cases {
        let found = query(&s, "tr-worker", q, json!({})).await;
        assert_eq!(keys(&found), expected, "{q}");
    }
    let one = query(&s, "tr-worker", r#"key == "w2""#, json!({})).await;
    assert_eq!(
        one["items"][0],
        json!({"map": "workers-eu", "key": "w2", "revision": one["items"][0]["revision"],
               "data": {"attributes": {"worker_name": "Ann", "skills": ["de"]}, "age": "45"}})
    );
    assert!(one["since"].is_string());

    // Every call sees current data, including Maps made after the index was built.
    put_item(&s, "workers-eu", "w1", json!({"attributes": {"worker_name": "Rob"}, "age": 31})).await;
    s.post("/services/app/maps", json!({ "unique_name": "workers-jp" })).await.ok();
    put_item(&s, "workers-jp", "w4", json!({"attributes": {"worker_name": "Bob"}})).await;
    s.delete("/services/app/maps/workers-us").await.ok();
    assert_eq!(keys(&query(&s, "tr-worker", r#"data.attributes.worker_name == "Bob""#, json!({})).await), ["w4"]);

    // Pages of two, in (Map, key) order, and backwards.
    for n in 5..10 {
        put_item(&s, "workers-jp", &format!("w{n}"), json!({"attributes": {"worker_name": "Bob"}})).await;
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let extra = match &token {
            Some(t) => json!({"page_size": 2, "page_token": t}),
            None => json!({"page_size": 2}),
        };
        let page = query(&s, "tr-worker", r#"data.attributes.worker_name == "Bob""#, extra).await;
        let got = keys(&page);
        assert!(got.len() <= 2);
        seen.extend(got);
        match page["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["w4", "w5", "w6", "w7", "w8", "w9"]);
    let desc =
        query(&s, "tr-worker", r#"data.attributes.worker_name == "Bob""#, json!({"order": "desc", "page_size": 3}))
            .await;
    assert_eq!(keys(&desc), ["w9", "w8", "w7"]);

    // Bad input: the query names where it went wrong; limits carry the language's codes.
    let r = s.post("/services/app/indexes/tr-worker/query", json!({"query": r#"data.name = "x""#})).await;
    r.refused(400, 40013, "column");
    let many = vec![r#"key == "a""#; 30].join(" or ");
    s.post("/services/app/indexes/tr-worker/query", json!({ "query": many })).await.refused(400, 40013, "30");
    s.post("/services/app/indexes/nope/query", json!({"query": r#"key == "a""#})).await.refused(404, 40402, "nope");
    s.put("/services/app/indexes/bad", json!({"map": "m", "fields": ["name"]})).await.refused(400, 40001, "fields");
    s.put("/services/app/indexes/bad", json!({"map": "m", "map_prefix": "x"})).await.refused(400, 40001, "map");
    s.put("/services/app/indexes/bad name", json!({"map": "m"})).await.refused(400, 40001, "name");
    assert_eq!(s.delete("/services/app/indexes/tr-worker").await.status, 204);
    s.post("/services/app/indexes/tr-worker/query", json!({"query": r#"key == "a""#})).await.refused(
        404,
        40402,
        "tr-worker",
    );
}

#[tokio::test]
async fn an_identity_finds_only_items_of_maps_it_may_read() {
    let Some(s) = TestServer::start().await else { return };
    s.post("/services", json!({ "unique_name": "app", "acl_enabled": true })).await.ok();
    for map in ["notes-alice", "notes-bob"] {
        s.post("/services/app/maps", json!({ "unique_name": map })).await.ok();
        put_item(&s, map, "n1", json!({"kind": "note"})).await;
    }
    s.put("/services/app/maps/notes-alice/permissions/alice", json!({"read": true, "write": false, "manage": false}))
        .await
        .ok();
    s.put("/services/app/indexes/notes", json!({ "map_prefix": "notes-", "fields": ["data.kind"] })).await.ok();
    let token = s.mint_token("app", "alice", 600).await;
    let r = super::common::send(
        s.bearer(&token, reqwest::Method::POST, "/services/app/indexes/notes/query")
            .json(&json!({"query": r#"data.kind == "note""#})),
    )
    .await
    .ok();
    let maps: Vec<&str> = r["items"].as_array().into_iter().flatten().filter_map(|i| i["map"].as_str()).collect();
    assert_eq!(maps, ["notes-alice"]);
    // Declaring indexes takes the server's credentials.
    let r = super::common::send(
        s.bearer(&token, reqwest::Method::PUT, "/services/app/indexes/mine").json(&json!({"map": "notes-alice"})),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);
}

/// A small deterministic generator (xorshift), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
}

const NAMES: &[&str] = &["Ann", "Bob", "Cy", "Dee", "10", "2", "true"];

fn random_value(rng: &mut Rng) -> Value {
    match rng.below(6) {
        0 => json!(rng.below(50)),
        1 => json!(rng.below(50) as f64 + 0.5),
        2 => json!(rng.pick(NAMES)),
        3 => json!(rng.below(2) == 0),
        4 => Value::Null,
        _ => json!([rng.pick(NAMES), rng.pick(NAMES)]),
    }
}

fn random_literal(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => format!("\"{}\"", rng.pick(NAMES)),
        1 => rng.below(50).to_string(),
        _ => format!("{}.5", rng.below(50)),
    }
}

fn random_comparison(rng: &mut Rng) -> String {
    let field = rng.pick(&["data.a", "data.b", "data.c.d", "key"]);
    match rng.below(8) {
        0 => format!("{field} == {}", random_literal(rng)),
        1 => format!("{field} != {}", random_literal(rng)),
        2 => format!("{field} in [{}, {}]", random_literal(rng), random_literal(rng)),
        3 => format!("{field} not_in [{}]", random_literal(rng)),
        4 => format!("{field} contains \"{}\"", rng.pick(NAMES)),
        5 => format!("{field} {} {}", rng.pick(&["<", "<=", ">", ">="]), random_literal(rng)),
        6 => format!("{field} exists"),
        _ => format!("{field} >= {} and {field} < {}", random_literal(rng), random_literal(rng)),
    }
}

fn random_query(rng: &mut Rng) -> String {
    let mut q = random_comparison(rng);
    for _ in 0..rng.below(3) {
        let joint = if rng.below(2) == 0 { "and" } else { "or" };
        q = if rng.below(2) == 0 {
            format!("{q} {joint} {}", random_comparison(rng))
        } else {
            format!("({q}) {joint} {}", random_comparison(rng))
        };
    }
    q
}

#[tokio::test]
async fn indexed_results_agree_with_a_brute_force_evaluation() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for map in ["r-1", "r-2"] {
        s.post("/services/app/maps", json!({ "unique_name": map })).await.ok();
        for _ in 0..60 {
            let key = format!("k{:02}", rng.below(90));
            let data =
                json!({ "a": random_value(&mut rng), "b": random_value(&mut rng), "c": {"d": random_value(&mut rng)} });
            put_item(&s, map, &key, data).await;
        }
    }
    // Both a fully indexed and an unindexed index over the same Maps.
    s.put(
        "/services/app/indexes/indexed",
        json!({ "map_prefix": "r-", "fields": ["key", "data.a", "data.b", "data.c.d"] }),
    )
    .await
    .ok();
    s.put("/services/app/indexes/plain", json!({ "map_prefix": "r-" })).await.ok();
    // The truth: every item, read from the Maps themselves.
    let mut items: Vec<(String, String, Value)> = Vec::new();
    for map in ["r-1", "r-2"] {
        let listed = s.get(&format!("/services/app/maps/{map}/items?page_size=1000")).await.ok();
        for i in listed["items"].as_array().into_iter().flatten() {
            items.push((map.to_owned(), i["key"].as_str().unwrap_or_default().to_owned(), i["data"].clone()));
        }
    }
    assert!(items.len() > 60, "{}", items.len());
    let page = |limit| PageRequest { order: Order::Asc, from: None, after: None, limit };
    let mut matched_some = 0;
    for _ in 0..300 {
        let q = random_query(&mut rng);
        let expr = parse_query("query", &q).unwrap_or_else(|e| panic!("{q}: {e}"));
        let mut expected: Vec<(String, String)> =
            items.iter().filter(|(_, k, d)| expr.matches(k, d)).map(|(m, k, _)| (m.clone(), k.clone())).collect();
        expected.sort();
        matched_some += usize::from(!expected.is_empty() && expected.len() < items.len());
        for index in ["indexed", "plain"] {
            let found = s.engine.query(&Principal::Root, "app", index, &q, page(1000)).await.expect("answered");
            let got: Vec<(String, String)> = found.items.into_iter().map(|i| (i.map, i.key)).collect();
            assert_eq!(got, expected, "{index}: {q}");
        }
    }
    assert!(matched_some > 100, "the random queries tell items apart: {matched_some} of 300 did");
}

/// An index first used over Maps that already hold more items than one page of its build reads
/// from the store (1,000) holds all of them, not the first page only.
#[tokio::test]
async fn an_index_built_from_the_store_holds_every_item_of_a_large_map() {
    use ferrosync_core::engine::ItemPatch;
    use ferrosync_core::model::{ItemKey, ObjectKind};
    use ferrosync_core::store::ItemWriteMode;
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    s.post("/services/app/maps", json!({ "unique_name": "big" })).await.ok();
    let writes = (0..2_100).map(|i| {
        let engine = s.engine.clone();
        async move {
            let patch =
                ItemPatch { data: Some(json!({ "g": i % 3 })), ttl: None, collection_ttl: None, if_match: None };
            let key = ItemKey::Key(format!("k{i:04}"));
            engine.write_item(&Principal::Root, "app", ObjectKind::Map, "big", key, patch, ItemWriteMode::Upsert).await
        }
    });
    futures_util::future::try_join_all(writes).await.expect("written");
    // Declared after the writes, so the index is read from the store, not followed in the log.
    s.put("/services/app/indexes/by-g", json!({ "map": "big", "fields": ["data.g"] })).await.ok();
    let page = PageRequest { order: Order::Asc, from: None, after: None, limit: 1000 };
    let found = s.engine.query(&Principal::Root, "app", "by-g", "data.g == 2", page).await.expect("answered");
    let keys: Vec<String> = found.items.into_iter().map(|i| i.key).collect();
    assert_eq!(keys.len(), 700, "{keys:?}");
    assert_eq!(keys.last().map(String::as_str), Some("k2099"));
}

async fn subscribe_query(
    ws: &mut super::common::WsClient,
    index: &str,
    q: &str,
    since: Option<&str>,
) -> (Value, Vec<Value>) {
    let mut frame = json!({ "type": "subscribe_query", "index": index, "query": q });
    if let Some(s) = since {
        frame["since"] = json!(s);
    }
    let mut events = Vec::new();
    let reply = ws.request_collecting(frame, &mut events).await;
    assert_eq!(reply["status"], 200, "subscribe_query: {reply}");
    (reply["body"].clone(), events)
}

/// What an event says happened to which item.
fn change(e: &Value) -> (String, String, Value) {
    let kind = e["type"].as_str().unwrap_or_default().trim_start_matches("live_query_").to_owned();
    let key = e["key"].as_str().or(e["map"].as_str()).unwrap_or_default().to_owned();
    (kind, key, e["data"].clone())
}

#[tokio::test]
async fn live_queries_follow_items_entering_changing_and_leaving_across_reconnects() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    for map in ["crew-a", "crew-b"] {
        s.post("/services/app/maps", json!({ "unique_name": map })).await.ok();
    }
    put_item(&s, "crew-a", "ann", json!({"team": "eng", "level": 3})).await;
    put_item(&s, "crew-a", "bob", json!({"team": "ops", "level": 1})).await;
    s.put("/services/app/indexes/crew", json!({ "map_prefix": "crew-", "fields": ["data.team"] })).await.ok();
    let token = s.mint_token("app", "watcher", 600).await;
    let mut ws = s.ws(&token).await;
    let q = r#"data.team == "eng""#;
    let (body, early) = subscribe_query(&mut ws, "crew", q, None).await;
    assert!(early.is_empty(), "{early:?}");
    assert_eq!(
        body["items"].as_array().map(|i| i.iter().map(|x| x["key"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("ann")])
    );
    let query_id = body["query_id"].as_str().expect("an id").to_owned();

    // Enter, change within, leave, removed while in; things outside the results say nothing.
    put_item(&s, "crew-b", "cy", json!({"team": "eng"})).await;
    put_item(&s, "crew-a", "bob", json!({"team": "ops", "level": 2})).await;
    put_item(&s, "crew-a", "ann", json!({"team": "eng", "level": 4})).await;
    put_item(&s, "crew-a", "bob", json!({"team": "eng", "level": 2})).await;
    put_item(&s, "crew-b", "cy", json!({"team": "ops"})).await;
    s.delete("/services/app/maps/crew-a/items/bob").await.ok();
    let events = ws.events(5).await;
    assert!(events.iter().all(|e| e["query_id"] == query_id.as_str()), "{events:?}");
    let changes: Vec<(String, String, Value)> = events.iter().map(change).collect();
    assert_eq!(
        changes,
        vec![
            ("item_updated".into(), "cy".into(), json!({"team": "eng"})),
            ("item_updated".into(), "ann".into(), json!({"team": "eng", "level": 4})),
            ("item_updated".into(), "bob".into(), json!({"team": "eng", "level": 2})),
            ("item_removed".into(), "cy".into(), Value::Null),
            ("item_removed".into(), "bob".into(), Value::Null),
        ]
    );
    let last_seen = events[4]["token"].as_str().expect("a token").to_owned();

    // Away: what changes meanwhile arrives on resuming, once, then live again.
    drop(ws);
    put_item(&s, "crew-b", "dee", json!({"team": "eng"})).await;
    put_item(&s, "crew-b", "eve", json!({"team": "ops"})).await;
    s.delete("/services/app/maps/crew-a").await.ok();
    let mut ws = s.ws(&token).await;
    let (body, replayed) = subscribe_query(&mut ws, "crew", q, Some(&last_seen)).await;
    assert_eq!(body["items"], json!([]));
    let replayed = if replayed.is_empty() { ws.events(2).await } else { replayed };
    let changes: Vec<(String, String)> = replayed
        .iter()
        .map(|e| {
            let (k, key, _) = change(e);
            (k, key)
        })
        .collect();
    assert_eq!(changes, vec![("item_updated".into(), "dee".into()), ("map_removed".into(), "crew-a".into())]);
    put_item(&s, "crew-b", "eve", json!({"team": "eng"})).await;
    assert_eq!(change(&ws.next_event().await).1, "eve");

    // Unsubscribed: nothing more.
    let reply = ws.request(json!({ "type": "unsubscribe_query", "query_id": body["query_id"] })).await;
    assert_eq!(reply["status"], 200, "{reply}");
    put_item(&s, "crew-b", "fay", json!({"team": "eng"})).await;
    let reply = ws.request(json!({ "type": "ping" })).await;
    assert_eq!(reply["status"], 200, "no event came before the pong: {reply}");

    // Bad queries are refused with where they went wrong.
    let reply = ws.request(json!({ "type": "subscribe_query", "index": "crew", "query": "data.team =" })).await;
    assert_eq!((reply["status"].as_u64(), reply["error"]["code"].as_u64()), (Some(400), Some(40013)), "{reply}");
    let reply = ws.request(json!({ "type": "subscribe_query", "index": "nope", "query": q })).await;
    assert_eq!(reply["status"], 404, "{reply}");
}

#[tokio::test]
async fn a_live_query_of_an_identity_sees_only_maps_it_may_read() {
    let Some(s) = TestServer::start().await else { return };
    s.post("/services", json!({ "unique_name": "app", "acl_enabled": true })).await.ok();
    for map in ["inbox-alice", "inbox-bob"] {
        s.post("/services/app/maps", json!({ "unique_name": map })).await.ok();
    }
    s.put("/services/app/maps/inbox-alice/permissions/alice", json!({"read": true, "write": false, "manage": false}))
        .await
        .ok();
    s.put("/services/app/indexes/inbox", json!({ "map_prefix": "inbox-" })).await.ok();
    let token = s.mint_token("app", "alice", 600).await;
    let mut ws = s.ws(&token).await;
    subscribe_query(&mut ws, "inbox", r#"data.unread == true"#, None).await;
    put_item(&s, "inbox-bob", "m1", json!({"unread": true})).await;
    put_item(&s, "inbox-alice", "m2", json!({"unread": true})).await;
    let e = ws.next_event().await;
    assert_eq!((e["map"].as_str(), e["key"].as_str()), (Some("inbox-alice"), Some("m2")), "{e}");
}
