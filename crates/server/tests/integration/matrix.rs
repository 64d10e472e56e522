//! The Matrix face's discovery and accounts over HTTP, as the spec words them: registration
//! under each policy with its user-interactive stage, password login in both identifier forms,
//! whoami by header and by query, logout of one device and of all, and errors as
//! `{errcode, error}`.

use super::common::{Settings, TestServer};
use ferrosync_server::api::matrix::RegistrationPolicy;
use serde_json::{Value, json};

pub(super) const CLIENT: &str = "/_matrix/client/v3";

pub(super) fn with_registration(policy: RegistrationPolicy, token: Option<&str>) -> Settings {
    let mut settings = Settings::default();
    settings.matrix.server_name = "example.org".into();
    settings.matrix.registration = policy;
    settings.matrix.registration_token = token.map(str::to_owned);
    settings
}

/// One call: status and JSON body.
pub(super) async fn call(
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = s.http.request(method, s.root(path)).header("content-type", "application/json");
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.body(body.to_string());
    }
    let resp = req.send().await.expect("the server answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}")))
}

pub(super) async fn post(s: &TestServer, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    call(s, reqwest::Method::POST, &format!("{CLIENT}{path}"), token, Some(body)).await
}

pub(super) async fn get(s: &TestServer, path: &str, token: Option<&str>) -> (u16, Value) {
    call(s, reqwest::Method::GET, &format!("{CLIENT}{path}"), token, None).await
}

pub(super) fn errcode(answer: &(u16, Value)) -> (u16, &str) {
    assert!(answer.1["error"].is_string(), "every error has a message: {}", answer.1);
    (answer.0, answer.1["errcode"].as_str().unwrap_or_default())
}

pub(super) async fn register(s: &TestServer, user: &str, password: &str) -> Value {
    let body = json!({ "username": user, "password": password, "auth": { "type": "m.login.dummy" } });
    let (status, body) = post(s, "/register", None, body).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn discovery_names_the_server_its_versions_and_its_login_flows() {
    let Some(s) = TestServer::start().await else { return };
    let (status, known) = call(&s, reqwest::Method::GET, "/.well-known/matrix/client", None, None).await;
    assert_eq!((status, known["m.homeserver"]["base_url"].as_str()), (200, Some(s.server.url().as_str())));
    let (_, versions) = call(&s, reqwest::Method::GET, "/_matrix/client/versions", None, None).await;
    assert!(versions["versions"].as_array().expect("versions").contains(&json!("v1.11")));
    let (_, flows) = get(&s, "/login", None).await;
    assert_eq!(flows, json!({ "flows": [{ "type": "m.login.password" }] }));
    let unknown = get(&s, "/no/such/endpoint", None).await;
    assert_eq!(errcode(&unknown), (404, "M_UNRECOGNIZED"));
    let unknown = call(&s, reqwest::Method::GET, "/_matrix/federation/v1/version", None, None).await;
    assert_eq!(errcode(&unknown), (404, "M_UNRECOGNIZED"));
}

#[tokio::test]
async fn registration_is_closed_unless_opened() {
    let Some(s) = TestServer::start().await else { return };
    let body = json!({ "username": "alice", "password": "pw", "auth": { "type": "m.login.dummy" } });
    assert_eq!(errcode(&post(&s, "/register", None, body).await), (403, "M_FORBIDDEN"));
}

#[tokio::test]
async fn open_registration_takes_the_dummy_stage() {
    let Some(s) = TestServer::with_settings(with_registration(RegistrationPolicy::Open, None)).await else { return };

    // Without auth (an empty body reads as `{}`), the stage to complete is named.
    let (status, uia) = call(&s, reqwest::Method::POST, &format!("{CLIENT}/register"), None, None).await;
    assert_eq!(status, 401, "{uia}");
    assert_eq!(uia["flows"], json!([{ "stages": ["m.login.dummy"] }]));
    assert!(uia["session"].is_string() && uia["params"].is_object());

    let alice = register(&s, "alice", "correct horse").await;
    assert_eq!(alice["user_id"], "@alice:example.org");
    assert!(alice["access_token"].is_string() && alice["device_id"].is_string());
    let token = alice["access_token"].as_str().unwrap_or_default();
    let (status, me) = get(&s, "/account/whoami", Some(token)).await;
    assert_eq!(
        (status, me["user_id"].as_str(), me["device_id"].clone()),
        (200, Some("@alice:example.org"), alice["device_id"].clone())
    );

    let again = json!({ "username": "alice", "password": "x", "auth": { "type": "m.login.dummy" } });
    assert_eq!(errcode(&post(&s, "/register", None, again).await), (400, "M_USER_IN_USE"));
    let bad = json!({ "username": "Not Valid", "auth": { "type": "m.login.dummy" } });
    let refused = post(&s, "/register", None, bad).await;
    assert_eq!(errcode(&refused), (400, "M_INVALID_USERNAME"));
    assert!(refused.1["error"].as_str().unwrap_or_default().contains("a-z"), "names the rule: {}", refused.1);
    let guest = call(&s, reqwest::Method::POST, &format!("{CLIENT}/register?kind=guest"), None, Some(json!({}))).await;
    assert_eq!(errcode(&guest), (403, "M_GUEST_ACCESS_FORBIDDEN"));
    assert_eq!(errcode(&get(&s, "/register/available?username=alice", None).await), (400, "M_USER_IN_USE"));
    assert_eq!(get(&s, "/register/available?username=bob", None).await, (200, json!({ "available": true })));

    // inhibit_login: the account, no session.
    let quiet =
        json!({ "username": "carol", "password": "pw", "inhibit_login": true, "auth": { "type": "m.login.dummy" } });
    let (status, body) = post(&s, "/register", None, quiet).await;
    assert_eq!(status, 200);
    assert!(body.get("access_token").is_none() && body["user_id"] == "@carol:example.org", "{body}");

    let not_json = call(&s, reqwest::Method::POST, &format!("{CLIENT}/login"), None, None).await;
    assert_eq!(errcode(&not_json), (400, "M_BAD_JSON"), "an empty login body lacks its type");
    let resp = s.http.post(s.root(&format!("{CLIENT}/login"))).body("{not json").send().await.expect("answer");
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.expect("json")["errcode"], "M_NOT_JSON");
}

