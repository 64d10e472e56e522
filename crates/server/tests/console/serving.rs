//! `/console`: the page, its assets and its deep links.

use crate::common::{Server, send};
use reqwest::Method;

type TestServer = Server<false>;

async fn get(s: &TestServer, path: &str) -> reqwest::Response {
    s.http.get(s.root(path)).send().await.expect("the request is answered")
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers().get(name).unwrap_or_else(|| panic!("no {name} header")).to_str().unwrap()
}

#[tokio::test]
async fn the_index_is_served_with_a_strict_content_security_policy() {
    let s = TestServer::start().await.unwrap();
    for path in ["/console", "/console/", "/console/index.html"] {
        let r = get(&s, path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8", "{path}");
        assert_eq!(header(&r, "cache-control"), "no-cache", "{path}");
        assert_eq!(header(&r, "x-content-type-options"), "nosniff");
        let csp = header(&r, "content-security-policy").to_owned();
        assert!(csp.starts_with("default-src 'self'"), "{csp}");
        assert!(csp.contains("script-src 'self';"), "no inline scripts: {csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        let html = r.text().await.unwrap();
        assert!(html.contains("<title>Ferrosync console</title>"), "{path}");
        assert!(html.contains(r#"<script type="module" src="/console/assets/js/app.js"></script>"#));
        // No inline script or style: the policy would refuse it.
        assert!(!html.contains("<script>") && !html.contains("style="), "inline code in index.html");
    }
}

#[tokio::test]
async fn assets_have_their_content_types_and_revalidate_by_etag() {
    let s = TestServer::start().await.unwrap();
    for (path, content_type) in [
        ("/console/assets/style.css", "text/css; charset=utf-8"),
        ("/console/assets/js/app.js", "text/javascript; charset=utf-8"),
        ("/console/assets/js/views/objects.js", "text/javascript; charset=utf-8"),
        ("/console/assets/favicon.svg", "image/svg+xml"),
    ] {
        let r = get(&s, path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(header(&r, "content-type"), content_type, "{path}");
        assert_eq!(header(&r, "cache-control"), "no-cache", "{path}");
        let etag = header(&r, "etag").to_owned();
        assert!(!r.bytes().await.unwrap().is_empty(), "{path}");

        let again = s.http.get(s.root(path)).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(again.status(), 304, "{path} with its ETag");
        assert!(again.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn every_module_the_page_imports_is_served() {
    let s = TestServer::start().await.unwrap();
    // Follow the import graph from app.js: a module missing from the embedded files would
    // break the page only in a browser.
    let mut pending = vec!["/console/assets/js/app.js".to_owned()];
    let mut seen = std::collections::BTreeSet::new();
    let import = regex::Regex::new(r#"(?m)^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'"#).unwrap();
    while let Some(path) = pending.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let r = get(&s, &path).await;
        assert_eq!(r.status(), 200, "{path}");
        let source = r.text().await.unwrap();
        for found in import.captures_iter(&source) {
            let base = path.rsplit_once('/').unwrap().0;
            let mut parts: Vec<&str> = base.split('/').collect();
            for piece in found[1].split('/') {
                match piece {
                    "." => {}
                    ".." => {
                        parts.pop();
                    }
                    other => parts.push(other),
                }
            }
            pending.push(parts.join("/"));
        }
    }
    assert!(seen.len() >= 10, "the page's modules: {seen:?}");
}

#[tokio::test]
async fn deep_links_get_the_page_and_missing_assets_a_404() {
    let s = TestServer::start().await.unwrap();
    for path in [
        "/console/services",
        "/console/services/chat/documents/settings.v2",
        "/console/inspector/chat",
        "/console/keys",
    ] {
        let r = get(&s, path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8", "{path}");
        assert!(r.headers().contains_key("content-security-policy"));
        assert!(r.text().await.unwrap().contains("<title>Ferrosync console</title>"), "{path}");
    }
    for path in ["/console/assets/nope.js", "/console/assets/js/views/nope.js", "/console/assets/"] {
        let r = get(&s, path).await;
        assert_eq!(r.status(), 404, "{path}");
        assert!(!r.text().await.unwrap().contains("<html"), "{path}");
    }
    // Only GET (and HEAD) are served.
    let r = send(s.http.request(Method::POST, s.root("/console/"))).await;
    assert_eq!(r.status, 405);
    let head = s.http.head(s.root("/console/assets/style.css")).send().await.unwrap();
    assert_eq!(head.status(), 200);
}

#[tokio::test]
async fn the_console_needs_no_credentials_but_the_api_it_calls_does() {
    let s = TestServer::start().await.unwrap();
    assert_eq!(get(&s, "/console/").await.status(), 200);
    let r = send(s.http.get(s.api("/services"))).await;
    assert_eq!(r.status, 401);
}
