//! What framing one WebSocket reply costs: the reply to a document update, serialised
//! straight from its view as the server writes it, against building the body as a `Value`
//! first. `cargo run --release -p ferrosync-protocol --example reply_frame -- [rounds]`

use ferrosync_protocol::ObjectKind;
use ferrosync_protocol::rest::ObjectView;
use ferrosync_protocol::ws::{ReplyFrame, ServerFrame};
use std::hint::black_box;
use std::time::Instant;

fn view() -> ObjectView {
    ObjectView {
        sid: "ET0123456789abcdef0123456789abcdef".into(),
        service_sid: "IS0123456789abcdef0123456789abcdef".into(),
        kind: ObjectKind::Document,
        unique_name: Some("writer-7".into()),
        data: Some(serde_json::json!({ "n": 12345, "writer": 7, "note": "conditional write" })),
        revision: 12345,
        date_created: "2026-12-03T02:00:00.000000Z".into(),
        date_updated: "2026-12-03T02:00:01.000000Z".into(),
        date_expires: None,
        created_by: "bench-7".into(),
    }
}

/// Nanoseconds per reply, the best of five passes of `n`.
fn time(n: u32, mut frame: impl FnMut(ObjectView) -> Vec<u8>) -> f64 {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                black_box(frame(black_box(view())));
            }
            start.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let baseline = time(n, |v| {
        black_box(v);
        Vec::new()
    });
    let direct = time(n, |v| serde_json::to_vec(&ReplyFrame { id: 9, status: 200, body: &v }).unwrap_or_default());
    let through_value = time(n, |v| {
        let body = serde_json::to_value(&v).ok();
        serde_json::to_vec(&ServerFrame::Reply { id: 9, status: 200, body, error: None }).unwrap_or_default()
    });
    println!("building the view: {baseline:.0} ns");
    println!("reply from the view: {:.0} ns", direct - baseline);
    println!("reply through a Value: {:.0} ns", through_value - baseline);
}
