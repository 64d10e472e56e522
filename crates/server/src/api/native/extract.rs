//! Extractors that speak the native error format: authentication, JSON bodies, query strings
//! and If-Match.

use super::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use ferrosync_core::ErrorCode;
use ferrosync_core::auth::Principal;
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// The authenticated principal: Basic (account or API key) or Bearer (access token).
pub struct Auth(pub Principal);

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "missing Authorization header (Basic or Bearer)"))?
            .to_str()
            .map_err(|_| ApiError::new(ErrorCode::Unauthenticated, "Authorization header is not ASCII"))?;
        authenticate(state, value).await.map(Auth)
    }
}

/// Reads an `Authorization` header value.
pub async fn authenticate(state: &AppState, value: &str) -> Result<Principal, ApiError> {
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => {
            let (user, password) = crate::api::http::decode_basic(rest).ok_or_else(|| {
                ApiError::new(ErrorCode::Unauthenticated, "Basic credentials must be base64 of user:password")
            })?;
            Ok(state.engine.authenticate_basic(&user, &password).await?)
        }
        "bearer" => Ok(state.engine.authenticate_token(rest.trim()).await?),
        _ => Err(ApiError::new(ErrorCode::Unauthenticated, "Authorization must use the Basic or Bearer scheme")),
    }
}

/// A JSON body whose rejections (malformed JSON, a body that is not an object, unknown or
/// missing fields, too large) come back in the native error format, naming the problem.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<ObjectBody<T>>::from_request(req, state).await {
            Ok(axum::Json(ObjectBody(v))) => Ok(JsonBody(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// `T` read from a JSON object only. Every native body is an object, but serde's derived
/// structs also accept an array of their fields in order (`[null, null]` would create a
/// service), and `Value` accepts anything.
struct ObjectBody<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectBody<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOnly<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("the body to be a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer.deserialize_map(ObjectOnly(PhantomData)).map(ObjectBody)
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::new(ErrorCode::UnsupportedMediaType, "the body must be JSON with Content-Type: application/json")
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::new(ErrorCode::InvalidRequest, format!("malformed JSON: {}", inner(&e)))
        }
        JsonRejection::JsonDataError(e) => ApiError::new(ErrorCode::InvalidField, inner(&e)),
        JsonRejection::BytesRejection(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(ErrorCode::TooLarge, "the request body is larger than the 64 KiB limit")
        }
        other => ApiError::new(ErrorCode::InvalidRequest, other.body_text()),
    }
}

/// serde's own message ("unknown field `x`, expected one of …") without axum's prefix.
fn inner(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg = s.to_string();
        source = s.source();
    }
    msg
}

/// Query parameters with rejections in the native error format.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(QueryParams(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(ApiError::new(ErrorCode::InvalidField, format!("query string: {}", inner(&e))))
            }
            Err(other) => Err(ApiError::new(ErrorCode::InvalidRequest, other.body_text())),
        }
    }
}

/// Whether a write's answer may leave out its body (`Prefer: return=minimal`).
pub struct PreferMinimal(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for PreferMinimal {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PreferMinimal(crate::api::http::prefers_minimal(&parts.headers)))
    }
}

/// The optional `If-Match` revision of a conditional write.
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        crate::api::http::if_match(&parts.headers).map(IfMatch).map_err(|raw| {
            ApiError::new(ErrorCode::InvalidIfMatch, format!("If-Match must be a revision number, got '{raw}'"))
        })
    }
}
