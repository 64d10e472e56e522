//! The Twilio Sync REST face over real HTTP: its wire conventions (forms, Twilio's error body,
//! paging URLs), and one history with the native API and WebSocket.

use super::common::{TestServer, form_body, send};
use reqwest::Method;
use serde_json::{Value, json};

async fn twilio_service(s: &TestServer, name: &str) -> String {
    let r = s.twilio_post("/Services", &[("FriendlyName", name), ("UniqueName", name)]).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["sid"].as_str().unwrap().to_owned()
}

/// Asserts Twilio's error body: exactly code, message, more_info and status.
fn twilio_error(r: &super::common::Resp, status: u16, code: u64) {
    assert_eq!(r.status, status, "{}", r.text);
    let body = r.body.as_object().unwrap_or_else(|| panic!("not a JSON object: {}", r.text));
    let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "message", "more_info", "status"], "{}", r.text);
    assert_eq!((&r.body["code"], &r.body["status"]), (&json!(code), &json!(status)), "{}", r.text);
    assert_eq!(r.body["more_info"], format!("https://www.twilio.com/docs/errors/{code}"));
}

#[tokio::test]
async fn documents_round_trip_with_revisions_etags_and_if_match() {
    let Some(s) = TestServer::start().await else { return };
    let svc = twilio_service(&s, "tw-docs").await;
    let created = s
        .twilio_post(
            &format!("/Services/{svc}/Documents"),
            &[("UniqueName", "prefs"), ("Data", r#"{"a": 1, "s": "\u00e9&="}"#), ("Ttl", "3600")],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.etag(), "0");
    let doc = &created.body;
    assert_eq!((&doc["revision"], &doc["data"]), (&json!("0"), &json!({"a": 1, "s": "é&="})));
    assert_eq!(doc["created_by"], "system");
    let sid = doc["sid"].as_str().unwrap();
    assert!(sid.starts_with("ET") && sid.len() == 34, "{sid}");
    let url = format!("{}/Services/{svc}/Documents/{sid}", s.twilio(""));
    assert_eq!(doc["url"], url);
    assert_eq!(doc["links"]["permissions"], format!("{url}/Permissions"));
    assert!(doc["date_expires"].as_str().unwrap().ends_with('Z'));
    let mut keys: Vec<&str> = doc.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "account_sid",
            "created_by",
            "data",
            "date_created",
            "date_expires",
            "date_updated",
            "links",
            "revision",
            "service_sid",
            "sid",
            "unique_name",
            "url"
        ]
    );

    // A stale If-Match is 412 54103 and changes nothing; a bare and a quoted revision both work.
    let path = format!("/Services/{svc}/Documents/prefs");
    let post_if = |if_match: &str, data: &str| {
        s.twilio_request(Method::POST, &path)
            .header("If-Match", if_match.to_owned())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[("Data", data)]))
    };
    let stale = send(post_if("5", r#"{"a": 2}"#)).await;
    twilio_error(&stale, 412, 54103);
    let ok = send(post_if("0", r#"{"a": 2}"#)).await;
    assert_eq!((ok.status, ok.etag().as_str()), (200, "1"), "{}", ok.text);
    let quoted = send(post_if("\"1\"", r#"{"a": 3}"#)).await;
    assert_eq!((quoted.status, &quoted.body["revision"]), (200, &json!("2")), "{}", quoted.text);
    twilio_error(&send(post_if("soon", r#"{"a": 4}"#)).await, 400, 54003);
    let fetched = s.twilio_get(&path).await;
    assert_eq!((fetched.etag().as_str(), &fetched.body["data"]), ("2", &json!({"a": 3})));

    let deleted = send(s.twilio_request(Method::DELETE, &path)).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    twilio_error(&s.twilio_get(&path).await, 404, 20404);
}

#[tokio::test]
async fn bad_input_gets_twilio_codes_and_changes_nothing() {
    let Some(s) = TestServer::start().await else { return };
    let svc = twilio_service(&s, "tw-bad").await;
    let docs = format!("/Services/{svc}/Documents");
    let big = format!(r#"{{"x": "{}"}}"#, "a".repeat(17 * 1024));
    let r = s.twilio_post(&docs, &[("UniqueName", "big"), ("Data", &big)]).await;
    twilio_error(&r, 413, 54006);
    assert!(r.body["message"].as_str().unwrap().contains("Data"), "{}", r.text);
    twilio_error(&s.twilio_post(&docs, &[("UniqueName", "t"), ("Ttl", "31536001")]).await, 400, 54011);
    twilio_error(&s.twilio_post(&docs, &[("UniqueName", "t"), ("Ttl", "soon")]).await, 400, 54011);
    twilio_error(&s.twilio_post(&docs, &[("UniqueName", "t"), ("Data", "{nope")]).await, 400, 20001);
    assert_eq!(s.twilio_post(&docs, &[("UniqueName", "once")]).await.status, 201);
    twilio_error(&s.twilio_post(&docs, &[("UniqueName", "once")]).await, 409, 54301);
    let listed = s.twilio_get(&docs).await.ok();
    let names: Vec<&Value> = listed["documents"].as_array().unwrap().iter().map(|d| &d["unique_name"]).collect();
    assert_eq!(names, [&json!("once")], "only the valid create left a document");

    let map = s.twilio_post(&format!("/Services/{svc}/Maps"), &[("UniqueName", "m")]).await.ok();
    let items = format!("/Services/{svc}/Maps/{}/Items", map["sid"].as_str().unwrap());
    assert_eq!(s.twilio_post(&items, &[("Key", "k"), ("Data", "{}")]).await.status, 201);
    twilio_error(&s.twilio_post(&items, &[("Key", "k"), ("Data", "{}")]).await, 409, 54208);
    twilio_error(&s.twilio_post(&items, &[("Key", "k2")]).await, 400, 20001);
    twilio_error(&s.twilio_get(&format!("/Services/{svc}/Maps/nope")).await, 404, 20404);
    twilio_error(&s.twilio_get("/Services/IS00000000000000000000000000000000").await, 404, 20404);

    let wrong = send(s.http.get(s.twilio("/Services")).basic_auth(&s.account_sid, Some("wrong"))).await;
    twilio_error(&wrong, 401, 20003);
    twilio_error(&send(s.http.get(s.twilio("/Services"))).await, 401, 20003);
    twilio_error(&s.twilio_get("/Services?PageSize=101").await, 400, 20001);
}

#[tokio::test]
async fn paging_follows_absolute_urls_both_ways_on_the_forwarded_origin() {
    let Some(s) = TestServer::start().await else { return };
    let svc = twilio_service(&s, "tw-pages").await;
    let list = s.twilio_post(&format!("/Services/{svc}/Lists"), &[("UniqueName", "l")]).await.ok();
    let items = format!("/Services/{svc}/Lists/{}/Items", list["sid"].as_str().unwrap());
    for n in 0..7 {
        let r = s.twilio_post(&items, &[("Data", &format!(r#"{{"n": {n}}}"#))]).await;
        assert_eq!((r.status, &r.body["index"]), (201, &json!(n)), "{}", r.text);
    }
    // Pages as twilio-python walks them: GET next_page_url verbatim until it is null.
    let mut url = Some(s.twilio(&format!("{items}?Order=desc&From=5&PageSize=2")));
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    while let Some(u) = url.take() {
        let page = send(s.http.get(&u).basic_auth(&s.account_sid, Some(&s.auth_token))).await.ok();
        assert_eq!(page["meta"]["key"], "items");
        assert_eq!(page["meta"]["page"], json!(pages.len()));
        seen.extend(page["items"].as_array().unwrap().iter().map(|i| i["index"].as_u64().unwrap()));
        url = page["meta"]["next_page_url"].as_str().map(str::to_owned);
        pages.push(page);
        assert!(pages.len() <= 4, "paging must end");
    }
    assert_eq!(seen, [5, 4, 3, 2, 1, 0]);
    // previous_page_url from the last page leads back to the page before it.
    let prev = pages[2]["meta"]["previous_page_url"].as_str().unwrap();
    let back = send(s.http.get(prev).basic_auth(&s.account_sid, Some(&s.auth_token))).await.ok();
    let indexes: Vec<u64> = back["items"].as_array().unwrap().iter().map(|i| i["index"].as_u64().unwrap()).collect();
    assert_eq!(indexes, [3, 2]);
    assert_eq!(pages[0]["meta"]["previous_page_url"], Value::Null);

    // Exclusive bounds start after From.
    let after = s.twilio_get(&format!("{items}?From=5&Bounds=exclusive")).await.ok();
    assert_eq!(after["items"].as_array().unwrap().len(), 1);
    assert_eq!(after["items"][0]["index"], 6);

    // Behind a proxy, every URL is on the origin the client used.
    let proxied = send(
        s.twilio_request(Method::GET, &format!("{items}?PageSize=3"))
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "sync.example.com"),
    )
    .await
    .ok();
    for u in [&proxied["meta"]["next_page_url"], &proxied["meta"]["url"], &proxied["items"][0]["url"]] {
        assert!(u.as_str().unwrap().starts_with("https://sync.example.com/twilio/sync/v1/"), "{u}");
    }
}

#[tokio::test]
async fn the_twilio_face_and_the_native_api_are_one_history() {
    let Some(s) = TestServer::start().await else { return };
    let svc = twilio_service(&s, "tw-one").await;
    let token = s.mint_token("tw-one", "alice", 600).await;
    let mut ws = s.ws(&token).await;
    assert_eq!(s.post("/services/tw-one/maps", json!({"unique_name": "scores"})).await.status, 201);
    let (_, _) = ws.subscribe("map", "scores", None).await;

    // A Twilio REST write reaches the native WebSocket subscriber.
    let r = s
        .twilio_post(&format!("/Services/{svc}/Maps/scores/Items"), &[("Key", "bob/1"), ("Data", r#"{"points": 3}"#)])
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let event = ws.next_event().await;
    assert_eq!(
        (&event["type"], &event["item_key"], &event["data"]),
        (&json!("map_item_added"), &json!("bob/1"), &json!({"points": 3})),
        "{event}"
    );

    // A native write is what the Twilio face reads, revision and all, with the key in the path.
    let native = s.put("/services/tw-one/maps/scores/items/bob%2F1", json!({"data": {"points": 4}})).await.ok();
    let fetched = s.twilio_get(&format!("/Services/{svc}/Maps/scores/Items/bob/1")).await.ok();
    assert_eq!(
        (&fetched["data"], &fetched["revision"]),
        (&json!({"points": 4}), &json!(native["revision"].to_string()))
    );
    let event = ws.next_event().await;
    assert_eq!(
        (&event["type"], &event["previous_data"]),
        (&json!("map_item_updated"), &json!({"points": 3})),
        "{event}"
    );

    // And a write on the native WebSocket is the next revision the Twilio face sees.
    let reply = ws
        .request(json!({"type": "set_item", "kind": "map", "object": "scores", "key": "bob/1", "data": {"points": 5}}))
        .await;
    assert_eq!(reply["status"], 200, "{reply}");
    let after = s.twilio_get(&format!("/Services/{svc}/Maps/scores/Items/bob/1")).await.ok();
    assert_eq!(after["data"], json!({"points": 5}));
    let changes = s.all_changes("tw-one").await;
    assert!(changes.len() >= 4, "map created, item added and updated twice: {changes:?}");
}

#[tokio::test]
async fn the_default_service_exists_for_every_account() {
    let Some(s) = TestServer::start().await else { return };
    let doc = s.twilio_post("/Services/default/Documents", &[("UniqueName", "d")]).await;
    assert_eq!(doc.status, 201, "{}", doc.text);
    let svc = s.twilio_get("/Services/default").await.ok();
    assert_eq!((&svc["unique_name"], &svc["sid"]), (&json!("default"), &doc.body["service_sid"]));
    // Named again, it is the same service.
    let again = s.twilio_get("/Services/default/Documents/d").await.ok();
    assert_eq!(again["service_sid"], svc["sid"]);
    let all = s.twilio_get("/Services").await.ok();
    assert_eq!(all["services"].as_array().unwrap().len(), 1);
}
