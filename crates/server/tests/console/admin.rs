//! `/api/v1/admin/…`: what the Cognito and Matrix faces keep, read back by operators. The
//! data is made through the faces themselves (the AWS SDKs over SigV4, the Matrix client API),
//! then listed with root credentials and an API key; access tokens and no credentials are
//! refused.

use crate::common::{Resp, Server, Settings, send};
use aws_sdk_cognitoidentity as ci;
use aws_sdk_cognitosync as cs;
use ferrosync_server::api::matrix::RegistrationPolicy;
use reqwest::Method;
use serde_json::{Value, json};

type TestServer = Server<false>;

fn region() -> ci::config::Region {
    ci::config::Region::new("us-east-1")
}

fn identity_client(s: &TestServer) -> ci::Client {
    let credentials = ci::config::Credentials::new(&s.account_sid, &s.auth_token, None, None, "test");
    let config = ci::Config::builder()
        .behavior_version(ci::config::BehaviorVersion::latest())
        .region(region())
        .endpoint_url(s.server.url())
        .retry_config(ci::config::retry::RetryConfig::disabled())
        .credentials_provider(credentials)
        .build();
    ci::Client::from_conf(config)
}

fn sync_client(s: &TestServer) -> cs::Client {
    let credentials = cs::config::Credentials::new(&s.account_sid, &s.auth_token, None, None, "test");
    let config = cs::Config::builder()
        .behavior_version(cs::config::BehaviorVersion::latest())
        .region(cs::config::Region::new("us-east-1"))
        .endpoint_url(s.server.url())
        .retry_config(cs::config::retry::RetryConfig::disabled())
        .credentials_provider(credentials)
        .build();
    cs::Client::from_conf(config)
}

/// ListRecords for a session token, then UpdateRecords with `patches` (key, value or remove).
async fn update_records(c: &cs::Client, pool: &str, identity: &str, dataset: &str, patches: &[(&str, Option<&str>)]) {
    let listed = c.list_records().identity_pool_id(pool).identity_id(identity).dataset_name(dataset).send().await;
    let listed = listed.expect("ListRecords");
    let sync_count = listed.dataset_sync_count().unwrap_or(0);
    let patches = patches
        .iter()
        .map(|(key, value)| {
            let op = if value.is_some() { cs::types::Operation::Replace } else { cs::types::Operation::Remove };
            cs::types::RecordPatch::builder()
                .op(op)
                .key(*key)
                .set_value(value.map(str::to_owned))
                .sync_count(sync_count)
                .build()
                .expect("a patch")
        })
        .collect();
    c.update_records()
        .identity_pool_id(pool)
        .identity_id(identity)
        .dataset_name(dataset)
        .device_id("console-test")
        .sync_session_token(listed.sync_session_token().expect("a session token"))
        .set_record_patches(Some(patches))
        .send()
        .await
        .expect("UpdateRecords");
}

