//! Proxy sessions over real HTTP: pool numbers given to participants so no pair is active in two
//! sessions, Twilio's conflict rules and codes, status transitions, expiry, interactions.

use super::common::{Resp, TestServer, form_body, send};
use ferrosync_core::timestamp::Timestamp;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const MOUNT: &str = "/twilio/proxy/v1";

async fn proxy(s: &TestServer, method: Method, path: &str, form: &[(&str, &str)]) -> Resp {
    let req = s
        .http
        .request(method, format!("{}{MOUNT}{path}", s.server.url()))
        .basic_auth(&s.account_sid, Some(&s.auth_token))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(form));
    send(req).await
}

fn refused(r: &Resp, status: u16, code: u64, names: &str) {
    assert_eq!((r.status, &r.body["code"]), (status, &json!(code)), "{}", r.text);
    assert!(r.body["message"].as_str().is_some_and(|m| m.contains(names)), "the message names {names}: {}", r.text);
}

fn sid(v: &Value) -> String {
    v["sid"].as_str().unwrap_or_else(|| panic!("no sid in {v}")).to_owned()
}

/// A Proxy service with a pool of `numbers`.
async fn service(s: &TestServer, name: &str, numbers: &[&str]) -> String {
    let svc = sid(&proxy(s, Method::POST, "/Services", &[("UniqueName", name)]).await.ok());
    for n in numbers {
        proxy(s, Method::POST, &format!("/Services/{svc}/PhoneNumbers"), &[("PhoneNumber", n)]).await.ok();
    }
    svc
}

async fn in_use(s: &TestServer, svc: &str) -> Vec<(String, u64)> {
    let listed = proxy(s, Method::GET, &format!("/Services/{svc}/PhoneNumbers"), &[]).await.ok();
    let rows = listed["phone_numbers"].as_array().cloned().unwrap_or_default();
    rows.iter()
        .map(|n| (n["phone_number"].as_str().unwrap_or_default().to_owned(), n["in_use"].as_u64().unwrap_or(99)))
        .collect()
}

async fn session(s: &TestServer, svc: &str, form: &[(&str, &str)]) -> Resp {
    proxy(s, Method::POST, &format!("/Services/{svc}/Sessions"), form).await
}

async fn participant(s: &TestServer, svc: &str, kc: &str, form: &[(&str, &str)]) -> Resp {
    proxy(s, Method::POST, &format!("/Services/{svc}/Sessions/{kc}/Participants"), form).await
}

