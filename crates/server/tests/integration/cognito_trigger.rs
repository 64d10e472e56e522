//! Cognito Events' `SyncTrigger` as a webhook standing in for the Lambda function: what it is
//! sent, and how what it answers (edits, delays, throttling, failures, invalid output) decides
//! what UpdateRecords writes.

use super::cognito_sync::{DATASET, as_identity, developer, identity, pool, push, replace};
use super::common::TestServer;
use aws_sdk_cognitosync::error::ProvideErrorMetadata;
use serde_json::Value;
use std::time::Duration;

/// How the stand-in for the sync trigger's Lambda function answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    /// Upper-cases `color`, removes `shape` and adds `added`.
    Edit,
    /// Answers after the server's timeout.
    Slow,
    Throttled,
    Fails,
    NotJson,
    /// Hands back the event with its dataset name changed.
    ChangesReadOnly,
}

struct Receiver {
    url: String,
    function: std::sync::Arc<std::sync::Mutex<Function>>,
    events: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        use axum::http::StatusCode;
        use axum::response::IntoResponse;
        let function = std::sync::Arc::new(std::sync::Mutex::new(Function::Edit));
        let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (f, seen) = (function.clone(), events.clone());
        let app = axum::Router::new().route(
            "/trigger",
            axum::routing::post(move |axum::Json(event): axum::Json<Value>| {
                let (f, seen) = (f.clone(), seen.clone());
                async move {
                    seen.lock().unwrap().push(event.clone());
                    let function = *f.lock().unwrap();
                    let mut out = event;
                    match function {
                        Function::Edit => {
                            let records = &mut out["datasetRecords"];
                            let color = records["color"]["newValue"].as_str().unwrap_or_default().to_uppercase();
                            records["color"]["newValue"] = Value::from(color);
                            records["shape"]["op"] = Value::from("remove");
                            records["added"] = serde_json::json!({"newValue": "by the trigger", "op": "replace"});
                            axum::Json(out).into_response()
                        }
                        Function::Slow => {
                            tokio::time::sleep(Duration::from_secs(2)).await;
                            axum::Json(out).into_response()
                        }
                        Function::Throttled => (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response(),
                        Function::Fails => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
                        Function::NotJson => (StatusCode::OK, "<html>").into_response(),
                        Function::ChangesReadOnly => {
                            out["datasetName"] = Value::from("elsewhere");
                            axum::Json(out).into_response()
                        }
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/trigger", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, function, events }
    }

    fn answer(&self, function: Function) {
        *self.function.lock().unwrap() = function;
    }

    fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn the_sync_trigger_edits_what_identities_write() {
    let settings = super::common::Settings { sync_trigger_timeout: Duration::from_millis(300), ..Default::default() };
    let Some(s) = TestServer::with_settings(settings).await else { return };
    let pool = pool(&s).await;
    let id = identity(&s, &pool).await;
    let dev = developer(&s);
    let me = as_identity(&s, &id).await;
    let seed = vec![replace("color", "blue", 0), replace("size", "10", 0), replace("shape", "round", 0)];
    push(&me, &pool, &id, DATASET, seed).await.expect("written before any trigger");

    let function = Receiver::start().await;
    dev.set_cognito_events().identity_pool_id(&pool).events("SyncTrigger", &function.url).send().await.expect("events");

    // The function sees every record, the caller's changes marked, and edits what is written.
    let written = push(&me, &pool, &id, DATASET, vec![replace("color", "green", 1), replace("new", "n", 0)])
        .await
        .expect("push through the trigger");
    let region = pool.split_once(':').expect("region").0;
    assert_eq!(
        function.events(),
        [serde_json::json!({
            "version": 2,
            "eventType": "SyncTrigger",
            "region": region,
            "identityPoolId": pool,
            "identityId": id,
            "datasetName": DATASET,
            "datasetRecords": {
                "color": {"oldValue": "blue", "newValue": "green", "op": "replace"},
                "new": {"oldValue": null, "newValue": "n", "op": "replace"},
                "shape": {"oldValue": "round", "newValue": "round", "op": "replace"},
                "size": {"oldValue": "10", "newValue": "10", "op": "replace"},
            },
        })]
    );
    let stored = |records: &[aws_sdk_cognitosync::types::Record]| -> Vec<(String, Option<String>, Option<i64>)> {
        let mut rows: Vec<_> = records
            .iter()
            .map(|r| (r.key().unwrap_or_default().to_owned(), r.value().map(str::to_owned), r.sync_count()))
            .collect();
        rows.sort();
        rows
    };
    let row = |k: &str, v: Option<&str>, n: i64| (k.to_owned(), v.map(str::to_owned), Some(n));
    assert_eq!(
        stored(written.records()),
        [
            row("added", Some("by the trigger"), 2),
            row("color", Some("GREEN"), 2),
            row("new", Some("n"), 2),
            row("shape", None, 2),
        ],
        "the records as stored, the function's own changes included"
    );
    let list = || dev.list_records().identity_pool_id(&pool).identity_id(&id).dataset_name(DATASET).send();
    let listed = list().await.expect("list");
    assert_eq!(listed.dataset_sync_count(), Some(2));
    assert_eq!(
        stored(listed.records()),
        [
            row("added", Some("by the trigger"), 2),
            row("color", Some("GREEN"), 2),
            row("new", Some("n"), 2),
            row("shape", None, 2),
            row("size", Some("10"), 1),
        ]
    );

    // Developer credentials write as they are, without calling the function.
    push(&dev, &pool, &id, DATASET, vec![replace("color", "red", 2)]).await.expect("developer push");
    assert_eq!(function.events().len(), 1, "developer credentials never invoke the trigger");
    let listed = list().await.expect("list");
    assert_eq!(listed.dataset_sync_count(), Some(3));
    let color = listed.records().iter().find(|r| r.key() == Some("color")).expect("color");
    assert_eq!(color.value(), Some("red"));

    // A function that fails leaves the dataset as it was.
    let failures = [
        (Function::Slow, "LambdaSocketTimeoutException", 400),
        (Function::Throttled, "LambdaThrottledException", 429),
        (Function::Fails, "InvalidLambdaFunctionOutputException", 400),
        (Function::NotJson, "InvalidLambdaFunctionOutputException", 400),
        (Function::ChangesReadOnly, "InvalidLambdaFunctionOutputException", 400),
    ];
    for (answer, code, status) in failures {
        function.answer(answer);
        let before = function.events().len();
        let result = push(&me, &pool, &id, DATASET, vec![replace("color", "purple", 3)]).await;
        let e = result.expect_err("refused");
        let got = (e.code().unwrap_or_default(), e.raw_response().map(|r| r.status().as_u16()));
        assert_eq!(got, (code, Some(status)), "{answer:?}: {e:?}");
        assert_eq!(function.events().len(), before + 1, "{answer:?} was called once");
        let listed = list().await.expect("list");
        assert_eq!(listed.dataset_sync_count(), Some(3), "{answer:?} wrote nothing");
        let color = listed.records().iter().find(|r| r.key() == Some("color")).expect("color");
        assert_eq!(color.value(), Some("red"));
    }
}