async fn admin(s: &TestServer, path: &str) -> Value {
    s.get(&format!("/admin{path}")).await.ok()
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
async fn cognito_pools_identities_datasets_and_records_as_the_faces_made_them() {
    let s = TestServer::start().await.unwrap();
    let ci = identity_client(&s);
    let pool = ci
        .create_identity_pool()
        .identity_pool_name("console pool")
        .allow_unauthenticated_identities(true)
        .developer_provider_name("login.example.app")
        .supported_login_providers("graph.facebook.com", "1234567890")
        .send()
        .await
        .expect("CreateIdentityPool")
        .identity_pool_id()
        .to_owned();
    let other_pool = ci
        .create_identity_pool()
        .identity_pool_name("another")
        .allow_unauthenticated_identities(true)
        .send()
        .await
        .expect("CreateIdentityPool")
        .identity_pool_id()
        .to_owned();
    let mut identities = Vec::new();
    for _ in 0..3 {
        let id = ci.get_id().identity_pool_id(&pool).send().await.expect("GetId");
        identities.push(id.identity_id().expect("an identity id").to_owned());
    }
    identities.sort();
    let cs = sync_client(&s);
    let who = &identities[0];
    update_records(&cs, &pool, who, "settings", &[("theme", Some("dark")), ("lang", Some("fr"))]).await;
    update_records(&cs, &pool, who, "settings", &[("lang", None)]).await;
    update_records(&cs, &pool, who, "scores", &[("level", Some("7"))]).await;

    // Pools, by id.
    let pools = admin(&s, "/cognito/pools").await;
    let mut ids: Vec<&str> = pools["items"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    let mut expected = vec![pool.as_str(), other_pool.as_str()];
    expected.sort();
    ids.sort();
    assert_eq!(ids, expected);
    let first = admin(&s, &format!("/cognito/pools/{}", enc(&pool))).await;
    assert_eq!(first["name"], "console pool");
    assert_eq!(first["allow_unauthenticated_identities"], true);
    assert_eq!(first["developer_provider_name"], "login.example.app");
    assert_eq!(first["supported_login_providers"], json!({ "graph.facebook.com": "1234567890" }));
    assert!(first["service_sid"].as_str().unwrap().starts_with("IS"));

    // Identities, a page at a time.
    let page = admin(&s, &format!("/cognito/pools/{}/identities?page_size=2", enc(&pool))).await;
    let listed: Vec<&str> = page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [identities[0].as_str(), identities[1].as_str()]);
    let token = page["meta"]["next_page_token"].as_str().expect("a next page");
    assert!(page["meta"]["next_page_url"].as_str().unwrap().contains("/api/v1/admin/cognito/pools/"));
    let rest = admin(&s, &format!("/cognito/pools/{}/identities?page_size=2&page_token={token}", enc(&pool))).await;
    assert_eq!(rest["items"][0]["id"], identities[2].as_str());
    assert!(rest["meta"]["next_page_token"].is_null());
    assert_eq!(rest["items"][0]["disabled"], false);
    assert_eq!(rest["items"][0]["logins"], json!([]));

    // Datasets, as DescribeDataset tells them.
    let datasets = admin(&s, &format!("/cognito/pools/{}/identities/{}/datasets", enc(&pool), enc(who))).await;
    let datasets = datasets["items"].as_array().unwrap();
    assert_eq!(datasets.iter().map(|d| d["name"].as_str().unwrap()).collect::<Vec<_>>(), ["scores", "settings"]);
    let described = cs
        .describe_dataset()
        .identity_pool_id(&pool)
        .identity_id(who)
        .dataset_name("settings")
        .send()
        .await
        .expect("DescribeDataset");
    let described = described.dataset().expect("the dataset");
    let settings = &datasets[1];
    assert_eq!(settings["num_records"].as_i64(), described.num_records());
    assert_eq!(settings["data_storage"].as_i64(), described.data_storage());
    assert_eq!(settings["sync_count"], 2);
    assert_eq!(settings["last_modified_by"], described.last_modified_by().unwrap_or_default());

    // Records with the tombstone, as ListRecords gives them.
    let records =
        admin(&s, &format!("/cognito/pools/{}/identities/{}/datasets/settings/records", enc(&pool), enc(who))).await;
    let records = records["items"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!((records[0]["key"].as_str(), records[0]["value"].as_str()), (Some("lang"), None));
    assert_eq!((records[0]["deleted"].as_bool(), records[0]["sync_count"].as_u64()), (Some(true), Some(2)));
    assert_eq!((records[1]["key"].as_str(), records[1]["value"].as_str()), (Some("theme"), Some("dark")));
    assert_eq!(records[1]["sync_count"], 1);
    let listed = cs
        .list_records()
        .identity_pool_id(&pool)
        .identity_id(who)
        .dataset_name("settings")
        .send()
        .await
        .expect("ListRecords");
    let theirs: Vec<(String, Option<String>)> =
        listed.records().iter().map(|r| (r.key().unwrap().to_owned(), r.value().map(str::to_owned))).collect();
    let ours: Vec<(String, Option<String>)> = records
        .iter()
        .map(|r| (r["key"].as_str().unwrap().to_owned(), r["value"].as_str().map(str::to_owned)))
        .collect();
    assert_eq!(ours, theirs);

    // What is not there is NotFound, in the native format.
    s.get("/admin/cognito/pools/us-east-1%3A00000000-0000-0000-0000-000000000000").await.refused(404, 40406, "");
    let elsewhere = format!("/admin/cognito/pools/{}/identities/{}/datasets", enc(&other_pool), enc(who));
    assert_eq!(s.get(&elsewhere).await.status, 404);
    let missing = format!("/admin/cognito/pools/{}/identities/{}/datasets/nope/records", enc(&pool), enc(who));
    assert_eq!(s.get(&missing).await.status, 404);
    s.get("/admin/cognito/pools?page_size=61").await.refused(400, 40001, "page_size");
}

fn matrix_settings() -> Settings {
    let mut settings = Settings::default();
    settings.matrix.server_name = "example.org".into();
    settings.matrix.registration = RegistrationPolicy::Open;
    settings
}

async fn matrix_post(s: &TestServer, path: &str, token: Option<&str>, body: Value) -> Value {
    let mut req = s.http.post(s.root(&format!("/_matrix/client/v3{path}"))).json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    send(req).await.ok()
}

#[tokio::test]
async fn matrix_users_and_rooms_as_the_client_api_made_them() {
    let s = TestServer::with_settings(matrix_settings()).await.unwrap();
    let mut tokens = Vec::new();
    for user in ["zed", "amy", "kim"] {
        let body = json!({ "username": user, "password": "pw", "auth": { "type": "m.login.dummy" } });
        let registered = matrix_post(&s, "/register", None, body).await;
        tokens.push(registered["access_token"].as_str().unwrap().to_owned());
    }
    let amy = &tokens[1];
    let lobby = json!({ "name": "Lobby", "topic": "say hi", "preset": "public_chat", "visibility": "public",
        "room_alias_name": "lobby" });
    let lobby = matrix_post(&s, "/createRoom", Some(amy), lobby).await["room_id"].as_str().unwrap().to_owned();
    let quiet = json!({ "name": "Quiet", "preset": "private_chat", "invite": ["@kim:example.org"] });
    let quiet = matrix_post(&s, "/createRoom", Some(&tokens[0]), quiet).await["room_id"].as_str().unwrap().to_owned();
    matrix_post(&s, &format!("/join/{}", enc(&lobby)), Some(&tokens[2]), json!({})).await;

    // Users by id, paged.
    let first = admin(&s, "/matrix/users?page_size=2").await;
    let ids: Vec<&str> = first["items"].as_array().unwrap().iter().map(|u| u["user_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["@amy:example.org", "@kim:example.org"]);
    assert_eq!(first["items"][0]["display_name"], "amy");
    assert_eq!(first["items"][0]["has_password"], true);
    assert_eq!(first["items"][0]["deactivated"], false);
    let token = first["meta"]["next_page_token"].as_str().expect("a next page");
    let rest = admin(&s, &format!("/matrix/users?page_size=2&page_token={token}")).await;
    assert_eq!(rest["items"][0]["user_id"], "@zed:example.org");
    assert!(rest["meta"]["next_page_token"].is_null());

    // Rooms as the directory describes them, published or not.
    let rooms = admin(&s, "/matrix/rooms").await;
    let rooms = rooms["items"].as_array().unwrap();
    let find = |id: &str| rooms.iter().find(|r| r["room_id"] == id).unwrap_or_else(|| panic!("{id} in {rooms:?}"));
    assert_eq!(rooms.len(), 2);
    let l = find(&lobby);
    assert_eq!((l["name"].as_str(), l["topic"].as_str()), (Some("Lobby"), Some("say hi")));
    assert_eq!(l["canonical_alias"], "#lobby:example.org");
    assert_eq!((l["num_joined_members"].as_u64(), l["join_rule"].as_str()), (Some(2), Some("public")));
    assert_eq!(l["published"], true);
    let q = find(&quiet);
    assert_eq!((q["name"].as_str(), q["num_joined_members"].as_u64()), (Some("Quiet"), Some(1)));
    assert_eq!((q["join_rule"].as_str(), q["published"].as_bool()), (Some("invite"), Some(false)));
    // The directory agrees on the published one.
    let public = send(s.http.get(s.root("/_matrix/client/v3/publicRooms"))).await.ok();
    assert_eq!(public["chunk"][0]["room_id"], lobby.as_str());
    assert_eq!(public["chunk"][0]["num_joined_members"], l["num_joined_members"]);

    // One room per page: the token continues after it.
    let one = admin(&s, "/matrix/rooms?page_size=1").await;
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    let token = one["meta"]["next_page_token"].as_str().expect("a next page");
    let two = admin(&s, &format!("/matrix/rooms?page_size=1&page_token={token}")).await;
    assert_eq!(two["items"].as_array().unwrap().len(), 1);
    assert_ne!(one["items"][0]["room_id"], two["items"][0]["room_id"]);
    assert!(two["meta"]["next_page_token"].is_null());
}

#[tokio::test]
async fn only_server_credentials_reach_the_admin_endpoints() {
    let s = TestServer::start().await.unwrap();
    s.service("chat").await;
    let token = s.mint_token("chat", "alice", 600).await;
    let key = s.post("/keys", json!({ "friendly_name": "ops" })).await.ok();
    let (key_sid, key_secret) = (key["sid"].as_str().unwrap(), key["secret"].as_str().unwrap());
    for path in ["/admin/cognito/pools", "/admin/matrix/users", "/admin/matrix/rooms"] {
        assert_eq!(s.get(path).await.status, 200, "root: {path}");
        let with_key = send(s.http.get(s.api(path)).basic_auth(key_sid, Some(key_secret))).await;
        assert_eq!(with_key.status, 200, "an API key: {path} {}", with_key.text);

        let refused: Resp = send(s.bearer(&token, Method::GET, path)).await;
        refused.refused(403, 40300, "server credentials");
        let anonymous = send(s.http.get(s.api(path))).await;
        assert_eq!(anonymous.status, 401, "{path}");
        assert!(anonymous.headers.contains_key("www-authenticate"));
    }
    let wrong = send(s.http.get(s.api("/admin/matrix/users")).basic_auth(&s.account_sid, Some("wrong"))).await;
    assert_eq!(wrong.status, 401);
    // Read-only.
    let post = send(s.admin(Method::POST, "/admin/matrix/users").json(&json!({}))).await;
    assert_eq!(post.status, 405);
}
