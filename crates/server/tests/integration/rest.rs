//! The native REST API over real HTTP: services, objects and their open modes, conditional
//! writes, lists, maps, streams, bad input (refused, naming the field, changing nothing), and
//! the operations endpoints. Credentials are in `credentials.rs`.

use super::common::{Resp, TestServer, send};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

fn indexes(page: &Value) -> Vec<u64> {
    page["items"].as_array().unwrap().iter().map(|i| i["index"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn services_crud_and_unique_name_conflicts() {
    let Some(s) = TestServer::start().await else { return };
    let created = s.post("/services", json!({ "unique_name": "app", "friendly_name": "App" })).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let sid = created.body["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("IS") && sid.len() == 34, "{sid}");
    assert_eq!(
        (&created.body["unique_name"], &created.body["friendly_name"], &created.body["acl_enabled"]),
        (&json!("app"), &json!("App"), &json!(false))
    );
    assert_eq!(created.body["revision"], 0);

    // By SID and by unique name alike.
    let by_sid = s.get(&format!("/services/{sid}")).await.ok();
    let by_name = s.get("/services/app").await.ok();
    assert_eq!(by_sid, by_name);
    assert_eq!(by_sid["sid"], sid);

    // A second service with the same unique name is refused and not created.
    s.post("/services", json!({ "unique_name": "app" })).await.refused(409, 40900, "app");
    let other = s.service("other").await;
    // Renaming onto a taken name is refused too.
    s.post("/services/other", json!({ "unique_name": "app" })).await.refused(409, 40900, "app");
    let listed = s.get("/services").await.ok();
    let names: Vec<&str> =
        listed["items"].as_array().unwrap().iter().map(|v| v["unique_name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "{listed}");
    assert!(names.contains(&"app") && names.contains(&"other"));
    assert_eq!(listed["meta"]["next_page_token"], Value::Null);

    // Update: changes what it names and bumps the revision.
    let updated = s.post(&format!("/services/{sid}"), json!({ "friendly_name": "Renamed", "acl_enabled": true })).await;
    let updated = updated.ok();
    assert_eq!(
        (&updated["friendly_name"], &updated["acl_enabled"], &updated["unique_name"], &updated["revision"]),
        (&json!("Renamed"), &json!(true), &json!("app"), &json!(1))
    );
    assert_eq!(s.get("/services/app").await.ok()["friendly_name"], "Renamed");

    // Delete: gone by name and by SID, and from the listing; its objects go with it.
    s.post("/services/app/documents", json!({ "unique_name": "d" })).await.ok();
    let removed = s.delete("/services/app").await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    s.get("/services/app").await.refused(404, 40401, "app");
    s.get(&format!("/services/{sid}")).await.refused(404, 40401, &sid);
    s.get(&format!("/services/{sid}/documents/d")).await.refused(404, 40401, &sid);
    let listed = s.get("/services").await.ok();
    let sids: Vec<&Value> = listed["items"].as_array().unwrap().iter().map(|v| &v["sid"]).collect();
    assert_eq!(sids, [&other["sid"]]);
    // The name is free again.
    assert_eq!(s.post("/services", json!({ "unique_name": "app" })).await.status, 201);
}

#[tokio::test]
async fn document_open_modes() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;

    // open_or_create is the default: created once (201), then opened (200) unchanged.
    let first = s.post("/services/app/documents", json!({ "unique_name": "d", "data": { "a": 1 } })).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!((&first.body["data"], &first.body["revision"]), (&json!({ "a": 1 }), &json!(0)));
    let again = s.post("/services/app/documents", json!({ "unique_name": "d", "data": { "a": 2 } })).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["sid"], first.body["sid"]);
    assert_eq!(again.body["data"], json!({ "a": 1 }), "initial data applies on create only");
    let explicit =
        s.post("/services/app/documents", json!({ "unique_name": "d", "mode": "open_or_create" })).await.ok();
    assert_eq!(explicit["sid"], first.body["sid"]);

    // open_existing: opens what exists, 404 for what does not (and creates nothing).
    let opened = s.post("/services/app/documents", json!({ "unique_name": "d", "mode": "open_existing" })).await;
    assert_eq!((opened.status, &opened.body["sid"]), (200, &first.body["sid"]));
    s.post("/services/app/documents", json!({ "unique_name": "ghost", "mode": "open_existing" }))
        .await
        .refused(404, 40402, "ghost");
    s.get("/services/app/documents/ghost").await.refused(404, 40402, "ghost");

    // create_new: 409 when it exists, 201 when it does not.
    s.post("/services/app/documents", json!({ "unique_name": "d", "mode": "create_new" }))
        .await
        .refused(409, 40900, "d");
    let fresh = s.post("/services/app/documents", json!({ "unique_name": "e", "mode": "create_new" })).await;
    assert_eq!(fresh.status, 201);

    // Neither sid nor unique name: a random document SID, every time a new one.
    let a = s.post("/services/app/documents", json!({})).await;
    let b = s.post("/services/app/documents", json!({ "mode": "create_new" })).await;
    assert_eq!((a.status, b.status), (201, 201));
    let (sa, sb) = (a.body["sid"].as_str().unwrap(), b.body["sid"].as_str().unwrap());
    for sid in [sa, sb] {
        assert!(sid.starts_with("ET") && sid.len() == 34, "{sid}");
        assert!(sid[2..].chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{sid}");
    }
    assert_ne!(sa, sb);
    assert!(a.body["unique_name"].is_null());
    assert_eq!(s.get(&format!("/services/app/documents/{sa}")).await.ok()["sid"], sa);

    // A chosen SID is honoured and opens the same object afterwards.
    let chosen = format!("ET{}", "0123456789abcdef".repeat(2));
    assert_eq!(s.post("/services/app/documents", json!({ "sid": chosen })).await.status, 201);
    let reopened = s.post("/services/app/documents", json!({ "sid": chosen, "mode": "open_existing" })).await;
    assert_eq!((reopened.status, reopened.body["sid"].as_str()), (200, Some(chosen.as_str())));

    let listed = s.get("/services/app/documents").await.ok();
    assert_eq!(listed["items"].as_array().unwrap().len(), 5, "d, e, two random and the chosen one");
}

#[tokio::test]
async fn if_match_mismatch_changes_nothing_and_etag_is_the_revision() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let created = s.post("/services/app/documents", json!({ "unique_name": "d", "data": { "v": 0 } })).await;
    assert_eq!(created.etag(), "0");
    let doc = "/services/app/documents/d";

    let read = s.get(doc).await;
    assert_eq!(read.etag(), read.body["revision"].to_string());

    let ok = s.put_if(doc, "0", json!({ "data": { "v": 1 } })).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!((ok.etag().as_str(), &ok.body["revision"]), ("1", &json!(1)));
    for answer in [&created, &read, &ok] {
        assert_eq!(answer.headers.get("content-type").map(|v| v.as_bytes()), Some(&b"application/json"[..]));
    }

    for stale in ["0", "2", "\"7\""] {
        let r = s.put_if(doc, stale, json!({ "data": { "v": 99 } })).await;
        // The refusal carries the document as a read would return it: a retry needs no read.
        let current = &r.body["current"];
        assert_eq!(
            (&current["data"], &current["revision"], &current["sid"]),
            (&json!({ "v": 1 }), &json!(1), &read.body["sid"])
        );
        r.refused(412, 41200, "revision");
    }
    let refused = s.delete_if(doc, "0").await;
    assert!(refused.body.get("current").is_none(), "only a write that is retried gets it: {}", refused.text);
    refused.refused(412, 41200, "revision");
    let after = s.get(doc).await;
    assert_eq!(after.status, 200, "a refused delete keeps the document");
    assert_eq!((&after.body["data"], &after.body["revision"]), (&json!({ "v": 1 }), &json!(1)), "nothing changed");
    assert_eq!(after.etag(), "1");

    // A quoted (strong or weak) ETag is accepted as a revision.
    let quoted = s.put_if(doc, "\"1\"", json!({ "data": { "v": 2 } })).await;
    assert_eq!((quoted.status, quoted.etag().as_str()), (200, "2"));
    let weak = s.put_if(doc, "W/\"2\"", json!({ "data": { "v": 3 } })).await;
    assert_eq!((weak.status, weak.etag().as_str()), (200, "3"));
    // Without If-Match the write is unconditional.
    let plain = s.put(doc, json!({ "data": { "v": 4 } })).await;
    assert_eq!((plain.status, plain.etag().as_str()), (200, "4"));

    assert_eq!(s.delete_if(doc, "4").await.status, 204);
    s.get(doc).await.refused(404, 40402, "d");
}

/// `Prefer: return=minimal` (RFC 7240) answers a write with its status and the revision in
/// `ETag`, without a body; the write is the same, and any other preference is ignored.
#[tokio::test]
async fn a_write_preferring_a_minimal_return_answers_without_its_body() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let doc = "/services/app/documents/d";
    s.post("/services/app/documents", json!({ "unique_name": "d", "data": { "v": 0 } })).await.ok();
    let put = |prefer: &'static str, v: u64| {
        send(
            s.admin(Method::PUT, doc)
                .header("If-Match", (v - 1).to_string())
                .header("Prefer", prefer)
                .json(&json!({ "data": { "v": v } })),
        )
    };
    for (v, prefer) in [(1, "return=minimal"), (2, "respond-async, RETURN = \"minimal\"; x=1")] {
        let r = put(prefer, v).await;
        assert_eq!((r.status, r.etag(), r.text.as_str()), (204, v.to_string(), ""), "{prefer}");
        assert_eq!(r.headers.get("preference-applied").and_then(|h| h.to_str().ok()), Some("return=minimal"));
    }
    let full = put("return=representation", 3).await;
    assert_eq!((full.status, &full.body["data"]), (200, &json!({ "v": 3 })), "{}", full.text);
    assert!(full.headers.get("preference-applied").is_none());
    let after = s.get(doc).await;
    assert_eq!((&after.body["data"], &after.body["revision"]), (&json!({ "v": 3 }), &json!(3)), "every write applied");
    // A refusal keeps its body: the error says why.
    let stale = put("return=minimal", 1).await;
    stale.refused(412, 41200, "revision");

    // An item set: a creation keeps its 201, a replacement is 204.
    s.post("/services/app/maps", json!({ "unique_name": "m" })).await.ok();
    let item = "/services/app/maps/m/items/k";
    for (status, etag) in [(201, "0"), (204, "1")] {
        let r =
            send(s.admin(Method::PUT, item).header("Prefer", "return=minimal").json(&json!({ "data": { "x": etag } })))
                .await;
        assert_eq!((r.status, r.etag().as_str(), r.text.as_str()), (status, etag, ""));
    }
    assert_eq!(s.get(item).await.body["data"], json!({ "x": "1" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creation_preferring_a_minimal_return_answers_with_what_the_server_chose() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    s.post("/services/app/lists", json!({ "unique_name": "l" })).await.ok();
    s.post("/services/app/maps", json!({ "unique_name": "m" })).await.ok();
    s.post("/services/app/streams", json!({ "unique_name": "s" })).await.ok();
    let create = |path: &'static str, body: Value| {
        send(s.admin(Method::POST, path).header("Prefer", "return=minimal").json(&body))
    };
    // The created item's address, under the mount, read back with the data sent.
    let location = |r: &Resp| r.headers.get("location").and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned();
    let items = |kind: &str| format!("/api/v1/services/app/{kind}/items");

    for index in [0, 1] {
        let r = create("/services/app/lists/l/items", json!({ "data": { "i": index } })).await;
        assert_eq!(
            (r.status, &r.body, r.etag()),
            (201, &json!({ "index": index, "revision": 0 }), "0".into()),
            "{}",
            r.text
        );
        assert_eq!(r.headers.get("preference-applied").and_then(|h| h.to_str().ok()), Some("return=minimal"));
        assert_eq!(location(&r), format!("{}/{index}", items("lists/l")));
        let read = s.get(location(&r).trim_start_matches("/api/v1")).await;
        assert_eq!(read.body["data"], json!({ "i": index }), "{}", read.text);
    }
    let r = create("/services/app/maps/m/items", json!({ "key": "a b/c", "data": { "k": 1 } })).await;
    assert_eq!((r.status, &r.body), (201, &json!({ "revision": 0 })), "{}", r.text);
    assert_eq!(location(&r), format!("{}/a%20b%2Fc", items("maps/m")));
    assert_eq!(s.get(location(&r).trim_start_matches("/api/v1")).await.body["data"], json!({ "k": 1 }));

    let r = create("/services/app/streams/s/messages", json!({ "data": { "m": 1 } })).await;
    let sid = r.body["sid"].as_str().unwrap_or_default();
    assert_eq!((r.status, r.body.as_object().map(|o| o.len())), (201, Some(1)), "{}", r.text);
    assert!(sid.starts_with("TZ"), "{}", r.text);

    // Without the preference: the item in full, with its address all the same.
    let full = s.post("/services/app/lists/l/items", json!({ "data": { "i": 2 } })).await;
    assert_eq!(
        (full.status, &full.body["index"], &full.body["data"]),
        (201, &json!(2), &json!({ "i": 2 })),
        "{}",
        full.text
    );
    assert_eq!(location(&full), format!("{}/2", items("lists/l")));
    assert!(full.headers.get("preference-applied").is_none());
    let published = s.post("/services/app/streams/s/messages", json!({ "data": { "m": 2 } })).await;
    assert_eq!(published.body["data"], json!({ "m": 2 }), "{}", published.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_if_match_updates_have_exactly_one_winner() {
    let Some(s) = TestServer::start().await else { return };
    let s = Arc::new(s);
    s.service("app").await;
    s.post("/services/app/documents", json!({ "unique_name": "race", "data": { "writer": -1 } })).await.ok();
    let mut tasks = Vec::new();
    for writer in 0..32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let r = s.put_if("/services/app/documents/race", "0", json!({ "data": { "writer": writer } })).await;
            (writer, r)
        }));
    }
    let mut winners = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (writer, r) = tokio::time::timeout(Duration::from_secs(60), t).await.unwrap().unwrap();
        match r.status {
            200 => winners.push(writer),
            412 => {
                assert_eq!(r.code(), 41200);
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner: {winners:?}");
    assert_eq!(refused, 31);
    let doc = s.get("/services/app/documents/race").await.ok();
    assert_eq!(doc["revision"], 1);
    assert_eq!(doc["data"], json!({ "writer": winners[0] }), "the winner's write is the one kept");
    let updates = s.all_changes("app").await.iter().filter(|e| e["type"] == "document_updated").count();
    assert_eq!(updates, 1, "losers left no trace in the change log");
}

#[tokio::test]
async fn list_indexes_increase_and_are_never_reused() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    s.post("/services/app/lists", json!({ "unique_name": "l" })).await.ok();
    for n in 0..5u64 {
        let item = s.post("/services/app/lists/l/items", json!({ "data": { "n": n } })).await;
        assert_eq!(item.status, 201, "{}", item.text);
        assert_eq!((item.body["index"].as_u64(), item.etag().as_str()), (Some(n), "0"));
    }
    // Remove the last and a middle one: neither index comes back.
    assert_eq!(s.delete("/services/app/lists/l/items/4").await.status, 204);
    assert_eq!(s.delete("/services/app/lists/l/items/2").await.status, 204);
    s.get("/services/app/lists/l/items/4").await.refused(404, 40403, "4");
    let next = s.post("/services/app/lists/l/items", json!({ "data": { "n": 5 } })).await.ok();
    assert_eq!(next["index"], 5, "index 4 is not reused");
    let next = s.post("/services/app/lists/l/items", json!({ "data": { "n": 6 } })).await.ok();
    assert_eq!(next["index"], 6);
    assert_eq!(indexes(&s.get("/services/app/lists/l/items").await.ok()), [0, 1, 3, 5, 6]);

    // Items are updated in place, conditionally.
    let updated = s.put_if("/services/app/lists/l/items/3", "0", json!({ "data": { "n": 33 } })).await;
    assert_eq!((updated.status, updated.etag().as_str()), (200, "1"));
    let stale = s.put_if("/services/app/lists/l/items/3", "0", json!({ "data": { "n": 0 } })).await;
    assert_eq!((&stale.body["current"]["data"], &stale.body["current"]["revision"]), (&json!({ "n": 33 }), &json!(1)));
    stale.refused(412, 41200, "");
    let item = s.get("/services/app/lists/l/items/3").await;
    assert_eq!((&item.body["data"], item.etag().as_str()), (&json!({ "n": 33 }), "1"));
    // A list item that does not exist cannot be set (lists append).
    s.put("/services/app/lists/l/items/4", json!({ "data": {} })).await.refused(404, 40403, "4");
    s.get("/services/app/lists/l/items/abc").await.refused(400, 40001, "index");
}

#[tokio::test]
async fn list_paging_in_both_orders_from_a_point_and_across_pages() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    s.post("/services/app/lists", json!({ "unique_name": "l" })).await.ok();
    for n in 0..23u64 {
        s.post("/services/app/lists/l/items", json!({ "data": { "n": n } })).await.ok();
    }
    let all: Vec<u64> = (0..23).collect();
    let all_desc: Vec<u64> = (0..23).rev().collect();

    // Follow next_page_token.
    let follow_tokens = |query: &'static str| {
        let s = &s;
        async move {
            let mut seen = Vec::new();
            let mut page = s.get(&format!("/services/app/lists/l/items?{query}")).await.ok();
            let mut pages = 1;
            loop {
                assert_eq!(page["meta"]["page_size"], 10);
                assert!(page["items"].as_array().unwrap().len() <= 10);
                seen.extend(indexes(&page));
                let Some(token) = page["meta"]["next_page_token"].as_str() else { break };
                page = s.get(&format!("/services/app/lists/l/items?page_size=10&page_token={token}")).await.ok();
                pages += 1;
                assert!(pages < 10, "paging terminates");
            }
            (seen, pages)
        }
    };
    let (asc, pages) = follow_tokens("page_size=10").await;
    assert_eq!(asc, all);
    assert_eq!(pages, 3);
    let (desc, _) = follow_tokens("page_size=10&order=desc").await;
    assert_eq!(desc, all_desc, "the token keeps the order");

    // Follow next_page_url, an absolute URL that needs nothing added.
    let mut url = s.api("/services/app/lists/l/items?order=desc&page_size=4");
    let mut seen = Vec::new();
    for _ in 0..10 {
        let page = send(s.http.get(&url).basic_auth(&s.account_sid, Some(&s.auth_token))).await.ok();
        seen.extend(indexes(&page));
        match page["meta"]["next_page_url"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&s.server.url()), "{next}");
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(seen, all_desc);

    // `from` is inclusive, in either direction.
    let page = s.get("/services/app/lists/l/items?from=7&page_size=5").await.ok();
    assert_eq!(indexes(&page), [7, 8, 9, 10, 11]);
    let token = page["meta"]["next_page_token"].as_str().unwrap();
    let more = s.get(&format!("/services/app/lists/l/items?page_size=5&page_token={token}")).await.ok();
    assert_eq!(indexes(&more), [12, 13, 14, 15, 16]);
    let page = s.get("/services/app/lists/l/items?from=7&order=desc&page_size=5").await.ok();
    assert_eq!(indexes(&page), [7, 6, 5, 4, 3]);
    let token = page["meta"]["next_page_token"].as_str().unwrap();
    let more = s.get(&format!("/services/app/lists/l/items?page_size=5&page_token={token}")).await.ok();
    assert_eq!(indexes(&more), [2, 1, 0]);
    assert!(more["meta"]["next_page_token"].is_null() && more["meta"]["next_page_url"].is_null());
    let page = s.get("/services/app/lists/l/items?from=100").await.ok();
    assert_eq!(indexes(&page), Vec::<u64>::new());
    // The default page size is 50.
    let page = s.get("/services/app/lists/l/items").await.ok();
    assert_eq!((indexes(&page), &page["meta"]["page_size"]), (all, &json!(50)));
}

#[tokio::test]
async fn map_items_create_set_update_remove_with_if_match() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    s.post("/services/app/maps", json!({ "unique_name": "m" })).await.ok();
    let path = "/services/app/maps/m/items";

    let created = s.post(path, json!({ "key": "alice", "data": { "age": 30 } })).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!((created.body["key"].as_str(), created.etag().as_str()), (Some("alice"), "0"));
    // Creating an existing key is a conflict that keeps the item.
    s.post(path, json!({ "key": "alice", "data": { "age": 99 } })).await.refused(409, 40901, "alice");
    assert_eq!(s.get(&format!("{path}/alice")).await.ok()["data"], json!({ "age": 30 }));

    // PUT creates a missing key (201) and replaces an existing one (200).
    let set = s.put(&format!("{path}/bob"), json!({ "data": { "age": 40 } })).await;
    assert_eq!((set.status, set.etag().as_str()), (201, "0"));
    let set = s.put(&format!("{path}/bob"), json!({ "data": { "age": 41 } })).await;
    assert_eq!((set.status, set.etag().as_str()), (200, "1"));

    // Conditional update: right revision wins, a stale one changes nothing.
    let ok = s.put_if(&format!("{path}/alice"), "0", json!({ "data": { "age": 31 } })).await;
    assert_eq!((ok.status, ok.etag().as_str()), (200, "1"));
    s.put_if(&format!("{path}/alice"), "0", json!({ "data": { "age": 0 } })).await.refused(412, 41200, "");
    let alice = s.get(&format!("{path}/alice")).await;
    assert_eq!((&alice.body["data"], alice.etag().as_str()), (&json!({ "age": 31 }), "1"));

    // Conditional removal.
    s.delete_if(&format!("{path}/bob"), "0").await.refused(412, 41200, "");
    assert_eq!(s.get(&format!("{path}/bob")).await.status, 200, "a stale If-Match keeps the item");
    assert_eq!(s.delete_if(&format!("{path}/bob"), "1").await.status, 204);
    s.get(&format!("{path}/bob")).await.refused(404, 40403, "bob");

    // Keys: 320 characters are fine, 321 are refused naming `key`, through both routes.
    let longest = "k".repeat(320);
    assert_eq!(s.post(path, json!({ "key": longest, "data": {} })).await.status, 201);
    let too_long = "k".repeat(321);
    s.post(path, json!({ "key": too_long, "data": {} })).await.refused(400, 40001, "key");
    s.put(&format!("{path}/{too_long}"), json!({ "data": {} })).await.refused(400, 40001, "key");

    let page = s.get(path).await.ok();
    let keys: Vec<&str> = page["items"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["alice", longest.as_str()], "keys in order; nothing else was written");
    let from = s.get(&format!("{path}?order=desc&from=b")).await.ok();
    assert_eq!(from["items"][0]["key"], "alice");
}

