//! What Ferrosync's own HTTP requests (webhooks, stream records, pushes) share.

use std::sync::atomic::{AtomicBool, Ordering};

/// How much of an error answer is kept for the error and the log; the rest is dropped unread.
const BODY_EXCERPT: usize = 512;

/// The start of `response`'s body, for an error message.
pub async fn body_excerpt(mut response: reqwest::Response) -> String {
    let mut excerpt = Vec::new();
    while excerpt.len() < BODY_EXCERPT {
        match response.chunk().await {
            Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk[..chunk.len().min(BODY_EXCERPT - excerpt.len())]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&excerpt).into_owned()
}

/// The client `make` configures, checking servers against the system's CA certificates.
///
/// reqwest refuses to build such a client on a host without any (a minimal container image),
/// which would stop `http://` callbacks and in-app relaying along with `https://` ones. There the
/// client is built without them: `http://` calls go out, and each `https://` call fails with its
/// reason until `SSL_CERT_FILE` or `SSL_CERT_DIR` names certificates. Once found missing, the
/// certificates are not looked for again (each look logs its own warnings).
pub fn http_client(make: impl Fn() -> reqwest::ClientBuilder) -> Result<reqwest::Client, reqwest::Error> {
    static NO_CERTIFICATES: AtomicBool = AtomicBool::new(false);
    if !NO_CERTIFICATES.load(Ordering::Relaxed) {
        match make().build() {
            Ok(client) => return Ok(client),
            Err(e) => {
                let client = make().tls_certs_only([]).build()?;
                if !NO_CERTIFICATES.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %error_chain(&e),
                        "no CA certificates on this host (SSL_CERT_FILE or SSL_CERT_DIR can name them): https:// callbacks fail, http:// ones are sent");
                }
                return Ok(client);
            }
        }
    }
    make().tls_certs_only([]).build()
}

/// An error and its causes, `: `-separated: reqwest's top-level message ("error sending
/// request", "builder error") hides the cause.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
