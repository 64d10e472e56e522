//! Matrix accounts: registration, password login, tokens that die with their device.

use ferrosync_core::auth::{RootCredentials, SecretBox};
use ferrosync_core::engine::{MatrixCaller, MatrixRegistration};
use ferrosync_core::error::CoreError;
use ferrosync_core::store::Store;
use ferrosync_core::{Engine, Limits};
use std::future::Future;
use std::sync::Arc;

const SERVER: &str = "example.org";

pub async fn run_all<F, Fut>(make: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    accounts_register_log_in_and_out(make().await).await;
    filters_profiles_and_devices(make().await).await;
    rooms_follow_their_rules_in_one_history(make().await).await;
    accounts_restore_with_devices_filters_and_media(make().await, make().await).await;
}

fn engine(store: Arc<dyn Store>) -> Engine {
    let secrets = SecretBox::from_hex(&SecretBox::generate_key_hex()).expect("master key");
    Engine::new(store, Limits::default(), RootCredentials::generate(), secrets)
}

async fn caller(e: &Engine, token: &str) -> Option<MatrixCaller> {
    e.matrix_caller(token).await.expect("the store answers")
}

async fn accounts_register_log_in_and_out(store: Arc<dyn Store>) {
    let e = engine(store);
    let alice = MatrixRegistration {
        localpart: Some("alice"),
        password: Some("correct horse"),
        device_id: Some("PHONE"),
        device_name: Some("Alice's phone"),
    };
    let first = e.matrix_register(SERVER, alice.clone()).await.expect("registered");
    assert_eq!((first.user_id.as_str(), first.device_id.as_str()), ("@alice:example.org", "PHONE"));
    let me = caller(&e, &first.access_token).await.expect("the token works");
    assert_eq!((me.user_id.as_str(), me.device_id.as_str()), ("@alice:example.org", "PHONE"));
    assert!(matches!(e.matrix_register(SERVER, alice).await, Err(CoreError::AlreadyExists { .. })), "one alice");
    assert!(!e.matrix_username_available(SERVER, "alice").await.expect("checked"));
    assert!(e.matrix_username_available(SERVER, "bob").await.expect("checked"));
    let bad = MatrixRegistration { localpart: Some("Bad Name"), ..Default::default() };
    assert!(matches!(e.matrix_register(SERVER, bad).await, Err(CoreError::InvalidField { .. })));
    let generated = e.matrix_register(SERVER, MatrixRegistration::default()).await.expect("a generated id");
    assert!(generated.user_id.starts_with('@') && generated.user_id.ends_with(":example.org"));

    // Operators list every user by id, a page at a time.
    let page = |after: Option<&str>| ferrosync_core::page::PageRequest {
        order: ferrosync_core::page::Order::Asc,
        from: None,
        after: after.map(|a| ferrosync_core::page::Cursor::Key(a.to_owned())),
        limit: 1,
    };
    let root = ferrosync_core::auth::Principal::Root;
    let first_page = e.matrix_users(&root, page(None)).await.expect("listed");
    let mut expected = [generated.user_id.clone(), "@alice:example.org".to_owned()];
    expected.sort();
    assert_eq!(first_page.items.iter().map(|u| u.user_id.as_str()).collect::<Vec<_>>(), [expected[0].as_str()]);
    assert!(first_page.next.is_some());
    let second_page = e.matrix_users(&root, page(Some(&expected[0]))).await.expect("listed");
    assert_eq!(second_page.items.iter().map(|u| u.user_id.as_str()).collect::<Vec<_>>(), [expected[1].as_str()]);
    assert!(second_page.next.is_none());
    let identity = ferrosync_core::auth::Principal::Identity {
        identity: "alice".into(),
        service_sid: ferrosync_core::sid::Sid::new(ferrosync_core::sid::SidKind::Service),
        expires_at: i64::MAX,
    };
    assert!(matches!(e.matrix_users(&identity, page(None)).await, Err(CoreError::Forbidden(_))));

    // Wrong password, unknown user and another server's user are refused alike.
    for (user, password) in [("alice", "wrong"), ("nobody", "correct horse"), ("@alice:elsewhere.org", "correct horse")]
    {
        let refused = e.matrix_login(SERVER, user, password, None, None).await;
        assert!(
            matches!(&refused, Err(CoreError::NotAuthorized(m)) if m == "Invalid username or password"),
            "{refused:?}"
        );
    }
    let laptop = e.matrix_login(SERVER, "@alice:example.org", "correct horse", None, None).await.expect("logged in");
    assert_ne!(laptop.device_id, "PHONE", "a new device");
    assert!(caller(&e, &laptop.access_token).await.is_some());

    // Logging the same device in again replaces its token.
    let again = e.matrix_login(SERVER, "alice", "correct horse", Some("PHONE"), None).await.expect("again");
    assert_eq!(again.device_id, "PHONE");
    assert!(caller(&e, &first.access_token).await.is_none(), "the old token of the device is dead");
    assert!(caller(&e, &again.access_token).await.is_some());

    // Tokens that are not ours, or altered, name nobody.
    assert!(caller(&e, "mat_garbage").await.is_none());
    assert!(caller(&e, "syt_other_server_token").await.is_none());
    let mut altered = again.access_token.clone();
    altered.push('A');
    assert!(caller(&e, &altered).await.is_none());

    // Logout ends one device; logout/all every one.
    let me = caller(&e, &again.access_token).await.expect("caller");
    assert_eq!(e.matrix_logout(&me, false).await.expect("logged out"), 1);
    assert!(caller(&e, &again.access_token).await.is_none());
    assert!(caller(&e, &laptop.access_token).await.is_some(), "other devices stay");
    let third = e.matrix_login(SERVER, "alice", "correct horse", None, None).await.expect("logged in");
    let me = caller(&e, &third.access_token).await.expect("caller");
    assert_eq!(e.matrix_logout(&me, true).await.expect("all out"), 2);
    assert!(caller(&e, &laptop.access_token).await.is_none());
    assert!(caller(&e, &third.access_token).await.is_none());
}

