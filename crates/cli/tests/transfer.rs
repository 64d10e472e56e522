//! `ferrosync export` and `ferrosync import`, run as a user would run them: Sync data, a Cognito
//! pool, Matrix accounts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use support::{DATA_AUTH_TOKEN, DATA_SID, DataServer, KillOnDrop, rest_at, run_bounded};

#[test]
fn export_and_import_keep_sids_revisions_and_grants_and_finish_a_cut_dump() {
    use reqwest::Method;
    use serde_json::{Value, json};
    let (server, runtime) = DataServer::start();
    let call = |method: Method, path: &str, body: Value| {
        let (status, value) = runtime.block_on(rest_at(&server.url, method, &format!("/services/clidata{path}"), body));
        assert!(status < 300, "{path}: {status} {value}");
        value
    };
    let doc = call(Method::POST, "/documents", json!({"unique_name": "settings", "data": {"v": 1}}));
    let doc_sid = doc["sid"].as_str().unwrap().to_owned();
    call(Method::PUT, &format!("/documents/{doc_sid}"), json!({"data": {"v": 2}}));
    call(Method::PUT, &format!("/documents/{doc_sid}/permissions/alice"), json!({"read": true}));
    let list = call(Method::POST, "/lists", json!({"unique_name": "log"}));
    let list_sid = list["sid"].as_str().unwrap().to_owned();
    for n in 0..3 {
        call(Method::POST, &format!("/lists/{list_sid}/items"), json!({"data": {"n": n}}));
    }
    call(Method::DELETE, &format!("/lists/{list_sid}/items/1"), Value::Null);
    let map = call(Method::POST, "/maps", json!({"unique_name": "big"}));
    let map_sid = map["sid"].as_str().unwrap().to_owned();
    // More items than one page of the export holds.
    for n in 0..600 {
        call(Method::POST, &format!("/maps/{map_sid}/items"), json!({"key": format!("k{n:04}"), "data": {"n": n}}));
    }
    call(Method::PUT, &format!("/maps/{map_sid}/items/k0007"), json!({"data": {"n": "seven"}}));
    let before: Value = call(Method::GET, &format!("/maps/{map_sid}/items/k0007"), Value::Null);

    // Exported while the server runs.
    let work = tempfile::tempdir().unwrap();
    let dump = work.path().join("dump.ndjson");
    let out = run_bounded(server.local_command(&["export", "clidata", "--out", dump.to_str().unwrap()]), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&dump).unwrap();
    assert!(text.lines().last().unwrap().contains("\"end\""), "the dump ends with its end line");

    let import = |dir: &std::path::Path, file: &std::path::Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ferrosync"));
        c.args(["import", file.to_str().unwrap(), "--data-dir", dir.to_str().unwrap()])
            .env("FERROSYNC_ACCOUNT_SID", DATA_SID)
            .env("FERROSYNC_AUTH_TOKEN", DATA_AUTH_TOKEN)
            .env_remove("RUST_LOG");
        run_bounded(c, None)
    };
    // A dump cut short is refused after importing what it holds; the whole dump then finishes it.
    let target = tempfile::tempdir().unwrap();
    let cut = work.path().join("cut.ndjson");
    let half: Vec<&str> = text.lines().take(text.lines().count() / 2).collect();
    std::fs::write(&cut, half.join("\n") + "\n").unwrap();
    let partial = import(target.path(), &cut);
    assert!(!partial.status.success());
    assert!(
        String::from_utf8_lossy(&partial.stderr).contains("ends early"),
        "{}",
        String::from_utf8_lossy(&partial.stderr)
    );
    let full = import(target.path(), &dump);
    assert!(full.status.success(), "{}", String::from_utf8_lossy(&full.stderr));
    // Again: nothing new, nothing doubled.
    let again = import(target.path(), &dump);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("0 new objects, 0 new items"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // A server on the imported store holds the same objects, revisions, items and grants.
    let (child, addr) = runtime.block_on(support::serve(target.path(), DATA_SID, DATA_AUTH_TOKEN, &[]));
    let _copy = KillOnDrop(child);
    let copy = format!("http://{addr}");
    let get = |path: &str| {
        let (status, value) =
            runtime.block_on(rest_at(&copy, Method::GET, &format!("/services/clidata{path}"), Value::Null));
        assert_eq!(status, 200, "{path}: {value}");
        value
    };
    let restored = get(&format!("/documents/{doc_sid}"));
    assert_eq!((restored["data"].clone(), restored["revision"].as_u64()), (json!({"v": 2}), Some(1)));
    assert_eq!(get(&format!("/documents/{doc_sid}/permissions/alice"))["read"], true);
    let items = get(&format!("/lists/{list_sid}/items"));
    let indexes: Vec<u64> = items["items"].as_array().unwrap().iter().map(|i| i["index"].as_u64().unwrap()).collect();
    assert_eq!(indexes, [0, 2]);
    // Indexes are never reused: the next push follows the exported list's last.
    let (_, pushed) = runtime.block_on(rest_at(
        &copy,
        Method::POST,
        &format!("/services/clidata/lists/{list_sid}/items"),
        json!({"data": {"n": 3}}),
    ));
    assert_eq!(pushed["index"], 3);
    let seven = get(&format!("/maps/{map_sid}/items/k0007"));
    assert_eq!(
        (seven["data"].clone(), seven["revision"].clone()),
        (before["data"].clone(), before["revision"].clone())
    );
    let mut count = 0;
    let mut path = format!("/maps/{map_sid}/items?page_size=1000");
    loop {
        let page = get(&path);
        count += page["items"].as_array().unwrap().len();
        match page["meta"]["next_page_token"].as_str() {
            Some(t) => path = format!("/maps/{map_sid}/items?page_size=1000&page_token={t}"),
            None => break,
        }
    }
    assert_eq!(count, 600);
}