#[tokio::test]
async fn stream_publish_and_oversized_messages() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let stream = s.post("/services/app/streams", json!({ "unique_name": "s" })).await;
    assert_eq!(stream.status, 201);
    let stream_sid = stream.body["sid"].as_str().unwrap().to_owned();
    assert!(stream_sid.starts_with("TO"));

    let sent = s.post("/services/app/streams/s/messages", json!({ "data": { "text": "hi" } })).await;
    assert_eq!(sent.status, 201, "{}", sent.text);
    assert!(sent.body["sid"].as_str().unwrap().starts_with("TZ"));
    assert_eq!((&sent.body["stream_sid"], &sent.body["data"]), (&json!(stream_sid), &json!({ "text": "hi" })));

    // Just under and just over 4 KiB of compact JSON.
    let fits = "m".repeat(4096 - r#"{"m":""}"#.len());
    assert_eq!(s.post("/services/app/streams/s/messages", json!({ "data": { "m": fits } })).await.status, 201);
    let over = "m".repeat(4097 - r#"{"m":""}"#.len());
    let big = s.post("/services/app/streams/s/messages", json!({ "data": { "m": over } })).await;
    big.refused(413, 41300, "data");
    assert!(big.message().contains("4096"), "{}", big.message());

    let published: Vec<Value> =
        s.all_changes("app").await.into_iter().filter(|e| e["type"] == "stream_message_published").collect();
    assert_eq!(published.len(), 2, "the refused message was not published");
    assert_eq!(published[0]["data"], json!({ "text": "hi" }));
    assert_eq!(published[0]["message_sid"], sent.body["sid"]);
}

/// What a refused request must leave untouched.
async fn state_of(s: &TestServer) -> (Value, Value, Vec<Value>) {
    let doc = s.get("/services/app/documents/d").await.ok();
    let docs = s.get("/services/app/documents").await.ok()["items"].clone();
    (json!({ "data": doc["data"], "revision": doc["revision"] }), docs, s.all_changes("app").await)
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_problem_and_changes_nothing() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    s.post("/services/app/documents", json!({ "unique_name": "d", "data": { "keep": true } })).await.ok();
    s.post("/services/app/lists", json!({ "unique_name": "l" })).await.ok();
    s.post("/services/app/lists/l/items", json!({ "data": { "n": 0 } })).await.ok();
    let before = state_of(&s).await;
    let doc = "/services/app/documents/d";

    let mut cases: Vec<(&str, Resp, u16, u64, String)> = Vec::new();
    cases.push(("malformed JSON", s.raw(Method::PUT, doc, "{\"data\": {").await, 400, 40000, "JSON".into()));
    cases.push((
        "malformed JSON on open",
        s.raw(Method::POST, "/services/app/documents", "{\"unique_name\": ").await,
        400,
        40000,
        "JSON".into(),
    ));
    cases.push((
        "unknown field",
        s.put(doc, json!({ "data": { "x": 1 }, "colour": "red" })).await,
        400,
        40001,
        "colour".into(),
    ));
    cases.push((
        "unknown field on open",
        s.post("/services/app/documents", json!({ "unique_name": "n", "flavour": 1 })).await,
        400,
        40001,
        "flavour".into(),
    ));
    cases.push((
        "unknown field on a list item",
        s.post("/services/app/lists/l/items", json!({ "data": {}, "size": 1 })).await,
        400,
        40001,
        "size".into(),
    ));
    cases.push(("data not an object", s.put(doc, json!({ "data": [1, 2] })).await, 400, 40001, "data".into()));
    cases.push((
        "data on opening a list",
        s.post("/services/app/lists", json!({ "unique_name": "m", "data": { "x": 1 } })).await,
        400,
        40001,
        "data".into(),
    ));
    cases.push((
        "data on updating a list",
        s.put("/services/app/lists/l", json!({ "data": { "x": 1 } })).await,
        400,
        40001,
        "data".into(),
    ));
    let sid_shaped = format!("ET{}", "a".repeat(32));
    cases.push((
        "unique name shaped like a SID",
        s.post("/services/app/documents", json!({ "unique_name": sid_shaped })).await,
        400,
        40001,
        "unique_name".into(),
    ));
    let sid_shaped_other = format!("ZZ{}", "0".repeat(32));
    cases.push((
        "unique name shaped like an unknown kind of SID",
        s.post("/services/app/documents", json!({ "unique_name": sid_shaped_other })).await,
        400,
        40001,
        "unique_name".into(),
    ));
    let map_sid = format!("MP{}", "b".repeat(32));
    cases.push((
        "a map SID where a document is expected",
        s.get(&format!("/services/app/documents/{map_sid}")).await,
        400,
        40002,
        map_sid.clone(),
    ));
    cases.push((
        "a map SID in an update",
        s.put(&format!("/services/app/documents/{map_sid}"), json!({ "data": {} })).await,
        400,
        40002,
        map_sid.clone(),
    ));
    cases.push((
        "a document SID as a service",
        s.get(&format!("/services/ET{}/documents", "c".repeat(32))).await,
        400,
        40002,
        "ET".into(),
    ));
    cases.push((
        "If-Match that is not a revision",
        send(s.admin(Method::PUT, doc).header("If-Match", "abc").json(&json!({ "data": { "x": 1 } }))).await,
        400,
        40003,
        "abc".into(),
    ));
    cases.push((
        "If-Match on delete that is not a revision",
        send(s.admin(Method::DELETE, doc).header("If-Match", "*")).await,
        400,
        40003,
        "If-Match".into(),
    ));
    let big = "x".repeat(16 * 1024);
    cases.push(("data over 16 KiB", s.put(doc, json!({ "data": { "big": big } })).await, 413, 41300, "16384".into()));
    cases.push((
        "list item data over 16 KiB",
        s.post("/services/app/lists/l/items", json!({ "data": { "big": big } })).await,
        413,
        41300,
        "data".into(),
    ));
    let huge = "x".repeat(70 * 1024);
    cases.push((
        "a body over 64 KiB",
        s.put(doc, json!({ "data": { "huge": huge } })).await,
        413,
        41300,
        "64 KiB".into(),
    ));
    cases.push(("TTL over a year", s.put(doc, json!({ "ttl": 31_536_001 })).await, 400, 40001, "ttl".into()));
    cases.push((
        "TTL over a year on open",
        s.post("/services/app/documents", json!({ "unique_name": "t", "ttl": 31_536_001 })).await,
        400,
        40001,
        "ttl".into(),
    ));
    cases.push((
        "collection TTL over a year",
        s.post("/services/app/lists/l/items", json!({ "data": {}, "collection_ttl": 31_536_001 })).await,
        400,
        40001,
        "collection_ttl".into(),
    ));
    cases.push(("page_size 0", s.get("/services/app/lists/l/items?page_size=0").await, 400, 40001, "page_size".into()));
    cases.push((
        "page_size 1001",
        s.get("/services/app/documents?page_size=1001").await,
        400,
        40001,
        "page_size".into(),
    ));
    cases.push((
        "a garbage page token",
        s.get("/services/app/documents?page_token=zz").await,
        400,
        40006,
        "page".into(),
    ));
    cases.push(("a garbage since-token", s.get("/services/app/changes?since=nope").await, 400, 40004, "".into()));
    cases.push((
        "not JSON at all",
        send(s.admin(Method::PUT, doc).header("content-type", "text/plain").body("data")).await,
        415,
        41500,
        "JSON".into(),
    ));

    for (what, r, status, code, names) in &cases {
        assert_eq!(r.status, *status, "{what}: {}", r.text);
        assert_eq!(r.code(), *code, "{what}: {}", r.text);
        assert_eq!(r.body["status"], *status, "{what}: {}", r.text);
        assert!(r.message().contains(names.as_str()), "{what}: the message names '{names}': {}", r.message());
    }
    // A TTL of exactly a year is accepted: the limit is inclusive.
    let ok = s.put("/services/app/lists/l", json!({ "ttl": 31_536_000 })).await;
    assert_eq!(ok.status, 200, "{}", ok.text);

    let after = state_of(&s).await;
    assert_eq!(after.0, before.0, "the document is unchanged");
    assert_eq!(after.1, before.1, "no document was created");
    let new_events: Vec<&Value> = after.2.iter().skip(before.2.len()).collect();
    assert_eq!(after.2[..before.2.len()], before.2[..]);
    assert_eq!(new_events.len(), 1, "only the accepted list update was logged: {new_events:?}");
    assert_eq!(new_events[0]["type"], "list_updated");
    assert_eq!(indexes(&s.get("/services/app/lists/l/items").await.ok()), [0]);
}

/// serde's derived structs also read an array of their fields in order: `[null, null]` once
/// created a service and `[{"x": 1}]` a list item. Every native body is a JSON object.
#[tokio::test]
async fn json_bodies_that_are_not_objects_are_refused_and_change_nothing() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    s.post("/services/app/lists", json!({ "unique_name": "l" })).await.ok();
    s.post("/services/app/maps", json!({ "unique_name": "m" })).await.ok();
    let services_before = s.get("/services").await.ok()["items"].clone();
    let changes_before = s.all_changes("app").await;

    let cases: [(Method, &str, &'static str, &str); 9] = [
        (Method::POST, "/services", "[null, null]", "sequence"),
        (Method::POST, "/services", "[]", "sequence"),
        (Method::POST, "/services", "null", "null"),
        (Method::POST, "/services/app", "[\"renamed\"]", "sequence"),
        (Method::POST, "/services/app/documents", "[\"d\"]", "sequence"),
        (Method::POST, "/services/app/lists/l/items", "[{\"x\": 1}]", "sequence"),
        (Method::POST, "/services/app/maps/m/items", "[\"k\", {}]", "sequence"),
        (Method::PUT, "/services/app/maps/m/items/k", "\"data\"", "string"),
        (Method::POST, "/keys", "42", "integer"),
    ];
    for (method, path, body, kind) in cases {
        let r = s.raw(method.clone(), path, body).await;
        r.refused(400, 40001, "expected the body to be a JSON object");
        assert!(r.message().contains(kind), "{method} {path} {body}: the message names '{kind}': {}", r.message());
    }

    assert_eq!(s.get("/services").await.ok()["items"], services_before, "no service was created or renamed");
    assert_eq!(s.all_changes("app").await, changes_before, "nothing was written");
    assert!(s.get("/services/app/lists/l/items").await.ok()["items"].as_array().unwrap().is_empty());
}

/// The served document is valid OpenAPI that clients can be generated from: operation ids are
/// unique, every response has its required description, and every operation documents the
/// native error body.
#[tokio::test]
async fn openapi_document_has_unique_operation_ids_described_responses_and_the_error_body() {
    let Some(s) = TestServer::start().await else { return };
    let doc = send(s.http.get(s.api("/openapi.json"))).await.ok();
    let mut ids = HashSet::new();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let id = operation["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "{method} {path}: operationId {id} is used twice");
            for (status, response) in operation["responses"].as_object().unwrap() {
                let description = response["description"].as_str().unwrap_or_default();
                assert!(!description.is_empty(), "{method} {path}: response {status} has no description");
            }
            let error = &operation["responses"]["default"]["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(error, "#/components/schemas/ErrorBody", "{method} {path}");
        }
    }
    assert!(operations >= 38, "{operations} operations");
}

#[tokio::test]
async fn operations_endpoints_and_route_errors() {
    let Some(s) = TestServer::start().await else { return };
    let health = send(s.http.get(s.root("/healthz"))).await;
    assert_eq!((health.status, health.text.trim()), (200, "ok"));
    let ready = send(s.http.get(s.root("/readyz"))).await;
    assert_eq!((ready.status, ready.text.trim()), (200, "ready"));

    s.service("app").await;
    let metrics = send(s.http.get(s.root("/metrics"))).await;
    assert_eq!(metrics.status, 200);
    let line = metrics
        .text
        .lines()
        .find(|l| {
            l.starts_with("ferrosync_http_requests_total{")
                && l.contains("route=\"/api/v1/services\"")
                && l.contains("method=\"POST\"")
                && l.contains("status=\"201\"")
        })
        .unwrap_or_else(|| panic!("a request counter for POST /api/v1/services:\n{}", metrics.text));
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 1.0, "{line}");
    // Batch sizes are counted in powers of two, not in the seconds' buckets of the timings.
    for bound in ["le=\"2\"", "le=\"512\""] {
        assert!(
            metrics
                .text
                .lines()
                .any(|l| l.starts_with("ferrosync_store_commit_batch_size_bucket{") && l.contains(bound)),
            "a commit batch-size bucket {bound}:\n{}",
            metrics.text
        );
    }
    assert!(!metrics.text.contains("ferrosync_store_commit_batch_size_bucket{le=\"0.0005\"}"), "{}", metrics.text);
    // The store's handles were taken as it opened, after the recorder was installed.
    assert!(
        metrics.text.lines().any(|l| l.starts_with("ferrosync_store_commit_seconds_count")),
        "commits timed:\n{}",
        metrics.text
    );

    let unknown = send(s.http.get(s.root("/nowhere"))).await;
    unknown.refused(404, 40400, "/nowhere");
    let unknown_api = send(s.admin(Method::GET, "/widgets")).await;
    unknown_api.refused(404, 40400, "/api/v1/widgets");
    let collection = s.get("/services/app/widgets").await;
    collection.refused(404, 40400, "widgets");
    let wrong_method = send(s.admin(Method::PATCH, "/services")).await;
    wrong_method.refused(405, 40500, "PATCH");
    let wrong_method = send(s.admin(Method::PUT, "/services/app/changes")).await;
    wrong_method.refused(405, 40500, "PUT");

    let doc = send(s.http.get(s.api("/openapi.json"))).await.ok();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths: HashSet<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    for p in ["/api/v1/services", "/api/v1/services/{service}/changes", "/api/v1/tokens", "/api/v1/keys"] {
        assert!(paths.contains(p), "{p} is documented");
    }
}