async fn filters_profiles_and_devices(store: Arc<dyn Store>) {
    let e = engine(store);
    let reg =
        MatrixRegistration { localpart: Some("kim"), password: Some("pw"), device_id: Some("A"), device_name: None };
    let session = e.matrix_register(SERVER, reg).await.expect("registered");
    let me = caller(&e, &session.access_token).await.expect("caller");

    let filter = serde_json::json!({ "room": { "timeline": { "limit": 3 } } });
    let id = e.matrix_put_filter(&me, &filter).await.expect("stored");
    assert_eq!(e.matrix_filter(&me.user_id, &id).await.expect("read"), Some(filter));
    assert_eq!(e.matrix_filter(&me.user_id, "other").await.expect("read"), None);
    assert_eq!(e.matrix_filter("@someone:example.org", &id).await.expect("read"), None, "filters are per user");
    let bad = serde_json::json!({ "room": { "timeline": { "limit": 0 } } });
    assert!(matches!(e.matrix_put_filter(&me, &bad).await, Err(CoreError::InvalidField { .. })));

    let profile = e.matrix_profile(&me.user_id).await.expect("profile");
    assert_eq!((profile.display_name.as_deref(), profile.avatar_url), (Some("kim"), None), "named after the localpart");
    let set = e.matrix_set_profile(&me, Some(Some("Kim".into())), Some(Some("mxc://example.org/a".into()))).await;
    assert_eq!(set.expect("set").display_name.as_deref(), Some("Kim"));
    let cleared = e.matrix_set_profile(&me, Some(None), None).await.expect("cleared");
    assert_eq!((cleared.display_name, cleared.avatar_url.as_deref()), (None, Some("mxc://example.org/a")));
    assert!(matches!(e.matrix_profile("@ghost:example.org").await, Err(CoreError::NotFound { .. })));

    e.matrix_login(SERVER, "kim", "pw", Some("B"), Some("Second")).await.expect("logged in");
    e.matrix_rename_device(&me, "B", "Renamed").await.expect("renamed");
    let devices = e.matrix_devices(&me).await.expect("devices");
    let names: Vec<(&str, Option<&str>)> =
        devices.iter().map(|d| (d.device_id.as_str(), d.display_name.as_deref())).collect();
    assert_eq!(names, vec![("A", None), ("B", Some("Renamed"))]);
    assert!(matches!(e.matrix_rename_device(&me, "Z", "x").await, Err(CoreError::NotFound { .. })));
    // Logging a device in again keeps the name it had.
    e.matrix_login(SERVER, "kim", "pw", Some("B"), None).await.expect("again");
    assert_eq!(e.matrix_devices(&me).await.expect("devices")[1].display_name.as_deref(), Some("Renamed"));
    assert!(e.matrix_confirm_password(&me, "pw").await.expect("checked"));
    assert!(!e.matrix_confirm_password(&me, "nope").await.expect("checked"));
    assert_eq!(e.matrix_delete_devices(&me, &["B".into(), "missing".into()]).await.expect("deleted"), 1);
    assert_eq!(e.matrix_devices(&me).await.expect("devices").len(), 1);
}

