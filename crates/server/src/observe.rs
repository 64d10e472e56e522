//! Metrics and request instrumentation.

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};
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
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = method_label(req.method());
    let started = Instant::now();
    let response = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    RouteMeters::shared().record(route, method, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// The request counters and timers, made once for each route template, method and status: a
/// metric named at each request would have its four labels built and looked up in the
/// registry every time.
#[derive(Default)]
struct RouteMeters {
    routes: RwLock<HashMap<Box<str>, Vec<MethodMeters>, foldhash::fast::RandomState>>,
}

struct MethodMeters {
    method: &'static str,
    seconds: metrics::Histogram,
    /// A route answers with a handful of statuses; a scan finds one sooner than a hash would.
    by_status: Vec<(u16, metrics::Counter)>,
}

impl RouteMeters {
    fn shared() -> &'static RouteMeters {
        static METERS: OnceLock<RouteMeters> = OnceLock::new();
        METERS.get_or_init(RouteMeters::default)
    }

    fn record(&self, route: &str, method: &'static str, status: u16, seconds: f64) {
        {
            let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner);
            let meters = routes.get(route).and_then(|methods| methods.iter().find(|m| m.method == method));
            if let Some(m) = meters
                && let Some((_, requests)) = m.by_status.iter().find(|(s, _)| *s == status)
            {
                requests.increment(1);
                m.seconds.record(seconds);
                return;
            }
        }
        // A route, method or status not seen before: its metrics are made, once.
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        let methods = routes.entry(route.into()).or_default();
        let at = match methods.iter().position(|m| m.method == method) {
            Some(at) => at,
            None => {
                let labels = [("face", face_of(route)), ("route", route), ("method", method)].map(owned);
                let seconds = metrics::histogram!("ferrosync_http_request_duration_seconds", &labels);
                methods.push(MethodMeters { method, seconds, by_status: Vec::new() });
                methods.len() - 1
            }
        };
        let m = &mut methods[at];
        let requests = match m.by_status.iter().find(|(s, _)| *s == status) {
            Some((_, requests)) => requests.clone(),
            None => {
                let status_text = status.to_string();
                let labels =
                    [("face", face_of(route)), ("route", route), ("method", method), ("status", status_text.as_str())]
                        .map(owned);
                let requests = metrics::counter!("ferrosync_http_requests_total", &labels);
                m.by_status.push((status, requests.clone()));
                requests
            }
        };
        requests.increment(1);
        m.seconds.record(seconds);
    }
}

/// A request's method as its metrics label it: the standard ones by name, any other as
/// `other`, so clients making methods up cannot grow the metrics without bound.
fn method_label(method: &Method) -> &'static str {
    static STANDARD: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    STANDARD.iter().find(|m| *m == method).map_or("other", Method::as_str)
}

fn owned((name, value): (&'static str, &str)) -> (&'static str, String) {
    (name, value.to_owned())
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
    use super::{Method, RouteMeters, face_of, method_label, prometheus};

    /// The value of the sample line that starts with `series` in the recorder's text.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }

    #[test]
    fn requests_are_counted_by_route_method_and_status_through_kept_metrics() {
        let handle = prometheus();
        let meters = RouteMeters::default();
        let route = "/api/v1/observe-test/{id}";
        meters.record(route, "GET", 200, 0.001);
        meters.record(route, "GET", 200, 0.001);
        meters.record(route, "GET", 404, 0.001);
        meters.record(route, "PUT", 200, 0.001);
        let text = handle.render();
        let series = |method: &str, status: &str| {
            format!(
                "ferrosync_http_requests_total{{face=\"native\",route=\"{route}\",method=\"{method}\",status=\"{status}\"}}"
            )
        };
        assert_eq!(sample(&text, &series("GET", "200")), Some(2.0), "{text}");
        assert_eq!(sample(&text, &series("GET", "404")), Some(1.0), "{text}");
        assert_eq!(sample(&text, &series("PUT", "200")), Some(1.0), "{text}");
        let timed = format!(
            "ferrosync_http_request_duration_seconds_count{{face=\"native\",route=\"{route}\",method=\"GET\"}}"
        );
        assert_eq!(sample(&text, &timed), Some(3.0), "{text}");
        let routes = meters.routes.read().expect("not poisoned");
        let methods = &routes[route];
        assert_eq!(methods.len(), 2, "one entry per method");
        assert_eq!(methods.iter().map(|m| m.by_status.len()).sum::<usize>(), 3, "one counter per status");
    }

    #[test]
    fn methods_made_up_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        assert_eq!(method_label(&Method::TRACE), "TRACE");
        for made_up in [&b"FOO1"[..], b"FOO2", b"get"] {
            let method = Method::from_bytes(made_up).expect("a token");
            assert_eq!(method_label(&method), "other", "{method}");
        }
    }

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
