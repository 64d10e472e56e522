//! Metrics and request instrumentation.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

/// Bucket bounds of histograms that count things rather than time them.
const COUNT_BUCKETS: &[f64] =
    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0, 16384.0, 65536.0];

/// The process-wide Prometheus recorder; installed once, shared by every server in the process.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Durations in seconds; counts (batch sizes, lags in events) in powers of two, which
            // the seconds' buckets would squash into their `le="1"` and `le="10"`.
            let builder = PrometheusBuilder::new()
                .set_buckets(&[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0])
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_batch_size".into()), COUNT_BUCKETS))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_events".into()), COUNT_BUCKETS))
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let handle = match builder.install_recorder() {
                Ok(h) => h,
                // Another recorder is installed (embedding app): render an empty registry.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            };
            spawn_upkeep(handle.clone());
            handle
        })
        .clone()
}

/// Histogram samples wait in the recorder until drained into their buckets; without this, a
/// server nobody scrapes would keep every request's timing and grow by tens of bytes a request.
fn spawn_upkeep(handle: PrometheusHandle) {
    let started = std::thread::Builder::new().name("ferrosync-metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(5));
            handle.run_upkeep();
        }
    });
    if let Err(e) = started {
        tracing::warn!(error = %e, "cannot start the metrics upkeep thread; histograms drain only when scraped");
    }
}

/// Counts and times every request by face and route template.
pub async fn track(req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let face = face_of(&route);
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("face", face.to_owned()), ("route", route), ("method", method), ("status", status)];
    metrics::counter!("ferrosync_http_requests_total", &labels).increment(1);
    metrics::histogram!("ferrosync_http_request_duration_seconds", &labels[..3])
        .record(started.elapsed().as_secs_f64());
    response
}

/// The face a route template belongs to, by its mount point.
fn face_of(route: &str) -> &'static str {
    const FACES: &[(&str, &str)] = &[
        ("/api/", "native"),
        ("/twilio/sync/", "twilio_sync"),
        ("/twilio/proxy/", "twilio_proxy"),
        ("/twilio/twilsock/", "twilsock"),
        ("/twilio/api/", "twilio_keys"),
        ("/twilio/iam/", "twilio_keys"),
        ("/identitypools", "cognito_sync"),
        ("/.well-known/jwks.json", "cognito_identity"),
        ("/.well-known/openid-configuration", "cognito_identity"),
        ("/_matrix/", "matrix"),
        ("/.well-known/matrix/", "matrix"),
        ("/console", "console"),
    ];
    if route == "/" {
        // The only route at the root is Cognito Identity's `POST /`.
        return "cognito_identity";
    }
    FACES.iter().find(|(prefix, _)| route.starts_with(prefix)).map_or("ops", |(_, face)| face)
}

#[cfg(test)]
mod tests {
    use super::face_of;

    #[test]
    fn routes_are_labelled_with_their_face() {
        assert_eq!(face_of("/api/v1/services/{service}"), "native");
        assert_eq!(face_of("/twilio/sync/v1/Services/{service}/{collection}"), "twilio_sync");
        assert_eq!(face_of("/twilio/twilsock/v3/wsconnect"), "twilsock");
        assert_eq!(face_of("/twilio/proxy/v1/Services"), "twilio_proxy");
        assert_eq!(face_of("/twilio/iam/v1/Keys"), "twilio_keys");
        assert_eq!(face_of("/identitypools/{*rest}"), "cognito_sync");
        assert_eq!(face_of("/"), "cognito_identity");
        assert_eq!(face_of("/_matrix/client/v3/login"), "matrix");
        assert_eq!(face_of("/console/{*path}"), "console");
        assert_eq!(face_of("/metrics"), "ops");
        assert_eq!(face_of("unmatched"), "ops");
    }
}
