//! Credentials on the native REST API: the root account, API keys and the tokens they sign,
//! identity tokens confined to their service, and expiry.

use super::common::{Resp, TestServer, send};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn requests_without_or_with_wrong_credentials_get_401() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let check = |r: Resp, code: u64| {
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(r.code(), code, "{}", r.text);
        let challenge = r.headers.get("www-authenticate").expect("a challenge").to_str().unwrap().to_owned();
        assert!(challenge.contains("Basic") && challenge.contains("Bearer"), "{challenge}");
    };
    check(send(s.http.get(s.api("/services"))).await, 40100);
    check(send(s.http.get(s.api("/services")).basic_auth(&s.account_sid, Some("wrong-token"))).await, 40101);
    let other_account = format!("AC{}", "0".repeat(32));
    check(send(s.http.get(s.api("/services")).basic_auth(other_account, Some(&s.auth_token))).await, 40101);
    check(send(s.http.get(s.api("/services")).header("authorization", "Digest abc")).await, 40100);
    check(send(s.http.get(s.api("/services")).header("authorization", "Basic !!!")).await, 40100);
    check(send(s.http.get(s.api("/services/app/documents")).bearer_auth("not.a.jwt")).await, 40102);

    // Writes without credentials change nothing.
    let r = send(s.http.post(s.api("/services")).json(&json!({ "unique_name": "sneaky" }))).await;
    assert_eq!(r.status, 401);
    s.get("/services/sneaky").await.refused(404, 40401, "sneaky");
}

#[tokio::test]
async fn api_keys_authenticate_until_deleted_and_take_their_tokens_with_them() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let created = s.post("/keys", json!({ "friendly_name": "backend" })).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let key_sid = created.body["sid"].as_str().unwrap().to_owned();
    let secret = created.body["secret"].as_str().expect("the secret is shown on creation").to_owned();
    assert!(key_sid.starts_with("SK") && secret.len() >= 32, "{}", created.text);

    // The secret is never shown again.
    let fetched = s.get(&format!("/keys/{key_sid}")).await.ok();
    assert_eq!(fetched["friendly_name"], "backend");
    assert!(fetched.get("secret").is_none(), "{fetched}");
    let listed = s.get("/keys").await.ok();
    let listed = listed.as_array().unwrap();
    assert!(listed.iter().any(|k| k["sid"] == key_sid));
    assert!(listed.iter().all(|k| k.get("secret").is_none()), "{listed:?}");

    // SK:secret is a Basic credential with admin reach; a wrong secret is not.
    let as_key = |path: &str, method: Method| s.http.request(method, s.api(path)).basic_auth(&key_sid, Some(&secret));
    let r = send(as_key("/services", Method::POST).json(&json!({ "unique_name": "by-key" }))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(send(as_key("/services/app", Method::GET)).await.status, 200);
    let wrong = send(s.http.get(s.api("/services")).basic_auth(&key_sid, Some("0".repeat(32)))).await;
    wrong.refused(401, 40101, "");

    // A token the key signs works…
    let minted = send(
        as_key("/tokens", Method::POST).json(&json!({ "service": "app", "identity": "alice", "api_key": key_sid })),
    )
    .await;
    assert_eq!(minted.status, 201, "{}", minted.text);
    let token = minted.body["token"].as_str().unwrap().to_owned();
    assert_eq!(send(s.bearer(&token, Method::GET, "/services/app")).await.status, 200);

    // …until the key is deleted: then neither the key nor its tokens authenticate.
    assert_eq!(s.delete(&format!("/keys/{key_sid}")).await.status, 204);
    send(as_key("/services", Method::GET)).await.refused(401, 40101, "");
    let refused = send(s.bearer(&token, Method::GET, "/services/app")).await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    assert_eq!(refused.code(), 40102);
    let ws_status = s.ws_refused_status(&s.ws_url(&token)).await;
    assert_eq!(ws_status, 401, "its tokens cannot connect either");
    s.get(&format!("/keys/{key_sid}")).await.refused(404, 40404, &key_sid);
    assert!(!s.get("/keys").await.ok().as_array().unwrap().iter().any(|k| k["sid"] == key_sid));
}

#[tokio::test]
async fn identity_tokens_reach_their_service_only_and_no_admin_routes() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    s.service("other").await;
    s.post("/services/other/documents", json!({ "unique_name": "theirs" })).await.ok();
    let token = s.mint_token("app", "alice", 600).await;
    let as_alice = |method: Method, path: &str| s.bearer(&token, method, path);

    // Read and write inside its service.
    let created = send(as_alice(Method::POST, "/services/app/documents").json(&json!({ "unique_name": "mine" }))).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["created_by"], "alice");
    let updated =
        send(as_alice(Method::PUT, "/services/app/documents/mine").json(&json!({ "data": { "x": 1 } }))).await;
    assert_eq!((updated.status, &updated.body["revision"]), (200, &json!(1)), "{}", updated.text);
    let read = send(as_alice(Method::GET, "/services/app/documents/mine")).await.ok();
    assert_eq!(read["data"], json!({ "x": 1 }));
    let changes = s.all_changes("app").await;
    assert!(changes.iter().all(|e| e["identity"] == "alice"), "writes are attributed: {changes:?}");

    // Another service: 403, by name and by SID, for reads and writes.
    for (method, path) in [
        (Method::GET, "/services/other/documents/theirs"),
        (Method::GET, "/services/other"),
        (Method::PUT, "/services/other/documents/theirs"),
    ] {
        let r = send(as_alice(method.clone(), path).json(&json!({ "data": { "x": 2 } }))).await;
        r.refused(403, 40300, "");
    }
    assert_eq!(s.get("/services/other/documents/theirs").await.ok()["revision"], 0, "the refused write did nothing");

    // Admin routes: 403.
    for (method, path, body) in [
        (Method::GET, "/keys", None),
        (Method::POST, "/keys", Some(json!({}))),
        (Method::GET, "/services", None),
        (Method::POST, "/services", Some(json!({ "unique_name": "mine" }))),
        (Method::POST, "/services/app", Some(json!({ "friendly_name": "x" }))),
        (Method::DELETE, "/services/app", None),
        (Method::POST, "/tokens", Some(json!({ "service": "app", "identity": "mallory" }))),
    ] {
        let mut req = as_alice(method.clone(), path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = send(req).await;
        assert_eq!((r.status, r.code()), (403, 40300), "{method} {path}: {}", r.text);
    }
    s.get("/services/mine").await.refused(404, 40401, "mine");
    assert_eq!(s.get("/services/app").await.ok()["revision"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_gets_401_40103() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let token = s.mint_token("app", "alice", 1).await;
    let wait = async {
        loop {
            let r = send(s.bearer(&token, Method::GET, "/services/app")).await;
            if r.status == 401 {
                return r;
            }
            assert_eq!(r.status, 200, "{}", r.text);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let refused = tokio::time::timeout(Duration::from_secs(5), wait).await.expect("the token expires within 5 s");
    refused.refused(401, 40103, "expired");
}