#[tokio::test]
async fn token_registration_wants_the_configured_token() {
    let settings = with_registration(RegistrationPolicy::Token, Some("let-me-in"));
    let Some(s) = TestServer::with_settings(settings).await else { return };
    let dummy = json!({ "username": "dave", "password": "pw", "auth": { "type": "m.login.dummy" } });
    let (status, uia) = post(&s, "/register", None, dummy).await;
    assert_eq!((status, uia["flows"].clone()), (401, json!([{ "stages": ["m.login.registration_token"] }])));
    let wrong = json!({ "username": "dave", "password": "pw",
        "auth": { "type": "m.login.registration_token", "token": "guess", "session": "s1" } });
    let (status, refused) = post(&s, "/register", None, wrong).await;
    assert_eq!(
        (status, refused["errcode"].as_str(), refused["session"].as_str()),
        (401, Some("M_FORBIDDEN"), Some("s1"))
    );
    let right = json!({ "username": "dave", "password": "pw",
        "auth": { "type": "m.login.registration_token", "token": "let-me-in", "session": "s1" } });
    let (status, body) = post(&s, "/register", None, right).await;
    assert_eq!((status, body["user_id"].as_str()), (200, Some("@dave:example.org")));
}

#[tokio::test]
async fn login_whoami_and_logout() {
    let Some(s) = TestServer::with_settings(with_registration(RegistrationPolicy::Open, None)).await else { return };
    let first = register(&s, "erin", "s3cret").await;
    let first_token = first["access_token"].as_str().unwrap_or_default().to_owned();

    let by_identifier = json!({ "type": "m.login.password", "identifier": { "type": "m.id.user", "user": "erin" },
        "password": "s3cret", "initial_device_display_name": "laptop" });
    let (status, laptop) = post(&s, "/login", None, by_identifier).await;
    assert_eq!((status, laptop["user_id"].as_str()), (200, Some("@erin:example.org")), "{laptop}");
    assert_ne!(laptop["device_id"], first["device_id"], "a new device");
    let laptop_token = laptop["access_token"].as_str().unwrap_or_default().to_owned();
    // The legacy `user` member, a full user id, and the r0 prefix.
    let legacy = json!({ "type": "m.login.password", "user": "@erin:example.org", "password": "s3cret" });
    let (status, _) = call(&s, reqwest::Method::POST, "/_matrix/client/r0/login", None, Some(legacy)).await;
    assert_eq!(status, 200);

    let wrong = json!({ "type": "m.login.password", "identifier": { "type": "m.id.user", "user": "erin" }, "password": "nope" });
    assert_eq!(errcode(&post(&s, "/login", None, wrong).await), (403, "M_FORBIDDEN"));
    let sso = json!({ "type": "m.login.sso" });
    assert_eq!(errcode(&post(&s, "/login", None, sso).await), (400, "M_UNKNOWN"));
    let bad_type =
        json!({ "type": "m.login.password", "identifier": { "type": "m.id.user", "user": 7 }, "password": "x" });
    assert_eq!(errcode(&post(&s, "/login", None, bad_type).await), (400, "M_BAD_JSON"));

    // The token by header or by the deprecated query parameter; a missing or unknown one.
    let by_query =
        call(&s, reqwest::Method::GET, &format!("{CLIENT}/account/whoami?access_token={laptop_token}"), None, None)
            .await;
    assert_eq!((by_query.0, by_query.1["device_id"].clone()), (200, laptop["device_id"].clone()));
    assert_eq!(errcode(&get(&s, "/account/whoami", None).await), (401, "M_MISSING_TOKEN"));
    let unknown = get(&s, "/account/whoami", Some("mat_not-a-token")).await;
    assert_eq!((errcode(&unknown), unknown.1["soft_logout"].clone()), ((401, "M_UNKNOWN_TOKEN"), json!(false)));
    let (status, caps) = get(&s, "/capabilities", Some(&laptop_token)).await;
    assert_eq!((status, caps["capabilities"]["m.change_password"]["enabled"].clone()), (200, json!(false)));

    // Logout ends one device; logout/all the rest.
    assert_eq!(post(&s, "/logout", Some(&laptop_token), json!({})).await, (200, json!({})));
    assert_eq!(errcode(&get(&s, "/account/whoami", Some(&laptop_token)).await), (401, "M_UNKNOWN_TOKEN"));
    assert_eq!(get(&s, "/account/whoami", Some(&first_token)).await.0, 200, "other devices stay logged in");
    assert_eq!(post(&s, "/logout/all", Some(&first_token), json!({})).await, (200, json!({})));
    assert_eq!(errcode(&get(&s, "/account/whoami", Some(&first_token)).await), (401, "M_UNKNOWN_TOKEN"));
}

