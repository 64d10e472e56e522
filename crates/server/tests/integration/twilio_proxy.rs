//! The Twilio Proxy REST face over real HTTP: Proxy services with Twilio's wire conventions
//! (forms, Twilio's error body, `meta` paging with absolute URLs, unique names).

use super::common::{Resp, TestServer, form_body, send};
use reqwest::Method;
use serde_json::json;

const MOUNT: &str = "/twilio/proxy/v1";

async fn proxy(s: &TestServer, method: Method, path: &str, form: &[(&str, &str)]) -> Resp {
    let req = s
        .http
        .request(method, format!("{}{MOUNT}{path}", s.server.url()))
        .basic_auth(&s.account_sid, Some(&s.auth_token))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(form));
    send(req).await
}

fn error(r: &Resp, status: u16, code: u64) {
    assert_eq!((r.status, &r.body["code"]), (status, &json!(code)), "{}", r.text);
    assert_eq!(r.body["more_info"], format!("https://www.twilio.com/docs/errors/{code}"));
}

#[tokio::test]
async fn proxy_services_are_created_read_renamed_listed_and_deleted() {
    let Some(s) = TestServer::start().await else { return };
    let made = proxy(
        &s,
        Method::POST,
        "/Services",
        &[("UniqueName", "rides"), ("DefaultTtl", "3600"), ("CallbackUrl", "https://example.com/cb")],
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.text);
    let svc = made.body["sid"].as_str().expect("a sid").to_owned();
    assert!(svc.starts_with("KS") && svc.len() == 34, "{svc}");
    let url = format!("{}{MOUNT}/Services/{svc}", s.server.url());
    assert_eq!((&made.body["url"], &made.body["links"]["sessions"]), (&json!(url), &json!(format!("{url}/Sessions"))));
    assert_eq!(
        (&made.body["default_ttl"], &made.body["geo_match_level"], &made.body["number_selection_behavior"]),
        (&json!(3600), &json!("country"), &json!("prefer-sticky"))
    );
    assert_eq!(made.body["account_sid"], s.account_sid.as_str());
    assert!(made.body["intercept_callback_url"].is_null());

    // Unique names are unique; fetch by SID or by unique name.
    error(&proxy(&s, Method::POST, "/Services", &[("UniqueName", "rides")]).await, 409, 54301);
    assert_eq!(proxy(&s, Method::GET, "/Services/rides", &[]).await.body["sid"], svc.as_str());
    let renamed = proxy(
        &s,
        Method::POST,
        &format!("/Services/{svc}"),
        &[("UniqueName", "trips"), ("GeoMatchLevel", "area-code"), ("CallbackUrl", "")],
    )
    .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(
        (&renamed.body["unique_name"], &renamed.body["geo_match_level"]),
        (&json!("trips"), &json!("area-code"))
    );
    assert!(renamed.body["callback_url"].is_null(), "sent empty, it is cleared");
    assert_eq!(renamed.body["default_ttl"], 3600, "what was not sent stays");
    error(&proxy(&s, Method::GET, "/Services/rides", &[]).await, 404, 20404);
    assert_eq!(
        proxy(&s, Method::POST, "/Services", &[("UniqueName", "rides")]).await.status,
        201,
        "the old name is free"
    );

    // Bad input names its field and changes nothing.
    for (form, field) in [
        (vec![("FriendlyName", "x")], "UniqueName"),
        (vec![("UniqueName", "g"), ("GeoMatchLevel", "planet")], "GeoMatchLevel"),
        (vec![("UniqueName", "n"), ("NumberSelectionBehavior", "random")], "NumberSelectionBehavior"),
        (vec![("UniqueName", "u"), ("InterceptCallbackUrl", "ftp://x")], "InterceptCallbackUrl"),
        (vec![("UniqueName", "t"), ("DefaultTtl", "soon")], "DefaultTtl"),
        (vec![("UniqueName", "c"), ("ChatInstanceSid", "KS0")], "ChatInstanceSid"),
    ] {
        let r = proxy(&s, Method::POST, "/Services", &form).await;
        error(&r, 400, 20001);
        assert!(r.body["message"].as_str().is_some_and(|m| m.contains(field)), "{field}: {}", r.text);
    }
    let long = "x".repeat(192);
    error(&proxy(&s, Method::POST, "/Services", &[("UniqueName", long.as_str())]).await, 400, 20001);

    // Listing pages with absolute URLs under Proxy's key.
    let first = proxy(&s, Method::GET, "/Services?PageSize=1", &[]).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["meta"]["key"], "services");
    assert_eq!(first.body["services"].as_array().map(Vec::len), Some(1));
    let next = first.body["meta"]["next_page_url"].as_str().expect("a next page").to_owned();
    let second = send(s.http.get(&next).basic_auth(&s.account_sid, Some(&s.auth_token))).await;
    assert_eq!(second.body["services"].as_array().map(Vec::len), Some(1), "{}", second.text);
    assert_ne!(second.body["services"][0]["sid"], first.body["services"][0]["sid"]);
    error(&proxy(&s, Method::GET, "/Services?PageSize=1001", &[]).await, 400, 20001);

    assert_eq!(proxy(&s, Method::DELETE, &format!("/Services/{svc}"), &[]).await.status, 204);
    error(&proxy(&s, Method::GET, &format!("/Services/{svc}"), &[]).await, 404, 20404);
    error(&proxy(&s, Method::DELETE, &format!("/Services/{svc}"), &[]).await, 404, 20404);
    assert_eq!(
        proxy(&s, Method::POST, "/Services", &[("UniqueName", "trips")]).await.status,
        201,
        "freed by the delete"
    );
    let unauthenticated = send(s.http.get(format!("{}{MOUNT}/Services", s.server.url()))).await;
    error(&unauthenticated, 401, 20003);
}

