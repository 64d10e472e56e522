//! Test support shared by every crate's suites: selecting the PostgreSQL runs.
//!
//! `FERROSYNC_TEST_POSTGRES` names a server (a `postgres://` URL); each caller gets a fresh
//! schema in it, so tests run side by side without seeing each other's data. Without it the
//! PostgreSQL runs are skipped, saying so once on the terminal; with `CI=true` a missing or
//! unreachable server fails the run instead, so CI always covers both stores.

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