pub(super) async fn put(s: &TestServer, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    call(s, reqwest::Method::PUT, &format!("{CLIENT}{path}"), token, Some(body)).await
}

#[tokio::test]
async fn filters_are_checked_stored_and_the_owners_alone() {
    let Some(s) = TestServer::with_settings(with_registration(RegistrationPolicy::Open, None)).await else { return };
    let frank = register(&s, "frank", "pw").await;
    let token = frank["access_token"].as_str().unwrap_or_default();
    let filter = json!({ "room": { "timeline": { "limit": 5, "types": ["m.room.message"] }, "state": { "lazy_load_members": true } } });
    let (status, made) = post(&s, "/user/@frank:example.org/filter", Some(token), filter.clone()).await;
    assert_eq!(status, 200, "{made}");
    let id = made["filter_id"].as_str().expect("an id").to_owned();
    assert!(!id.starts_with('{'), "ids never look like inline JSON");
    assert_eq!(get(&s, &format!("/user/@frank:example.org/filter/{id}"), Some(token)).await, (200, filter));
    assert_eq!(errcode(&get(&s, "/user/@frank:example.org/filter/nope", Some(token)).await), (404, "M_NOT_FOUND"));

    let bad = json!({ "room": { "timeline": { "limit": "ten" } } });
    let refused = post(&s, "/user/@frank:example.org/filter", Some(token), bad).await;
    assert_eq!(errcode(&refused), (400, "M_BAD_JSON"));
    assert!(refused.1["error"].as_str().unwrap_or_default().contains("filter"), "{}", refused.1);
    let gina = register(&s, "gina", "pw").await;
    let theirs = post(&s, "/user/@frank:example.org/filter", gina["access_token"].as_str(), json!({})).await;
    assert_eq!(errcode(&theirs), (403, "M_FORBIDDEN"));
}