#[tokio::test]
async fn a_number_belongs_to_one_pool_at_a_time() {
    let Some(s) = TestServer::start().await else { return };
    let svc = |name: &'static str| {
        let s = &s;
        async move {
            let r = proxy(s, Method::POST, "/Services", &[("UniqueName", name)]).await;
            assert_eq!(r.status, 201, "{}", r.text);
            r.body["sid"].as_str().unwrap_or_default().to_owned()
        }
    };
    let (a, b) = (svc("pool-a").await, svc("pool-b").await);
    let added =
        proxy(&s, Method::POST, &format!("/Services/{a}/PhoneNumbers"), &[("PhoneNumber", "+14155550100")]).await;
    assert_eq!(added.status, 201, "{}", added.text);
    let pn = added.body["sid"].as_str().expect("a sid").to_owned();
    assert!(pn.starts_with("PN"), "{pn}");
    assert_eq!(
        (&added.body["iso_country"], &added.body["is_reserved"], &added.body["in_use"], &added.body["service_sid"]),
        (&json!("US"), &json!(false), &json!(0), &json!(a))
    );
    assert_eq!(added.body["url"], format!("{}{MOUNT}/Services/{a}/PhoneNumbers/{pn}", s.server.url()));

    // Taken: by another service, or twice by the same.
    for owner in [&b, &a] {
        let again =
            proxy(&s, Method::POST, &format!("/Services/{owner}/PhoneNumbers"), &[("PhoneNumber", "+14155550100")])
                .await;
        error(&again, 400, 80601);
    }
    for bad in ["4155550100", "+0123", "+1415555010x", "+1234567890123456"] {
        let r = proxy(&s, Method::POST, &format!("/Services/{a}/PhoneNumbers"), &[("PhoneNumber", bad)]).await;
        error(&r, 400, 20001);
        assert!(r.body["message"].as_str().is_some_and(|m| m.contains("PhoneNumber")), "{}", r.text);
    }
    let unknown = format!("PN{}", "0".repeat(32));
    error(
        &proxy(&s, Method::POST, &format!("/Services/{a}/PhoneNumbers"), &[("Sid", unknown.as_str())]).await,
        400,
        20001,
    );

    // Fetch by SID or by the number; reserve; list.
    assert_eq!(
        proxy(&s, Method::GET, &format!("/Services/{a}/PhoneNumbers/{pn}"), &[]).await.body["phone_number"],
        "+14155550100"
    );
    assert_eq!(
        proxy(&s, Method::GET, &format!("/Services/{a}/PhoneNumbers/%2B14155550100"), &[]).await.body["sid"],
        pn.as_str()
    );
    error(&proxy(&s, Method::GET, &format!("/Services/{b}/PhoneNumbers/{pn}"), &[]).await, 404, 20404);
    let reserved =
        proxy(&s, Method::POST, &format!("/Services/{a}/PhoneNumbers/{pn}"), &[("IsReserved", "true")]).await;
    assert_eq!(reserved.body["is_reserved"], true, "{}", reserved.text);
    proxy(&s, Method::POST, &format!("/Services/{a}/PhoneNumbers"), &[("PhoneNumber", "+442071838750")]).await;
    let listed = proxy(&s, Method::GET, &format!("/Services/{a}/PhoneNumbers?PageSize=1"), &[]).await;
    assert_eq!(
        (&listed.body["meta"]["key"], listed.body["phone_numbers"].as_array().map(Vec::len)),
        (&json!("phone_numbers"), Some(1))
    );
    assert!(listed.body["meta"]["next_page_url"].is_string(), "{}", listed.text);

    // Removed from a: free for b, by its SID.
    assert_eq!(proxy(&s, Method::DELETE, &format!("/Services/{a}/PhoneNumbers/{pn}"), &[]).await.status, 204);
    let moved = proxy(&s, Method::POST, &format!("/Services/{b}/PhoneNumbers"), &[("Sid", pn.as_str())]).await;
    assert_eq!((moved.status, &moved.body["phone_number"]), (201, &json!("+14155550100")), "{}", moved.text);
    // Deleting b frees its numbers too.
    assert_eq!(proxy(&s, Method::DELETE, &format!("/Services/{b}"), &[]).await.status, 204);
    let back =
        proxy(&s, Method::POST, &format!("/Services/{a}/PhoneNumbers"), &[("PhoneNumber", "+14155550100")]).await;
    assert_eq!((back.status, &back.body["sid"]), (201, &json!(pn)), "the same number keeps its SID: {}", back.text);
    error(&proxy(&s, Method::GET, &format!("/Services/{b}/PhoneNumbers"), &[]).await, 404, 20404);
}