async fn user(e: &Engine, name: &str) -> MatrixCaller {
    let reg = MatrixRegistration { localpart: Some(name), password: Some("pw"), ..Default::default() };
    let session = e.matrix_register(SERVER, reg).await.expect("registered");
    caller(e, &session.access_token).await.expect("caller")
}

async fn rooms_follow_their_rules_in_one_history(store: Arc<dyn Store>) {
    use ferrosync_core::engine::CreateRoom;
    use ferrosync_core::model::{ItemKey, ObjectKind, ObjectRef};
    let e = engine(store.clone());
    let (alice, bob, carol) = (user(&e, "alice").await, user(&e, "bob").await, user(&e, "carol").await);
    let req = CreateRoom { name: Some("Lobby".into()), invite: vec![bob.user_id.clone()], ..Default::default() };
    let room = e.matrix_create_room(SERVER, &alice, req).await.expect("created");
    assert!(room.starts_with('!') && room.ends_with(":example.org"));

    // The room is objects of the Matrix service: its timeline in order, its state by key.
    let svc = store.service(&ObjectRef::UniqueName("matrix".into())).await.expect("read").expect("the service");
    let timeline = store
        .object(&svc.sid, ObjectKind::List, &ObjectRef::UniqueName(format!("{room}/timeline")))
        .await
        .expect("read")
        .expect("a timeline");
    let page = ferrosync_core::page::PageRequest {
        order: ferrosync_core::page::Order::Asc,
        from: None,
        after: None,
        limit: 50,
    };
    let types: Vec<String> = store
        .items(&timeline.sid, ObjectKind::List, &page)
        .await
        .expect("items")
        .iter()
        .map(|i| i.data["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        types,
        [
            "m.room.create",
            "m.room.member",
            "m.room.power_levels",
            "m.room.join_rules",
            "m.room.history_visibility",
            "m.room.guest_access",
            "m.room.name",
            "m.room.member"
        ]
    );
    let state = store
        .object(&svc.sid, ObjectKind::Map, &ObjectRef::UniqueName(format!("{room}/state")))
        .await
        .expect("read")
        .expect("a state map");
    let invite = store.item(&state.sid, &ItemKey::Key(format!("m.room.member\t{}", bob.user_id))).await.expect("read");
    assert_eq!(invite.expect("bob's membership").data["content"]["membership"], "invite");

    // Private room: carol, not invited, cannot join; bob, invited, can.
    let refused = e.matrix_membership(&carol, &room, &carol.user_id, "join", None).await;
    assert!(matches!(refused, Err(CoreError::Forbidden(_))), "{refused:?}");
    e.matrix_membership(&bob, &room, &bob.user_id, "join", None).await.expect("bob joins");

    // Sending: members only; a transaction id replayed answers the first event.
    let hello = serde_json::json!({ "msgtype": "m.text", "body": "hello" });
    let first = e.matrix_send(&bob, &room, "m.room.message", hello.clone(), "t1").await.expect("sent");
    let again = e.matrix_send(&bob, &room, "m.room.message", hello.clone(), "t1").await.expect("replayed");
    assert_eq!(first, again, "one event per transaction id");
    assert!(matches!(e.matrix_send(&carol, &room, "m.room.message", hello, "t1").await, Err(CoreError::Forbidden(_))));
    let sent = store.items(&timeline.sid, ObjectKind::List, &page).await.expect("items");
    assert_eq!(sent.iter().filter(|i| i.data["event_id"] == first.as_str()).count(), 1);

    // State needs power: bob (0) cannot rename the room, alice (100) can; bob cannot kick alice.
    let rename = serde_json::json!({ "name": "Renamed" });
    assert!(matches!(
        e.matrix_put_state(&bob, &room, "m.room.name", "", rename.clone()).await,
        Err(CoreError::Forbidden(_))
    ));
    e.matrix_put_state(&alice, &room, "m.room.name", "", rename).await.expect("renamed");
    assert!(matches!(
        e.matrix_membership(&bob, &room, &alice.user_id, "leave", None).await,
        Err(CoreError::Forbidden(_))
    ));
    e.matrix_membership(&alice, &room, &bob.user_id, "ban", Some("spam")).await.expect("banned");
    assert!(matches!(e.matrix_membership(&bob, &room, &bob.user_id, "join", None).await, Err(CoreError::Forbidden(_))));

    // Each user's rooms are a Map of the service too.
    let rooms = store
        .object(&svc.sid, ObjectKind::Map, &ObjectRef::UniqueName(format!("{}/rooms", bob.user_id)))
        .await
        .expect("read")
        .expect("bob's rooms");
    let mine = store.item(&rooms.sid, &ItemKey::Key(room.clone())).await.expect("read").expect("the room");
    assert_eq!(mine.data["membership"], "ban");
    assert!(matches!(
        e.matrix_send(&alice, "!nope:example.org", "m.room.message", serde_json::json!({}), "t").await,
        Err(CoreError::NotFound { .. })
    ));
}

/// Accounts exported from one store and restored into another (same master key): users,
/// devices, filters and uploads as they were, sessions still valid, a second restore a no-op.
async fn accounts_restore_with_devices_filters_and_media(source: Arc<dyn Store>, target: Arc<dyn Store>) {
    use ferrosync_core::auth::Principal;
    let key = SecretBox::generate_key_hex();
    let with_key = |store| {
        Engine::new(store, Limits::default(), RootCredentials::generate(), SecretBox::from_hex(&key).expect("key"))
    };
    let (e, t) = (with_key(source), with_key(target));
    let root = Principal::Root;
    let mut sessions = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let r = MatrixRegistration {
            localpart: Some(name),
            password: Some("pass words"),
            device_id: None,
            device_name: None,
        };
        sessions.push(e.matrix_register(SERVER, r).await.expect("registered"));
    }
    let alice = caller(&e, &sessions[0].access_token).await.expect("alice");
    let filter = serde_json::json!({"room": {"timeline": {"limit": 5}}});
    let filter_id = e.matrix_put_filter(&alice, &filter).await.expect("filter");
    let mut media = Vec::new();
    for n in 0..10u8 {
        let id =
            e.matrix_upload(&alice, Some("image/png"), Some("x.png"), vec![n; 100 + usize::from(n)], 1 << 20).await;
        media.push(id.expect("uploaded"));
    }

    let mut accounts = e.matrix_account_dumps(&root, None, 2).await.expect("page 1");
    let after = accounts.last().map(|a| a.user.user_id.clone());
    accounts.extend(e.matrix_account_dumps(&root, after.as_deref(), 2).await.expect("page 2"));
    assert_eq!(accounts.len(), 3, "every account once across pages");
    let mut uploads = e.matrix_media_dumps(&root, None, 4).await.expect("media");
    while let Some(last) = uploads.last().map(|m| m.media_id.clone()) {
        let more = e.matrix_media_dumps(&root, Some(&last), 4).await.expect("media");
        if more.is_empty() {
            break;
        }
        uploads.extend(more);
    }
    assert_eq!(uploads.len(), 10);

    assert!(e.restore_matrix_accounts(&caller_principal(), accounts.clone()).await.is_err(), "server credentials only");
    assert_eq!(t.restore_matrix_accounts(&root, accounts.clone()).await.expect("restored"), 3);
    for m in uploads.clone() {
        assert!(t.restore_matrix_media(&root, m).await.expect("restored"));
    }
    assert_eq!(t.restore_matrix_accounts(&root, accounts.clone()).await.expect("again"), 0);
    assert!(!t.restore_matrix_media(&root, uploads[0].clone()).await.expect("again"));
    assert_eq!(t.matrix_account_dumps(&root, None, 10).await.expect("reads"), accounts);
    assert_eq!(t.matrix_media_dumps(&root, None, 10).await.expect("reads"), uploads);

    // Sessions carry over with the key; filters and uploads are found by their ids.
    let there = caller(&t, &sessions[0].access_token).await.expect("alice's token still works");
    assert_eq!(there.user_id, alice.user_id);
    assert_eq!(t.matrix_filter(&alice.user_id, &filter_id).await.expect("reads"), Some(filter));
    assert_eq!(t.matrix_media(&media[3]).await.expect("reads").expect("there").content, vec![3u8; 103]);
    let login = t.matrix_login(SERVER, "bob", "pass words", None, None).await;
    assert!(login.is_ok(), "passwords carry over: {login:?}");

    // Another account under a restored id is refused, not merged.
    let mut other = accounts[0].clone();
    other.user.date_created = ferrosync_core::Timestamp(other.user.date_created.0 + 1);
    let clash = t.restore_matrix_accounts(&root, vec![other]).await;
    assert!(matches!(clash, Err(CoreError::AlreadyExists { .. })), "{clash:?}");
}

fn caller_principal() -> ferrosync_core::auth::Principal {
    ferrosync_core::auth::Principal::Identity {
        identity: "alice".into(),
        service_sid: ferrosync_core::sid::Sid::new(ferrosync_core::sid::SidKind::Service),
        expires_at: i64::MAX,
    }
}