#[tokio::test]
async fn profiles_are_public_and_set_by_their_owner() {
    let Some(s) = TestServer::with_settings(with_registration(RegistrationPolicy::Open, None)).await else { return };
    let hana = register(&s, "hana", "pw").await;
    let token = hana["access_token"].as_str().unwrap_or_default();
    assert_eq!(get(&s, "/profile/@hana:example.org", None).await, (200, json!({ "displayname": "hana" })));
    assert_eq!(
        put(&s, "/profile/@hana:example.org/displayname", Some(token), json!({ "displayname": "Hana" })).await,
        (200, json!({}))
    );
    let avatar = json!({ "avatar_url": "mxc://example.org/abc" });
    assert_eq!(put(&s, "/profile/@hana:example.org/avatar_url", Some(token), avatar).await.0, 200);
    assert_eq!(
        get(&s, "/profile/@hana:example.org", None).await,
        (200, json!({ "displayname": "Hana", "avatar_url": "mxc://example.org/abc" }))
    );
    assert_eq!(get(&s, "/profile/@hana:example.org/displayname", None).await, (200, json!({ "displayname": "Hana" })));
    let not_mxc =
        put(&s, "/profile/@hana:example.org/avatar_url", Some(token), json!({ "avatar_url": "http://x" })).await;
    assert_eq!(errcode(&not_mxc), (400, "M_INVALID_PARAM"));
    let long =
        put(&s, "/profile/@hana:example.org/displayname", Some(token), json!({ "displayname": "x".repeat(300) })).await;
    assert_eq!(errcode(&long), (400, "M_INVALID_PARAM"));
    assert_eq!(errcode(&get(&s, "/profile/@nobody:example.org", None).await), (404, "M_NOT_FOUND"));
    let ivan = register(&s, "ivan", "pw").await;
    let theirs =
        put(&s, "/profile/@hana:example.org/displayname", ivan["access_token"].as_str(), json!({ "displayname": "x" }))
            .await;
    assert_eq!(errcode(&theirs), (403, "M_FORBIDDEN"));
}

#[tokio::test]
async fn devices_are_listed_renamed_and_deleted_with_the_password() {
    let Some(s) = TestServer::with_settings(with_registration(RegistrationPolicy::Open, None)).await else { return };
    let jo = register(&s, "jo", "secret").await;
    let token = jo["access_token"].as_str().unwrap_or_default().to_owned();
    let login = json!({ "type": "m.login.password", "identifier": { "type": "m.id.user", "user": "jo" },
        "password": "secret", "device_id": "TABLET", "initial_device_display_name": "Tablet" });
    let (_, tablet) = post(&s, "/login", None, login).await;
    let tablet_token = tablet["access_token"].as_str().unwrap_or_default().to_owned();

    let (status, list) = get(&s, "/devices", Some(&token)).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> =
        list["devices"].as_array().expect("devices").iter().filter_map(|d| d["device_id"].as_str()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"TABLET"));
    assert_eq!(
        get(&s, "/devices/TABLET", Some(&token)).await,
        (200, json!({ "device_id": "TABLET", "display_name": "Tablet", "last_seen_ip": null, "last_seen_ts": null }))
    );
    assert_eq!(
        put(&s, "/devices/TABLET", Some(&token), json!({ "display_name": "Old tablet" })).await,
        (200, json!({}))
    );
    assert_eq!(get(&s, "/devices/TABLET", Some(&token)).await.1["display_name"], "Old tablet");
    assert_eq!(
        errcode(&put(&s, "/devices/NOPE", Some(&token), json!({ "display_name": "x" })).await),
        (404, "M_NOT_FOUND")
    );

    // Deleting asks for the password (user-interactive auth), then logs the device out.
    let delete = |body: Value| {
        let (s, token) = (&s, token.clone());
        async move { call(s, reqwest::Method::DELETE, &format!("{CLIENT}/devices/TABLET"), Some(&token), Some(body)).await }
    };
    let (status, uia) = delete(json!({})).await;
    assert_eq!((status, uia["flows"].clone()), (401, json!([{ "stages": ["m.login.password"] }])));
    let session = uia["session"].as_str().unwrap_or_default().to_owned();
    let wrong = json!({ "auth": { "type": "m.login.password", "password": "guess", "session": session } });
    assert_eq!(delete(wrong).await.0, 401);
    assert_eq!(get(&s, "/account/whoami", Some(&tablet_token)).await.0, 200, "not deleted by a wrong password");
    let right = json!({ "auth": { "type": "m.login.password", "password": "secret", "session": session,
        "identifier": { "type": "m.id.user", "user": "jo" } } });
    assert_eq!(delete(right).await, (200, json!({})));
    assert_eq!(errcode(&get(&s, "/account/whoami", Some(&tablet_token)).await), (401, "M_UNKNOWN_TOKEN"));

    let all = json!({ "devices": [jo["device_id"]], "auth": { "type": "m.login.password", "password": "secret" } });
    assert_eq!(post(&s, "/delete_devices", Some(&token), all).await, (200, json!({})));
    assert_eq!(errcode(&get(&s, "/account/whoami", Some(&token)).await), (401, "M_UNKNOWN_TOKEN"));
}