#[tokio::test]
async fn participants_get_pool_numbers_and_closing_frees_them() {
    let Some(s) = TestServer::start().await else { return };
    let svc = service(&s, "rides", &["+15550001001", "+15550001002"]).await;
    proxy(
        &s,
        Method::POST,
        &format!("/Services/{svc}/PhoneNumbers"),
        &[("PhoneNumber", "+15550001003"), ("IsReserved", "true")],
    )
    .await
    .ok();

    let made = session(
        &s,
        &svc,
        &[
            ("UniqueName", "Order #1"),
            ("Participants", r#"{"Identifier": "+15551230001", "FriendlyName": "alice"}"#),
            ("Participants", r#"{"identifier": "app:bob"}"#),
        ],
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.text);
    let kc = sid(&made.body);
    assert_eq!(
        (&made.body["status"], &made.body["mode"], &made.body["ttl"]),
        (&json!("open"), &json!("voice-and-message"), &json!(0))
    );
    let listed = proxy(&s, Method::GET, &format!("/Services/{svc}/Sessions/{kc}/Participants"), &[]).await.ok();
    let people = listed["participants"].as_array().cloned().unwrap_or_default();
    assert_eq!(people.len(), 2, "{listed}");
    let proxies: Vec<&str> = people.iter().filter_map(|p| p["proxy_identifier"].as_str()).collect();
    assert!(
        proxies.iter().all(|p| ["+15550001001", "+15550001002"].contains(p)),
        "never the reserved one: {proxies:?}"
    );
    assert_eq!(people[0]["friendly_name"], "alice");
    let used: u64 = in_use(&s, &svc).await.iter().map(|(_, n)| n).sum();
    assert_eq!(used, 2, "each participant's pair counts on its number");

    // Fetch by unique name; a third participant is refused; so is the same identifier twice.
    assert_eq!(
        proxy(&s, Method::GET, &format!("/Services/{svc}/Sessions/Order%20%231"), &[]).await.ok()["sid"],
        kc.as_str()
    );
    refused(&participant(&s, &svc, &kc, &[("Identifier", "+15551230009")]).await, 400, 80609, "at most 2");
    refused(&session(&s, &svc, &[("UniqueName", "Order #1")]).await, 409, 80603, "UniqueName");

    // Closing ends the pairs; the same people can then meet again through the same numbers.
    let closed = proxy(&s, Method::POST, &format!("/Services/{svc}/Sessions/{kc}"), &[("Status", "closed")]).await.ok();
    assert_eq!((&closed["status"], &closed["closed_reason"]), (&json!("closed"), &json!("api")));
    assert!(closed["date_ended"].is_string());
    assert!(in_use(&s, &svc).await.iter().all(|(_, n)| *n == 0));
    refused(&participant(&s, &svc, &kc, &[("Identifier", "+15551230009")]).await, 400, 80607, "closed");
    let again = session(&s, &svc, &[("Participants", r#"{"Identifier": "+15551230001"}"#)]).await;
    assert_eq!(again.status, 201, "{}", again.text);

    // A participant removed stays listed, marked deleted, and frees its pair.
    let kc2 = sid(&again.body);
    let p = proxy(&s, Method::GET, &format!("/Services/{svc}/Sessions/{kc2}/Participants"), &[]).await.ok();
    let kp = sid(&p["participants"][0]);
    let removed = proxy(&s, Method::DELETE, &format!("/Services/{svc}/Sessions/{kc2}/Participants/{kp}"), &[]).await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    assert!(removed.body["date_deleted"].is_string(), "{}", removed.text);
    let still = proxy(&s, Method::GET, &format!("/Services/{svc}/Sessions/{kc2}/Participants/{kp}"), &[]).await.ok();
    assert!(still["date_deleted"].is_string());
    assert!(in_use(&s, &svc).await.iter().all(|(_, n)| *n == 0));
    refused(&participant(&s, &svc, &kc2, &[("Identifier", "+15551230001")]).await, 400, 80103, "+15551230001");

    // Deleting the service takes its sessions, pairs and expiries with it.
    assert_eq!(proxy(&s, Method::DELETE, &format!("/Services/{svc}"), &[]).await.status, 204);
    for map in ["sessions", "pairs", "session_names"] {
        let left = s.get(&format!("/services/proxy/maps/{}/items", urlencoding(&format!("{svc}/{map}")))).await;
        let items = if left.status == 404 { 0 } else { left.ok()["items"].as_array().map_or(99, Vec::len) };
        assert_eq!(items, 0, "{map} is empty");
    }
    let expiries = s.get("/services/proxy/maps/expiries/items").await.ok();
    let keys: Vec<&str> =
        expiries["items"].as_array().into_iter().flatten().filter_map(|i| i["key"].as_str()).collect();
    assert!(!keys.iter().any(|k| k.contains(&svc)), "{keys:?}");
}

#[tokio::test]
async fn conflicts_follow_fail_on_participant_conflict() {
    let Some(s) = TestServer::start().await else { return };
    let svc = service(&s, "one-number", &["+15550002001"]).await;
    let alice = r#"{"Identifier": "+15551240001"}"#;
    let first = sid(&session(&s, &svc, &[("Participants", alice)]).await.ok());

    // The pool has nothing else: refused when asked to, allowed with an alert otherwise.
    let r = session(&s, &svc, &[("Participants", alice), ("FailOnParticipantConflict", "true")]).await;
    refused(&r, 400, 80604, "+15551240001");
    let sessions = proxy(&s, Method::GET, &format!("/Services/{svc}/Sessions"), &[]).await.ok();
    assert_eq!(sessions["sessions"].as_array().map(Vec::len), Some(1), "the refused create left nothing");
    let second = sid(&session(&s, &svc, &[("Participants", alice)]).await.ok());
    assert_eq!(in_use(&s, &svc).await, vec![("+15550002001".to_owned(), 2)]);
    let list = urlencoding(&format!("{svc}/alerts"));
    let alerts = s.get(&format!("/services/proxy/lists/{list}/items")).await.ok();
    let alert = &alerts["items"][0]["data"];
    assert_eq!((&alert["code"], &alert["session_sid"]), (&json!(80802), &json!(second)), "{alerts}");

    // An identifier asked for by name is never shared.
    let kc = sid(&session(&s, &svc, &[]).await.ok());
    let r = participant(&s, &svc, &kc, &[("Identifier", "+15551240001"), ("ProxyIdentifier", "+15550002001")]).await;
    refused(&r, 400, 80604, "+15551240001");
    refused(
        &participant(&s, &svc, &kc, &[("Identifier", "+15551240002"), ("ProxyIdentifier", "+15559999999")]).await,
        400,
        80605,
        "+15559999999",
    );

    // Re-opening a session whose pair went to another session meanwhile: refused when asked to.
    proxy(&s, Method::POST, &format!("/Services/{svc}/Sessions/{first}"), &[("Status", "closed")]).await.ok();
    let r = proxy(
        &s,
        Method::POST,
        &format!("/Services/{svc}/Sessions/{first}"),
        &[("Status", "in-progress"), ("FailOnParticipantConflict", "true")],
    )
    .await;
    refused(&r, 400, 80604, "+15551240001");
    let reopened =
        proxy(&s, Method::POST, &format!("/Services/{svc}/Sessions/{first}"), &[("Status", "in-progress")]).await.ok();
    assert_eq!(reopened["status"], "in-progress");
    let alerts = s.get(&format!("/services/proxy/lists/{list}/items")).await.ok();
    let codes: Vec<&Value> = alerts["items"].as_array().into_iter().flatten().map(|i| &i["data"]["code"]).collect();
    assert_eq!(codes, vec![&json!(80802), &json!(80801)]);

    // Many requests at once for one free pair, refusing conflicts: exactly one gets it.
    let svc2 = service(&s, "race", &["+15550003001"]).await;
    let mut sessions = Vec::new();
    for _ in 0..6 {
        sessions.push(sid(&session(&s, &svc2, &[]).await.ok()));
    }
    let tries = sessions
        .iter()
        .map(|kc| participant(&s, &svc2, kc, &[("Identifier", "+15551250001"), ("FailOnParticipantConflict", "true")]));
    let results = futures_util::future::join_all(tries).await;
    let won = results.iter().filter(|r| r.status == 201).count();
    assert_eq!(won, 1, "{:?}", results.iter().map(|r| &r.text).collect::<Vec<_>>());
    for r in results.iter().filter(|r| r.status != 201) {
        assert!([(400, json!(80604)), (409, json!(80623))].contains(&(r.status, r.body["code"].clone())), "{}", r.text);
    }
    assert_eq!(in_use(&s, &svc2).await, vec![("+15550003001".to_owned(), 1)]);
}

fn urlencoding(s: &str) -> String {
    s.replace('/', "%2F")
}

#[tokio::test]
async fn status_changes_follow_twilios_rules() {
    let Some(s) = TestServer::start().await else { return };
    let svc = service(&s, "statuses", &["+15550004001"]).await;
    let kc = sid(&session(&s, &svc, &[("Participants", r#"{"Identifier": "+15551260001"}"#)]).await.ok());
    let path = format!("/Services/{svc}/Sessions/{kc}");
    for to in ["in-progress", "open", "failed", "unknown"] {
        refused(&proxy(&s, Method::POST, &path, &[("Status", to)]).await, 400, 80608, to);
    }
    refused(&proxy(&s, Method::POST, &path, &[("Status", "paused")]).await, 400, 20001, "Status");

    // The first interaction puts it in progress.
    let kp = sid(&proxy(&s, Method::GET, &format!("{path}/Participants"), &[]).await.ok()["participants"][0]);
    let sent = proxy(
        &s,
        Method::POST,
        &format!("{path}/Participants/{kp}/MessageInteractions"),
        &[("Body", "your ride is here")],
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    assert_eq!(
        serde_json::from_str::<Value>(sent.body["data"].as_str().unwrap_or("")).ok(),
        Some(json!({"body": "your ride is here"}))
    );
    assert_eq!((&sent.body["participant_sid"], &sent.body["outbound_participant_sid"]), (&json!(kp), &json!(kp)));
    assert!(sent.body["inbound_participant_sid"].is_null());
    let now = proxy(&s, Method::GET, &path, &[]).await.ok();
    assert_eq!(now["status"], "in-progress");
    assert!(now["date_last_interaction"].is_string());
    refused(&proxy(&s, Method::POST, &path, &[("Status", "open")]).await, 400, 80608, "open");

    // Closed: only re-opening is allowed.
    proxy(&s, Method::POST, &path, &[("Status", "closed")]).await.ok();
    refused(&proxy(&s, Method::POST, &path, &[("Status", "closed")]).await, 400, 80608, "closed");
    refused(&proxy(&s, Method::POST, &path, &[("Ttl", "60")]).await, 400, 80607, "closed");
    refused(
        &proxy(&s, Method::POST, &format!("{path}/Participants/{kp}/MessageInteractions"), &[("Body", "hi")]).await,
        400,
        80607,
        "closed",
    );
    let back = proxy(&s, Method::POST, &path, &[("Status", "in-progress"), ("Ttl", "60")]).await.ok();
    assert_eq!(
        (&back["status"], &back["ttl"], &back["closed_reason"]),
        (&json!("in-progress"), &json!(60), &Value::Null)
    );

    // Interactions: listed, fetched, deleted.
    let listed = proxy(&s, Method::GET, &format!("{path}/Interactions"), &[]).await.ok();
    assert_eq!(listed["meta"]["key"], "interactions");
    let ki = sid(&listed["interactions"][0]);
    assert_eq!(
        sid(&proxy(&s, Method::GET, &format!("{path}/Participants/{kp}/MessageInteractions/{ki}"), &[]).await.ok()),
        ki
    );
    assert_eq!(proxy(&s, Method::DELETE, &format!("{path}/Interactions/{ki}"), &[]).await.status, 204);
    refused(&proxy(&s, Method::GET, &format!("{path}/Interactions/{ki}"), &[]).await, 404, 20404, "Interactions");

    // A voice-only session carries no messages.
    let voice =
        session(&s, &svc, &[("Mode", "voice-only"), ("Participants", r#"{"Identifier": "+15551260002"}"#)]).await;
    let voice = sid(&voice.ok());
    let kp = sid(
        &proxy(&s, Method::GET, &format!("/Services/{svc}/Sessions/{voice}/Participants"), &[]).await.ok()["participants"]
            [0],
    );
    let r = proxy(
        &s,
        Method::POST,
        &format!("/Services/{svc}/Sessions/{voice}/Participants/{kp}/MessageInteractions"),
        &[("Body", "hi")],
    )
    .await;
    refused(&r, 400, 20001, "voice-only");
}

/// Polls a session until `done`, for at most 15 s.
async fn wait_for(s: &TestServer, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let now = proxy(s, Method::GET, path, &[]).await.ok();
        if done(&now) || tokio::time::Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sessions_expire_by_ttl_and_by_date_expiry_and_free_their_numbers() {
    let Some(s) = TestServer::start().await else { return };
    let svc = service(&s, "expiring", &["+15550005001", "+15550005002"]).await;
    let by_ttl =
        sid(&session(&s, &svc, &[("Ttl", "1"), ("Participants", r#"{"Identifier": "+15551270001"}"#)]).await.ok());
    let at = Timestamp(Timestamp::now().millis() + 2000).to_iso_seconds();
    let by_date = sid(&session(
        &s,
        &svc,
        &[("Ttl", "3600"), ("DateExpiry", &at), ("Participants", r#"{"Identifier": "+15551270002"}"#)],
    )
    .await
    .ok());
    let closed = |v: &Value| v["status"] == "closed";
    let one = wait_for(&s, &format!("/Services/{svc}/Sessions/{by_ttl}"), closed).await;
    assert_eq!((&one["status"], &one["closed_reason"]), (&json!("closed"), &json!("ttl")), "{one}");
    let two = wait_for(&s, &format!("/Services/{svc}/Sessions/{by_date}"), closed).await;
    assert_eq!((&two["status"], &two["closed_reason"]), (&json!("closed"), &json!("date-expiry")), "{two}");
    assert_eq!(two["date_expiry"], at.as_str());
    assert!(in_use(&s, &svc).await.iter().all(|(_, n)| *n == 0), "expiry frees the numbers");
}

/// The events written so far on the Proxy face's expiry index.
async fn expiry_index_events(s: &TestServer) -> usize {
    use ferrosync_core::model::{ObjectKind, ObjectRef};
    let proxy = s.engine.service(&ferrosync_core::auth::Principal::Root, "proxy").await.expect("the Proxy records");
    let store = s.engine.store();
    let map = store.object(&proxy.sid, ObjectKind::Map, &ObjectRef::UniqueName("expiries".into())).await;
    let map = map.expect("a store read").expect("the expiry index");
    store.events(&proxy.sid, 0, Some(&map.sid), 10_000).await.expect("a store read").len()
}

#[tokio::test]
async fn interactions_keep_a_session_open_past_its_ttl_without_refiling_its_expiry_each_time() {
    let Some(s) = TestServer::start().await else { return };
    let svc = service(&s, "busy", &["+15550006001", "+15550006002"]).await;
    let message = |kc: String, kp: String| {
        let path = format!("/Services/{svc}/Sessions/{kc}/Participants/{kp}/MessageInteractions");
        let s = &s;
        async move { proxy(s, Method::POST, &path, &[("Body", "still here")]).await.ok() }
    };
    let open = |ttl: &'static str, identifier: &'static str| {
        let s = &s;
        let svc = &svc;
        async move {
            let kc = sid(&session(s, svc, &[("Ttl", ttl)]).await.ok());
            let kp = sid(&participant(s, svc, &kc, &[("Identifier", identifier)]).await.ok());
            (kc, kp)
        }
    };

    // A long Ttl: each interaction moves the deadline on and writes nothing to the index.
    let (long, long_p) = open("3600", "+15551280001").await;
    let before = expiry_index_events(&s).await;
    for _ in 0..5 {
        message(long.clone(), long_p.clone()).await;
    }
    assert_eq!(expiry_index_events(&s).await, before, "interactions leave the expiry entry where it is");

    // A short one, kept busy past it: the sweep finds the entry early, files it again at the
    // deadline, and the session closes only a Ttl after its last interaction.
    let (short, short_p) = open("3", "+15551280002").await;
    let path = format!("/Services/{svc}/Sessions/{short}");
    for _ in 0..12 {
        message(short.clone(), short_p.clone()).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let now = proxy(&s, Method::GET, &path, &[]).await.ok();
    assert_eq!(now["status"], "in-progress", "busy for longer than its Ttl, still open: {now}");
    let closed = wait_for(&s, &path, |v| v["status"] == "closed").await;
    assert_eq!(closed["closed_reason"], "ttl", "{closed}");
    let at = |field: &str| Timestamp::parse_rfc3339(closed[field].as_str().unwrap_or_default()).map(|t| t.millis());
    let (last, ended) = (at("date_last_interaction"), at("date_ended"));
    assert!(
        matches!((last, ended), (Some(last), Some(ended)) if ended - last >= 2_000),
        "closed a Ttl after its last interaction, not before: {closed}"
    );
    assert!(in_use(&s, &svc).await.iter().any(|(_, n)| *n == 1), "the long session still holds its number");

    // A deadline brought forward moves the entry with it.
    let long_path = format!("/Services/{svc}/Sessions/{long}");
    let shortened = proxy(&s, Method::POST, &long_path, &[("Ttl", "1")]).await.ok();
    assert_eq!(shortened["status"], "in-progress");
    let long_closed = wait_for(&s, &long_path, |v| v["status"] == "closed").await;
    assert_eq!(long_closed["closed_reason"], "ttl", "{long_closed}");
}