#[tokio::test]
async fn short_codes_have_a_pool_of_their_own() {
    let Some(s) = TestServer::start().await else { return };
    let made = proxy(&s, Method::POST, "/Services", &[("UniqueName", "codes")]).await;
    let svc = made.body["sid"].as_str().expect("a sid").to_owned();
    let added = proxy(&s, Method::POST, &format!("/Services/{svc}/ShortCodes"), &[("ShortCode", "12345")]).await;
    assert_eq!(added.status, 201, "{}", added.text);
    let sc = added.body["sid"].as_str().expect("a sid").to_owned();
    assert!(sc.starts_with("SC"), "{sc}");
    assert_eq!((&added.body["short_code"], &added.body["is_reserved"]), (&json!("12345"), &json!(false)));
    assert!(added.body.get("phone_number").is_none(), "{}", added.text);
    let again = proxy(&s, Method::POST, &format!("/Services/{svc}/ShortCodes"), &[("ShortCode", "12345")]).await;
    error(&again, 400, 80601);
    let bad = proxy(&s, Method::POST, &format!("/Services/{svc}/ShortCodes"), &[("ShortCode", "12")]).await;
    error(&bad, 400, 20001);
    assert!(bad.body["message"].as_str().is_some_and(|m| m.contains("ShortCode")), "{}", bad.text);
    let listed = proxy(&s, Method::GET, &format!("/Services/{svc}/ShortCodes"), &[]).await;
    assert_eq!(
        (&listed.body["meta"]["key"], &listed.body["short_codes"][0]["sid"]),
        (&json!("short_codes"), &json!(sc))
    );
    assert_eq!(
        proxy(&s, Method::GET, &format!("/Services/{svc}/PhoneNumbers"), &[]).await.body["phone_numbers"],
        json!([])
    );
    let reserved =
        proxy(&s, Method::POST, &format!("/Services/{svc}/ShortCodes/12345"), &[("IsReserved", "true")]).await;
    assert_eq!(reserved.body["is_reserved"], true, "{}", reserved.text);
    assert_eq!(proxy(&s, Method::DELETE, &format!("/Services/{svc}/ShortCodes/{sc}"), &[]).await.status, 204);
    let back = proxy(&s, Method::POST, &format!("/Services/{svc}/ShortCodes"), &[("Sid", sc.as_str())]).await;
    assert_eq!((back.status, &back.body["short_code"]), (201, &json!("12345")), "{}", back.text);
}