#[test]
fn export_and_import_carry_a_cognito_pool_with_its_sync_counts() {
    use ferrosync_core::auth::Principal;
    use ferrosync_core::cognito::{IdentityPoolSpec, PatchOp, PushSync, RecordPatch};
    use ferrosync_core::engine::{ListRecordsRequest, UpdateRecordsRequest};
    use ferrosync_server::ServerConfig;
    use std::collections::BTreeMap;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (source, target, work) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = |dir: &std::path::Path| {
        let mut c = ServerConfig::new(dir);
        (c.account_sid, c.auth_token) = (Some(DATA_SID.into()), Some(DATA_AUTH_TOKEN.into()));
        c
    };
    let root = Principal::Root;
    let replace = |key: &str, value: &str, sync_count: u64| RecordPatch {
        op: PatchOp::Replace,
        key: key.into(),
        value: Some(value.into()),
        sync_count,
        device_last_modified: Some(ferrosync_core::Timestamp(1_700_000_000_123)),
    };

    // A pool with an authenticated identity, records written in two syncs, a deleted dataset
    // and a subscribed push device.
    let (pool, alice, phone, before) = runtime.block_on(async {
        let (e, ..) = ferrosync_server::open_engine(&config(source.path())).await.unwrap();
        let spec = IdentityPoolSpec {
            name: "clipool".into(),
            supported_login_providers: [("graph.facebook.com".to_owned(), "app".to_owned())].into(),
            ..Default::default()
        };
        let pool = e.create_identity_pool(&root, spec).await.unwrap();
        let push_sync = PushSync { application_arns: vec!["arn:aws:sns:us-east-1:1:app/GCM/a".into()], role_arn: None };
        e.set_identity_pool_configuration(&root, &pool.id, Some(push_sync), None).await.unwrap();
        let facebook: BTreeMap<String, String> = [("graph.facebook.com".to_owned(), "alice".to_owned())].into();
        let alice = e.get_id(&pool.id, &facebook).await.unwrap();
        let creds = e.credentials_for_identity(&alice, &facebook).await.unwrap();
        let me = e.aws_secret(&creds.access_key_id, Some(&creds.session_token)).await.unwrap().principal;
        for (dataset, patches) in [
            ("notes", vec![replace("a", "1", 0), replace("b", "2", 0)]),
            ("notes", vec![replace("a", "3", 1)]),
            ("gone", vec![replace("x", "y", 0)]),
        ] {
            let listed = e.list_records(&me, &pool.id, &alice, dataset, ListRecordsRequest::default()).await.unwrap();
            let req = UpdateRecordsRequest { sync_session_token: listed.sync_session_token, device_id: None, patches };
            e.update_records(&me, &pool.id, &alice, dataset, req).await.unwrap();
        }
        e.delete_dataset(&me, &pool.id, &alice, "gone").await.unwrap();
        let phone = e.register_device(&me, &pool.id, &alice, "APNS_SANDBOX", "token-1").await.unwrap();
        e.subscribe_to_dataset(&me, &pool.id, &alice, "notes", &phone).await.unwrap();
        let svc = e.service(&root, pool.service_sid.as_str()).await.unwrap();
        let before = (
            e.pool_dump(&root, &svc).await.unwrap().unwrap(),
            e.identity_dumps(&root, &pool.id, None, 100).await.unwrap(),
        );
        (pool, alice, phone, before)
    });

    let dump = work.path().join("pool.ndjson");
    let mut export = Command::new(env!("CARGO_BIN_EXE_ferrosync"));
    export
        .args(["export", pool.service_sid.as_str(), "--out", dump.to_str().unwrap(), "--data-dir"])
        .arg(source.path())
        .env("FERROSYNC_ACCOUNT_SID", DATA_SID)
        .env("FERROSYNC_AUTH_TOKEN", DATA_AUTH_TOKEN)
        .env_remove("RUST_LOG");
    let out = run_bounded(export, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 Cognito identities"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&dump).unwrap();
    assert!(text.lines().nth(1).unwrap().starts_with("{\"cognito_pool\""), "the pool follows the header");
    let import = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ferrosync"));
        c.args(["import", dump.to_str().unwrap(), "--data-dir", target.path().to_str().unwrap()])
            .env("FERROSYNC_ACCOUNT_SID", DATA_SID)
            .env("FERROSYNC_AUTH_TOKEN", DATA_AUTH_TOKEN)
            .env_remove("RUST_LOG");
        run_bounded(c, None)
    };
    let first = import();
    let said = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success() && said.contains("1 new Cognito identities"), "{said}");
    let again = import();
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success() && said.contains("0 new Cognito identities"), "{said}");

    runtime.block_on(async {
        let (t, ..) = ferrosync_server::open_engine(&config(target.path())).await.unwrap();
        let svc = t.service(&root, pool.service_sid.as_str()).await.unwrap();
        let after = (
            t.pool_dump(&root, &svc).await.unwrap().unwrap(),
            t.identity_dumps(&root, &pool.id, None, 100).await.unwrap(),
        );
        assert_eq!(after, before, "pool, identity, logins, dataset rows and devices as exported");
        let alice_dump = &after.1[0];
        let counts: Vec<(&str, u64, bool)> =
            alice_dump.datasets.iter().map(|d| (d.name.as_str(), d.sync_count, d.exists())).collect();
        assert_eq!(counts, [("gone", 1, false), ("notes", 2, true)]);
        assert_eq!(alice_dump.devices[0].device.id, phone);
        // Records keep their own sync counts and dates.
        let records = t.list_records(&root, &pool.id, &alice, "notes", ListRecordsRequest::default()).await.unwrap();
        let got: Vec<(String, Option<String>, u64)> =
            records.records.iter().map(|r| (r.key.clone(), r.value.clone(), r.sync_count)).collect();
        assert_eq!(got, [("a".into(), Some("3".into()), 2), ("b".into(), Some("2".into()), 1)]);
        assert_eq!(records.records[0].device_last_modified, Some(ferrosync_core::Timestamp(1_700_000_000_123)));
    });
}

