//! What Ferrosync's own HTTP requests (webhooks, stream records, pushes) share.

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
