//! Twilio's request parameters: form-encoded bodies and query strings with PascalCase names,
//! where an array is the same name repeated. Values are read by name with typed accessors
//! whose errors name the parameter.

use super::error::{TwilioError, code};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use bytes::Bytes;
use serde_json::Value;

/// Parameters in the order they arrived. Unknown names are ignored, as Twilio does; an empty
/// value counts as absent (the helper libraries send unset parameters not at all, forms from
/// browsers send them empty).
#[derive(Debug, Default, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn parse(raw: &[u8]) -> Self {
        Params { pairs: form_urlencoded::parse(raw).map(|(k, v)| (k.into_owned(), v.into_owned())).collect() }
    }

    /// The first non-empty value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.as_str())
    }

    /// Whether `name` was sent at all, even empty (an empty value clears some settings).
    pub fn sent(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    /// Every value of a repeated parameter, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs.iter().filter(move |(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.as_str())
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }

    pub fn required(&self, name: &str) -> Result<&str, TwilioError> {
        self.get(name).ok_or_else(|| TwilioError::invalid(name, "is required"))
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, TwilioError> {
        self.get(name)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(TwilioError::invalid(name, format!("must be true or false, got '{v}'"))),
            })
            .transpose()
    }

    pub fn u64(&self, name: &str) -> Result<Option<u64>, TwilioError> {
        self.get(name)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| TwilioError::invalid(name, format!("must be a non-negative integer, got '{v}'")))
            })
            .transpose()
    }

    /// A TTL in seconds: non-integers are Twilio's invalid-TTL error, like out-of-range values.
    pub fn ttl(&self, name: &str) -> Result<Option<u64>, TwilioError> {
        self.get(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    TwilioError::new(
                        code::INVALID_TTL,
                        format!("{name}: must be an integer number of seconds between 0 and 31536000, got '{v}'"),
                    )
                })
            })
            .transpose()
    }

    /// A JSON value sent as a string (`Data`).
    pub fn json(&self, name: &str) -> Result<Option<Value>, TwilioError> {
        self.get(name)
            .map(|v| {
                // Read as the native face reads a document's data (members sorted once).
                serde_json::from_str::<ferrosync_protocol::value::Read>(v)
                    .map(|ferrosync_protocol::value::Read(v)| v)
                    .map_err(|e| TwilioError::invalid(name, format!("is not valid JSON: {e}")))
            })
            .transpose()
    }
}

/// A form-encoded request body.
pub struct Form(pub Params);

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = TwilioError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                TwilioError::new(
                    code::TOO_LARGE,
                    format!("the request body is larger than the {} KiB limit", BODY_LIMIT / 1024),
                )
            } else {
                TwilioError::invalid("body", e.body_text())
            }
        })?;
        if !form && !bytes.is_empty() {
            return Err(TwilioError::invalid(
                "Content-Type",
                "parameters must be sent as application/x-www-form-urlencoded",
            ));
        }
        Ok(Form(Params::parse(&bytes)))
    }
}

/// Request bodies above this are refused before parsing: 16 KiB of JSON percent-encoded can
/// triple in size.
pub const BODY_LIMIT: usize = 128 * 1024;

/// Middleware: the whole (bounded) body is read before authentication and the other
/// extractors run (see [`crate::api::http::read_body_first`]).
pub async fn read_body_first(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    crate::api::http::read_body_first(req, next, BODY_LIMIT, || {
        TwilioError::new(
            code::TOO_LARGE,
            format!("the request body is larger than the {} KiB limit", BODY_LIMIT / 1024),
        )
        .into_response()
    })
    .await
}

/// The query string's parameters.
pub struct Query(pub Params);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = TwilioError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Query(Params::parse(parts.uri.query().unwrap_or_default().as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_twilio_python_forms() {
        let p = Params::parse(
            b"UniqueName=Order+%231&Data=%7B%22a%22%3A+1%2C+%22s%22%3A+%22%5Cu00e9%26%3D%22%7D&Ttl=3600&P=1&P=2&Empty=",
        );
        assert_eq!(p.get("UniqueName"), Some("Order #1"));
        assert_eq!(p.json("Data").expect("json"), Some(serde_json::json!({"a": 1, "s": "é&="})));
        assert_eq!(p.ttl("Ttl").expect("ttl"), Some(3600));
        assert_eq!(p.all("P").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(p.get("Empty"), None);
        assert!(p.sent("Empty"));
        assert_eq!(p.get("Missing"), None);
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let p = Params::parse(b"Ttl=abc&Read=yes&Data=%7Bnope&PageSize=-1");
        assert_eq!(p.ttl("Ttl").expect_err("bad ttl").code, 54011);
        assert!(p.bool("Read").expect_err("bad bool").message.starts_with("Read:"));
        assert!(p.json("Data").expect_err("bad json").message.starts_with("Data: is not valid JSON"));
        assert!(p.u64("PageSize").expect_err("negative").message.starts_with("PageSize:"));
        assert_eq!(p.required("Key").expect_err("missing").message, "Key: is required");
    }
}
