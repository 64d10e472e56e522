//! Test support shared by every crate's suites: selecting the PostgreSQL runs, and a service
//! to write object streams to.
//!
//! `FERROSYNC_TEST_POSTGRES` names a server (a `postgres://` URL); each caller gets a fresh
//! schema in it, so tests run side by side without seeing each other's data. Without it the
//! PostgreSQL runs are skipped, saying so once on the terminal; with `CI=true` a missing or
//! unreachable server fails the run instead, so CI always covers both stores.

use ferrosync_core::store::Store;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub const ENV: &str = "FERROSYNC_TEST_POSTGRES";

static SKIP_SAID: AtomicBool = AtomicBool::new(false);
static SCHEMAS: AtomicU64 = AtomicU64::new(0);

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A URL selecting a new, empty schema on the test server, or `None` when the PostgreSQL runs
/// are skipped.
pub async fn fresh_postgres_url() -> Option<String> {
    let base = postgres_configured()?;
    let schema = format!(
        "t{}_{}_{}",
        std::process::id(),
        SCHEMAS.fetch_add(1, Ordering::Relaxed),
        ferrosync_core::auth::random_hex(4)
    );
    let (create, name) = (base.clone(), schema.clone());
    let made = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let mut client = crate::postgres::parse_url(&create)
            .map_err(|e| e.to_string())?
            .connect(postgres::NoTls)
            .map_err(|e| e.to_string())?;
        client.batch_execute(&format!("CREATE SCHEMA {name}")).map_err(|e| e.to_string())
    })
    .await;
    match made {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{ENV}={base}: cannot create a test schema: {e}"),
        Err(e) => panic!("schema task failed: {e}"),
    }
    Some(with_search_path(&base, &schema))
}

/// The test server's URL, or `None` (said once on the terminal) when the PostgreSQL runs are
/// skipped. Panics under CI, where they must run.
pub fn postgres_configured() -> Option<String> {
    let Some(base) = std::env::var(ENV).ok().filter(|s| !s.is_empty()) else {
        if in_ci() {
            panic!("CI=true but {ENV} is not set: the PostgreSQL runs cannot be skipped in CI");
        }
        if !SKIP_SAID.swap(true, Ordering::Relaxed) {
            // Straight to the terminal: the test harness would swallow println!.
            let _ = writeln!(
                std::io::stderr(),
                "\nNOTE: {ENV} is not set, so the PostgreSQL runs of this suite were SKIPPED \
                 (eval \"$(scripts/postgres-for-tests)\" starts a server and sets it).\n"
            );
        }
        return None;
    };
    Some(base)
}

/// `url` with `schema` as the connections' search path.
pub fn with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// A service on a store, and the writes the stores' stream tests make to it.
pub struct Docs {
    pub svc: ferrosync_core::Sid,
}

impl Docs {
    pub async fn create_service(store: &dyn Store) -> Docs {
        use ferrosync_core::store::{Actor, Mutation};
        let svc = ferrosync_core::Sid::new(ferrosync_core::SidKind::Service);
        let m = Mutation::CreateService {
            sid: svc.clone(),
            unique_name: None,
            friendly_name: None,
            acl_enabled: false,
            settings: Default::default(),
        };
        store.execute(Actor::SYSTEM, m).await.expect("service");
        Docs { svc }
    }

    pub async fn create(&self, store: &dyn Store, name: &str) -> ferrosync_core::Sid {
        use ferrosync_core::model::{ObjectKind, ObjectRef, OpenMode};
        use ferrosync_core::store::{Actor, Mutation, Outcome};
        let m = Mutation::OpenObject {
            service: self.svc.clone(),
            kind: ObjectKind::Document,
            target: Some(ObjectRef::UniqueName(name.into())),
            mode: OpenMode::OpenOrCreate,
            ttl: None,
            data: None,
        };
        match store.execute(Actor::SYSTEM, m).await.expect("created").outcome {
            Outcome::Object { object, .. } => object.sid,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub async fn update(&self, store: &dyn Store, doc: &ferrosync_core::Sid, n: u32) {
        use ferrosync_core::model::{ObjectKind, ObjectRef};
        use ferrosync_core::store::{Actor, Mutation};
        let m = Mutation::UpdateObject {
            service: self.svc.clone(),
            kind: ObjectKind::Document,
            target: ObjectRef::Sid(doc.clone()),
            data: Some(serde_json::json!({ "n": n })),
            ttl: None,
            if_match: None,
        };
        store.execute(Actor::SYSTEM, m).await.expect("updated");
    }

    pub async fn remove(&self, store: &dyn Store, doc: &ferrosync_core::Sid) {
        use ferrosync_core::model::{ObjectKind, ObjectRef};
        use ferrosync_core::store::{Actor, Mutation};
        let m = Mutation::RemoveObject {
            service: self.svc.clone(),
            kind: ObjectKind::Document,
            target: ObjectRef::Sid(doc.clone()),
            if_match: None,
        };
        store.execute(Actor::SYSTEM, m).await.expect("removed");
    }

    /// Reads every object's stream from every position of the log at several page sizes and
    /// compares each with the service's log filtered to the object.
    pub async fn check_streams(&self, store: &dyn Store, objects: &[&ferrosync_core::Sid]) {
        let log = store.events(&self.svc, 0, None, 10_000).await.expect("log");
        for doc in objects {
            let own: Vec<u64> = log.iter().filter(|e| &e.object_sid == *doc).map(|e| e.seq).collect();
            for after in 0..=log.len() as u64 + 1 {
                for limit in [1, 5, 40, 1_000] {
                    let got: Vec<u64> = store
                        .events(&self.svc, after, Some(doc), limit)
                        .await
                        .expect("stream")
                        .iter()
                        .map(|e| e.seq)
                        .collect();
                    let expected: Vec<u64> = own.iter().copied().filter(|&s| s > after).take(limit as usize).collect();
                    assert_eq!(got, expected, "{doc} after {after}, {limit} at most");
                }
            }
        }
    }
}