#[test]
fn export_and_import_carry_matrix_accounts_and_uploads() {
    use ferrosync_core::auth::{Principal, SecretBox};
    use ferrosync_core::engine::MatrixRegistration;
    use ferrosync_server::ServerConfig;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (source, target, work) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // The same master key on both sides keeps access tokens valid across the move.
    let key = SecretBox::generate_key_hex();
    let config = |dir: &std::path::Path| {
        let mut c = ServerConfig::new(dir);
        (c.account_sid, c.auth_token, c.master_key) =
            (Some(DATA_SID.into()), Some(DATA_AUTH_TOKEN.into()), Some(key.clone()));
        c
    };
    let (token, media_id) = runtime.block_on(async {
        let (e, ..) = ferrosync_server::open_engine(&config(source.path())).await.unwrap();
        let r = MatrixRegistration {
            localpart: Some("alice"),
            password: Some("pass words"),
            device_id: Some("PHONE"),
            device_name: None,
        };
        let session = e.matrix_register("example.org", r).await.unwrap();
        let alice = e.matrix_caller(&session.access_token).await.unwrap().unwrap();
        let media =
            e.matrix_upload(&alice, Some("text/plain"), Some("hi.txt"), b"hello \x00 world".to_vec(), 1 << 20).await;
        (session.access_token, media.unwrap())
    });
    let dump = work.path().join("matrix.ndjson");
    let run = |args: &[&str], dir: &std::path::Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ferrosync"));
        c.args(args)
            .arg("--data-dir")
            .arg(dir)
            .env("FERROSYNC_ACCOUNT_SID", DATA_SID)
            .env("FERROSYNC_AUTH_TOKEN", DATA_AUTH_TOKEN)
            .env("FERROSYNC_MASTER_KEY", &key)
            .env_remove("RUST_LOG");
        let out = run_bounded(c, None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let said = run(&["export", "matrix", "--out", dump.to_str().unwrap()], source.path());
    assert!(said.contains("1 Matrix accounts"), "{said}");
    let said = run(&["import", dump.to_str().unwrap()], target.path());
    assert!(said.contains("1 new Matrix accounts, 1 new uploads"), "{said}");
    let said = run(&["import", dump.to_str().unwrap()], target.path());
    assert!(said.contains("0 new Matrix accounts, 0 new uploads"), "{said}");
    runtime.block_on(async {
        let (t, ..) = ferrosync_server::open_engine(&config(target.path())).await.unwrap();
        let alice = t.matrix_caller(&token).await.unwrap().expect("the session carries over");
        assert_eq!((alice.user_id.as_str(), alice.device_id.as_str()), ("@alice:example.org", "PHONE"));
        let media = t.matrix_media(&media_id).await.unwrap().expect("the upload carries over");
        assert_eq!((media.content.as_slice(), media.filename.as_deref()), (&b"hello \x00 world"[..], Some("hi.txt")));
        let accounts = t.matrix_account_dumps(&Principal::Root, None, 10).await.unwrap();
        assert_eq!(accounts.len(), 1);
    });
}