#[tokio::test]
async fn media_is_uploaded_within_the_limit_and_served_safely() {
    let mut settings = with_registration(RegistrationPolicy::Open, None);
    settings.matrix.max_upload_bytes = 1024;
    let Some(s) = TestServer::with_settings(settings).await else { return };
    let kai = register(&s, "kai", "pw").await;
    let token = kai["access_token"].as_str().unwrap_or_default().to_owned();
    let upload = |body: Vec<u8>, content_type: &'static str, query: &'static str| {
        let (s, token) = (&s, token.clone());
        async move {
            let resp = s
                .http
                .post(s.root(&format!("/_matrix/media/v3/upload{query}")))
                .bearer_auth(token)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .expect("answer");
            (resp.status().as_u16(), resp.json::<Value>().await.expect("json"))
        }
    };
    let (status, made) = upload(b"\x89PNG fake image".to_vec(), "image/png", "?filename=cat%20pic.png").await;
    assert_eq!(status, 200, "{made}");
    let uri = made["content_uri"].as_str().expect("an mxc uri");
    let id = uri.strip_prefix("mxc://example.org/").expect("on this server");

    let got = s
        .http
        .get(s.root(&format!("/_matrix/client/v1/media/download/example.org/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answer");
    assert_eq!(got.status(), 200);
    let header = |name: &str| got.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(header("content-type"), "image/png");
    assert_eq!(header("content-disposition"), "inline; filename*=utf-8''cat%20pic%2Epng");
    assert!(header("content-security-policy").starts_with("sandbox"));
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(got.bytes().await.expect("bytes").as_ref(), b"\x89PNG fake image");

    // HTML is never shown inline; the legacy path needs no token; a file name may be asked for.
    let (_, page) = upload(b"<script>alert(1)</script>".to_vec(), "text/html", "").await;
    let page_id = page["content_uri"].as_str().unwrap_or_default().rsplit('/').next().unwrap_or_default().to_owned();
    let legacy =
        s.http.get(s.root(&format!("/_matrix/media/v3/download/example.org/{page_id}/page.html"))).send().await;
    let legacy = legacy.expect("answer");
    assert_eq!(legacy.status(), 200);
    let disposition = legacy.headers().get("content-disposition").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert_eq!(disposition, "attachment; filename*=utf-8''page%2Ehtml");

    let (status, big) = upload(vec![0; 2048], "application/octet-stream", "").await;
    assert_eq!((status, big["errcode"].as_str()), (413, Some("M_TOO_LARGE")), "{big}");
    let config = call(&s, reqwest::Method::GET, "/_matrix/client/v1/media/config", Some(&token), None).await;
    assert_eq!(config, (200, json!({ "m.upload.size": 1024 })));
    let missing =
        call(&s, reqwest::Method::GET, "/_matrix/client/v1/media/download/example.org/nope", Some(&token), None).await;
    assert_eq!(errcode(&missing), (404, "M_NOT_FOUND"));
    let remote = call(
        &s,
        reqwest::Method::GET,
        &format!("/_matrix/client/v1/media/download/elsewhere.org/{id}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(errcode(&remote), (404, "M_NOT_FOUND"));
    let unauthenticated =
        call(&s, reqwest::Method::GET, &format!("/_matrix/client/v1/media/download/example.org/{id}"), None, None)
            .await;
    assert_eq!(errcode(&unauthenticated), (401, "M_MISSING_TOKEN"));
    let thumb = call(
        &s,
        reqwest::Method::GET,
        &format!("/_matrix/client/v1/media/thumbnail/example.org/{page_id}?width=32&height=32"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(errcode(&thumb), (404, "M_NOT_FOUND"), "no thumbnail of a page");
    let image_thumb = s
        .http
        .get(s.root(&format!("/_matrix/media/v3/thumbnail/example.org/{id}?width=32&height=32&method=scale")))
        .send()
        .await
        .expect("answer");
    assert_eq!(image_thumb.status(), 200, "an image is its own thumbnail");
    assert_eq!(image_thumb.bytes().await.expect("bytes").as_ref(), b"\x89PNG fake image");
}

#[tokio::test]
async fn account_data_and_presence_are_kept_in_the_matrix_service() {
    let Some(s) = TestServer::with_settings(with_registration(RegistrationPolicy::Open, None)).await else { return };
    let lea = register(&s, "lea", "pw").await;
    let token = lea["access_token"].as_str().unwrap_or_default().to_owned();
    let direct = json!({ "@max:example.org": ["!dm:example.org"] });
    assert_eq!(
        put(&s, "/user/@lea:example.org/account_data/m.direct", Some(&token), direct.clone()).await,
        (200, json!({}))
    );
    assert_eq!(get(&s, "/user/@lea:example.org/account_data/m.direct", Some(&token)).await, (200, direct.clone()));
    let tags = json!({ "tags": { "m.favourite": { "order": 0.5 } } });
    let room_path = "/user/@lea:example.org/rooms/!r:example.org/account_data/m.tag";
    assert_eq!(put(&s, room_path, Some(&token), tags.clone()).await.0, 200);
    assert_eq!(get(&s, room_path, Some(&token)).await, (200, tags));
    assert_eq!(
        errcode(&get(&s, "/user/@lea:example.org/account_data/none.here", Some(&token)).await),
        (404, "M_NOT_FOUND")
    );
    let owned = put(&s, "/user/@lea:example.org/account_data/m.push_rules", Some(&token), json!({})).await;
    assert_eq!(errcode(&owned), (405, "M_BAD_JSON"));
    let not_object = put(&s, "/user/@lea:example.org/account_data/x.y", Some(&token), json!([1])).await;
    assert_eq!(errcode(&not_object), (400, "M_BAD_JSON"));
    let huge = json!({ "blob": "x".repeat(20_000) });
    assert_eq!(
        errcode(&put(&s, "/user/@lea:example.org/account_data/x.big", Some(&token), huge).await),
        (413, "M_TOO_LARGE")
    );
    let other = register(&s, "max", "pw").await;
    let theirs = get(&s, "/user/@lea:example.org/account_data/m.direct", other["access_token"].as_str()).await;
    assert_eq!(errcode(&theirs), (403, "M_FORBIDDEN"));

    // The native API sees the same data: the Matrix face is one more reader of the service.
    let items = s
        .engine
        .items(
            &ferrosync_core::auth::Principal::Root,
            "matrix",
            ferrosync_core::model::ObjectKind::Map,
            "@lea:example.org/account_data",
            ferrosync_core::page::PageRequest {
                order: ferrosync_core::page::Order::Asc,
                from: None,
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("the Map is there");
    assert_eq!(items.items.len(), 1);
    assert_eq!(*items.items[0].data, direct);

    // Presence: offline until set, then as set, readable by others.
    let (status, before) = get(&s, "/presence/@lea:example.org/status", Some(&token)).await;
    assert_eq!((status, before["presence"].as_str()), (200, Some("offline")));
    let set = json!({ "presence": "unavailable", "status_msg": "in a meeting" });
    assert_eq!(put(&s, "/presence/@lea:example.org/status", Some(&token), set).await, (200, json!({})));
    let (status, after) = get(&s, "/presence/@lea:example.org/status", other["access_token"].as_str()).await;
    assert_eq!(status, 200);
    assert_eq!((after["presence"].as_str(), after["status_msg"].as_str()), (Some("unavailable"), Some("in a meeting")));
    assert!(after["last_active_ago"].as_i64().is_some_and(|ago| ago >= 0));
    let bad = put(&s, "/presence/@lea:example.org/status", Some(&token), json!({ "presence": "busy" })).await;
    assert_eq!(errcode(&bad), (400, "M_INVALID_PARAM"));
    let theirs =
        put(&s, "/presence/@lea:example.org/status", other["access_token"].as_str(), json!({ "presence": "online" }))
            .await;
    assert_eq!(errcode(&theirs), (403, "M_FORBIDDEN"));
    assert_eq!(errcode(&get(&s, "/presence/@ghost:example.org/status", Some(&token)).await), (404, "M_NOT_FOUND"));
}

#[tokio::test]
async fn rooms_are_created_joined_written_and_read_as_the_spec_says() {
    let Some(s) = TestServer::with_settings(with_registration(RegistrationPolicy::Open, None)).await else { return };
    let (mia, noa, oli) =
        (register(&s, "mia", "pw").await, register(&s, "noa", "pw").await, register(&s, "oli", "pw").await);
    let (mia_t, noa_t, oli_t) = (
        mia["access_token"].as_str().unwrap_or_default().to_owned(),
        noa["access_token"].as_str().unwrap_or_default().to_owned(),
        oli["access_token"].as_str().unwrap_or_default().to_owned(),
    );
    let create = json!({ "name": "Garden", "topic": "plants", "preset": "private_chat", "invite": ["@noa:example.org"],
        "initial_state": [{ "type": "m.room.history_visibility", "state_key": "", "content": { "history_visibility": "joined" } }] });
    let (status, made) = post(&s, "/createRoom", Some(&mia_t), create).await;
    assert_eq!(status, 200, "{made}");
    let room = made["room_id"].as_str().expect("a room id").to_owned();
    assert!(room.starts_with('!') && room.ends_with(":example.org"));

    assert_eq!(
        get(&s, &format!("/rooms/{room}/state/m.room.name"), Some(&mia_t)).await,
        (200, json!({ "name": "Garden" }))
    );
    assert_eq!(
        get(&s, &format!("/rooms/{room}/state/m.room.topic/"), Some(&mia_t)).await.1,
        json!({ "topic": "plants" })
    );
    let visibility = get(&s, &format!("/rooms/{room}/state/m.room.history_visibility"), Some(&mia_t)).await;
    assert_eq!(visibility.1, json!({ "history_visibility": "joined" }), "initial_state comes after the preset");
    assert_eq!(
        errcode(&get(&s, &format!("/rooms/{room}/state/m.room.name"), Some(&noa_t)).await),
        (403, "M_FORBIDDEN")
    );

    // Invited noa joins (by /join/{id}, with no body, as matrix-nio sends it); oli may not.
    let (status, joined) = call(&s, reqwest::Method::POST, &format!("{CLIENT}/join/{room}"), Some(&noa_t), None).await;
    assert_eq!((status, joined["room_id"].as_str()), (200, Some(room.as_str())));
    assert_eq!(errcode(&post(&s, &format!("/rooms/{room}/join"), Some(&oli_t), json!({})).await), (403, "M_FORBIDDEN"));
    assert_eq!(get(&s, "/joined_rooms", Some(&noa_t)).await, (200, json!({ "joined_rooms": [room] })));

    // Sending is idempotent per transaction id.
    let message = json!({ "msgtype": "m.text", "body": "hello garden" });
    let (status, first) =
        put(&s, &format!("/rooms/{room}/send/m.room.message/txn1"), Some(&noa_t), message.clone()).await;
    assert_eq!(status, 200, "{first}");
    let (_, again) = put(&s, &format!("/rooms/{room}/send/m.room.message/txn1"), Some(&noa_t), message.clone()).await;
    assert_eq!(first["event_id"], again["event_id"]);
    assert!(first["event_id"].as_str().is_some_and(|id| id.starts_with('$')));
    let outsider = put(&s, &format!("/rooms/{room}/send/m.room.message/txn1"), Some(&oli_t), message).await;
    assert_eq!(errcode(&outsider), (403, "M_FORBIDDEN"));

    // Power: noa (0) cannot set the topic or kick; mia (100) can, and bans.
    let topic = json!({ "topic": "weeds" });
    assert_eq!(
        errcode(&put(&s, &format!("/rooms/{room}/state/m.room.topic"), Some(&noa_t), topic.clone()).await),
        (403, "M_FORBIDDEN")
    );
    let (status, set) = put(&s, &format!("/rooms/{room}/state/m.room.topic"), Some(&mia_t), topic).await;
    assert!(status == 200 && set["event_id"].is_string(), "{set}");
    let kick = json!({ "user_id": "@mia:example.org", "reason": "coup" });
    assert_eq!(errcode(&post(&s, &format!("/rooms/{room}/kick"), Some(&noa_t), kick).await), (403, "M_FORBIDDEN"));

    let (status, members) = get(&s, &format!("/rooms/{room}/joined_members"), Some(&mia_t)).await;
    assert_eq!(status, 200);
    let mut joined: Vec<&str> = members["joined"].as_object().expect("joined").keys().map(String::as_str).collect();
    joined.sort_unstable();
    assert_eq!(joined, vec!["@mia:example.org", "@noa:example.org"]);
    assert_eq!(members["joined"]["@noa:example.org"]["display_name"], "noa");

    let ban = json!({ "user_id": "@noa:example.org", "reason": "spam" });
    assert_eq!(post(&s, &format!("/rooms/{room}/ban"), Some(&mia_t), ban).await, (200, json!({})));
    assert_eq!(errcode(&post(&s, &format!("/join/{room}"), Some(&noa_t), json!({})).await), (403, "M_FORBIDDEN"));
    assert_eq!(
        post(&s, &format!("/rooms/{room}/unban"), Some(&mia_t), json!({ "user_id": "@noa:example.org" })).await.0,
        200
    );
    let still_in = post(&s, &format!("/rooms/{room}/forget"), Some(&mia_t), json!({})).await;
    assert_eq!(errcode(&still_in), (400, "M_UNKNOWN"), "a room is forgotten only once left");
    assert_eq!(post(&s, &format!("/rooms/{room}/leave"), Some(&mia_t), json!({})).await, (200, json!({})));
    assert_eq!(get(&s, "/joined_rooms", Some(&mia_t)).await, (200, json!({ "joined_rooms": [] })));
    assert_eq!(post(&s, &format!("/rooms/{room}/forget"), Some(&mia_t), json!({})).await, (200, json!({})));
    let svc_rooms = s
        .engine
        .item(
            &ferrosync_core::auth::Principal::Root,
            "matrix",
            ferrosync_core::model::ObjectKind::Map,
            "@mia:example.org/rooms",
            &ferrosync_core::model::ItemKey::Key(room.clone()),
        )
        .await;
    assert!(svc_rooms.is_err(), "forgotten: no longer among mia's rooms");
    let unknown = put(&s, "/rooms/!nope:example.org/send/m.room.message/t", Some(&mia_t), json!({ "body": "x" })).await;
    assert_eq!(errcode(&unknown), (404, "M_NOT_FOUND"));
    let bad_version = post(&s, "/createRoom", Some(&mia_t), json!({ "room_version": "1" })).await;
    assert_eq!(errcode(&bad_version), (400, "M_UNSUPPORTED_ROOM_VERSION"));
}

#[tokio::test]
async fn aliases_name_rooms_in_the_directory() {
    let Some(s) = TestServer::with_settings(with_registration(RegistrationPolicy::Open, None)).await else { return };
    let (pia, quin) = (register(&s, "pia", "pw").await, register(&s, "quin", "pw").await);
    let (pia_t, quin_t) = (
        pia["access_token"].as_str().unwrap_or_default().to_owned(),
        quin["access_token"].as_str().unwrap_or_default().to_owned(),
    );
    let (status, made) =
        post(&s, "/createRoom", Some(&pia_t), json!({ "preset": "public_chat", "room_alias_name": "town" })).await;
    assert_eq!(status, 200, "{made}");
    let room = made["room_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        get(&s, "/directory/room/%23town:example.org", None).await,
        (200, json!({ "room_id": room, "servers": ["example.org"] }))
    );
    assert_eq!(
        get(&s, &format!("/rooms/{room}/state/m.room.canonical_alias"), Some(&pia_t)).await.1,
        json!({ "alias": "#town:example.org" })
    );
    let taken = post(&s, "/createRoom", Some(&quin_t), json!({ "room_alias_name": "town" })).await;
    assert_eq!(errcode(&taken), (400, "M_ROOM_IN_USE"));
    assert_eq!(get(&s, "/joined_rooms", Some(&quin_t)).await.1, json!({ "joined_rooms": [] }), "no room was made");

    // Join by alias; a second alias by a member; removal by its creator only (or an admin).
    let (status, joined) =
        call(&s, reqwest::Method::POST, &format!("{CLIENT}/join/%23town:example.org"), Some(&quin_t), None).await;
    assert_eq!((status, joined["room_id"].as_str()), (200, Some(room.as_str())));
    assert_eq!(
        put(&s, "/directory/room/%23square:example.org", Some(&quin_t), json!({ "room_id": room })).await,
        (200, json!({}))
    );
    let again = put(&s, "/directory/room/%23square:example.org", Some(&pia_t), json!({ "room_id": room })).await;
    assert_eq!(errcode(&again), (409, "M_UNKNOWN"));
    let elsewhere = put(&s, "/directory/room/%23x:elsewhere.org", Some(&pia_t), json!({ "room_id": room })).await;
    assert_eq!(errcode(&elsewhere), (400, "M_INVALID_PARAM"));
    assert_eq!(
        errcode(
            &call(
                &s,
                reqwest::Method::DELETE,
                &format!("{CLIENT}/directory/room/%23town:example.org"),
                Some(&quin_t),
                None
            )
            .await
        ),
        (403, "M_FORBIDDEN")
    );
    assert_eq!(
        call(
            &s,
            reqwest::Method::DELETE,
            &format!("{CLIENT}/directory/room/%23square:example.org"),
            Some(&pia_t),
            None
        )
        .await,
        (200, json!({})),
        "the room's admin may"
    );
    assert_eq!(errcode(&get(&s, "/directory/room/%23square:example.org", None).await), (404, "M_NOT_FOUND"));
    assert_eq!(
        errcode(&post(&s, "/join/%23nowhere:example.org", Some(&quin_t), json!({})).await),
        (404, "M_NOT_FOUND")
    );
}
