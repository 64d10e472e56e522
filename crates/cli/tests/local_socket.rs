//! While a server runs on a data directory, its embedded store is that process's alone; the
//! commands that act on the store reach it through the server's local socket instead.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use support::{DATA_AUTH_TOKEN, DATA_SID, DataServer, KillOnDrop, run_bounded, stdout};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A request on the local socket at `socket`, with the root account's credentials or none.
async fn on_socket(socket: &std::path::Path, method: Method, path: &str, authenticated: bool) -> (u16, String) {
    let client = reqwest::Client::builder().unix_socket(socket.to_owned()).build().unwrap();
    let mut request = client.request(method, format!("http://localhost{path}"));
    if authenticated {
        request = request.basic_auth(DATA_SID, Some(DATA_AUTH_TOKEN));
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The backups' staging files in the data directory `dir`.
fn staging_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("ferrosync.db.backup-"))
        .collect()
}

#[test]
fn while_a_server_runs_its_store_is_its_alone_and_commands_go_through_its_socket() {
    let (mut server, runtime) = DataServer::start();
    let dir = server.dir.path().to_owned();
    let socket = dir.join("ferrosync.sock");
    let mode = std::fs::metadata(&socket).expect("the server made its socket").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "only the data directory's owner may use the socket");

    // A second server on the same directory stops at once, saying why; the first carries on.
    let second = run_bounded(server.local_command(&["serve", "--listen", "127.0.0.1:0"]), None);
    assert!(!second.status.success());
    assert!(stderr(&second).contains("held by another process"), "{}", stderr(&second));
    assert!(socket.exists(), "the refused server leaves the running one's socket alone");

    // Keys made and removed through the server are the server's own.
    let created = run_bounded(server.local_command(&["api-key", "create", "--name", "via-socket"]), None);
    assert!(created.status.success(), "{}", stderr(&created));
    let sid = stdout(&created).lines().next().unwrap().trim_start_matches("sid:").trim().to_owned();
    let (status, keys) = runtime.block_on(server.rest(Method::GET, "/keys", Value::Null));
    assert_eq!(status, 200);
    assert!(keys.as_array().unwrap().iter().any(|k| k["sid"] == sid.as_str()), "{keys}");
    let listed = stdout(&run_bounded(server.local_command(&["api-key", "list"]), None));
    assert!(listed.contains(&sid) && listed.contains("via-socket"), "{listed}");
    // A token the server signs with that key opens the service.
    let minted = run_bounded(
        server.local_command(&["token", "--service", "clidata", "--identity", "carol", "--api-key", &sid]),
        None,
    );
    assert!(minted.status.success(), "{}", stderr(&minted));
    let token = stdout(&minted).trim().to_owned();
    let opened = runtime.block_on(async {
        reqwest::Client::new().get(format!("{}/api/v1/services/clidata", server.url)).bearer_auth(&token).send().await
    });
    assert_eq!(opened.unwrap().status().as_u16(), 200);

    // An import into the running server is seen by its clients at once.
    let (status, doc) = runtime.block_on(server.rest(
        Method::POST,
        "/services/clidata/documents",
        json!({"unique_name": "kept", "data": {"v": 1}}),
    ));
    assert_eq!(status, 201, "{doc}");
    let work = tempfile::tempdir().unwrap();
    let dump = work.path().join("dump.ndjson");
    let exported = run_bounded(server.local_command(&["export", "clidata", "--out", dump.to_str().unwrap()]), None);
    assert!(exported.status.success(), "{}", stderr(&exported));
    assert!(stderr(&exported).contains("1 objects"), "{}", stderr(&exported));
    let doc_path = format!("/services/clidata/documents/{}", doc["sid"].as_str().unwrap());
    let (status, _) = runtime.block_on(server.rest(Method::DELETE, &doc_path, Value::Null));
    assert_eq!(status, 204);
    let imported = run_bounded(server.local_command(&["import", dump.to_str().unwrap()]), None);
    assert!(imported.status.success(), "{}", stderr(&imported));
    assert!(stderr(&imported).contains("1 new objects"), "{}", stderr(&imported));
    let (status, back) = runtime.block_on(server.rest(Method::GET, &doc_path, Value::Null));
    assert_eq!((status, &back["data"]), (200, &json!({"v": 1})), "{back}");
    // A dump that is not one is refused by the server, with the line that is wrong.
    let junk = work.path().join("junk.ndjson");
    std::fs::write(&junk, "{\"not\": \"a dump\"}\n").unwrap();
    let refused = run_bounded(server.local_command(&["import", junk.to_str().unwrap()]), None);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("line 1"), "{}", stderr(&refused));

    // The socket asks for the account's credentials, and its own routes are not on the network.
    let (status, _) = runtime.block_on(on_socket(&socket, Method::GET, "/local/v1/services/clidata/export", false));
    assert_eq!(status, 401);
    let (status, body) = runtime.block_on(on_socket(&socket, Method::GET, "/api/v1/services/clidata", true));
    assert_eq!(status, 200, "the socket serves the API too: {body}");
    let over_tcp = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("{}/local/v1/services/clidata/export", server.url))
            .basic_auth(DATA_SID, Some(DATA_AUTH_TOKEN))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(over_tcp, 404, "exports and backups are for the local socket only");
    // The server sends the snapshot and the command writes it, relative to where it runs: the
    // server need not be able to write there.
    let backup = run_bounded(
        {
            let mut c = server.local_command(&["backup", "copy"]);
            c.current_dir(work.path());
            c
        },
        None,
    );
    assert!(backup.status.success(), "{}", stderr(&backup));
    assert!(stdout(&backup).contains("backed up"), "{}", stdout(&backup));
    assert!(work.path().join("copy").join("ferrosync.db").exists());
    assert!(work.path().join("copy").join("credentials.json").exists(), "the credentials go with the copy");
    assert_eq!(staging_files(&dir), Vec::<String>::new(), "the server's staged snapshot is gone once sent");
    // Nothing replaces the store under a running server.
    let restore = run_bounded(server.local_command(&["restore", work.path().join("copy").to_str().unwrap()]), None);
    assert!(!restore.status.success());
    assert!(stderr(&restore).contains("a server is running"), "{}", stderr(&restore));

    // Killed, the server leaves its socket file; commands then open the store themselves, and
    // the next server takes the socket back.
    server.kill();
    assert!(socket.exists(), "kill -9 leaves the socket file");
    // As a server killed mid-backup would leave its staged snapshot.
    std::fs::write(dir.join("ferrosync.db.backup-0123"), b"half a copy").unwrap();
    let listed = run_bounded(server.local_command(&["api-key", "list"]), None);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(stdout(&listed).contains(&sid), "{}", stdout(&listed));
    let (child, _) = runtime.block_on(support::serve(&dir, DATA_SID, DATA_AUTH_TOKEN, &[]));
    let mut restarted = KillOnDrop(child);
    let (status, _) = runtime.block_on(on_socket(&socket, Method::GET, "/api/v1/keys", true));
    assert_eq!(status, 200, "the restarted server answers on the socket");
    assert_eq!(staging_files(&dir), Vec::<String>::new(), "a staged snapshot left behind is removed");
    // Stopped cleanly, a server removes its socket.
    support::terminate(&mut restarted.0);
    assert!(!socket.exists(), "the socket goes with the server");
}
