//! The OpenAPI 3.1 document of the native API, generated from the handlers' annotations.

use super::{admin, changes, error, indexes, items, keys, objects, permissions, services, streams, types};
use axum::Json;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Ferrosync native API", description = "Documents, lists, maps and streams with a change log."),
    paths(
        services::create, services::list, services::fetch, services::update, services::remove,
        objects::open, objects::list, objects::fetch, objects::update, objects::remove,
        items::create, items::list, items::fetch, items::set, items::remove,
        streams::publish,
        permissions::list, permissions::fetch, permissions::set, permissions::remove,
        keys::create, keys::list, keys::fetch, keys::remove, keys::mint,
        changes::poll,
        indexes::list, indexes::fetch, indexes::put, indexes::remove, indexes::query,
        admin::cognito_pools, admin::cognito_pool, admin::cognito_identities, admin::cognito_datasets,
        admin::cognito_records, admin::matrix_users, admin::matrix_rooms,
    ),
    components(schemas(
        error::ErrorBody, types::ServiceView, types::ObjectView, types::ItemView, types::MessageView,
        types::PermissionView, types::ApiKeyView, types::TokenView, types::ChangesView, types::PageMeta,
        types::AddListItem, types::CreateMapItem, types::Written, types::Published, types::ItemCreated,
        types::MessagePublished,
        indexes::IndexView, indexes::PutIndex, indexes::QueryBody, indexes::QueryView, indexes::QueryItemView,
        admin::CognitoPoolView, admin::CognitoLoginView, admin::CognitoIdentityView, admin::CognitoDatasetView,
        admin::CognitoRecordView, admin::MatrixUserView, admin::MatrixRoomView,
    )),
    modifiers(&Security, &Operations),
    security(("basic" = []), ("bearer" = [])),
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("basic", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// What the handlers' annotations leave out of each operation: a unique `operationId` (the
/// handlers' names repeat across tags), a description on every response (OpenAPI requires
/// one), and the error every operation can answer with, in the native format.
struct Operations;

impl utoipa::Modify for Operations {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                let tag = operation.tags.as_ref().and_then(|t| t.first()).cloned().unwrap_or_default();
                if let Some(id) = operation.operation_id.as_mut()
                    && !tag.is_empty()
                {
                    *id = format!("{tag}_{id}");
                }
                for (status, response) in &mut operation.responses.responses {
                    if let RefOr::T(response) = response
                        && response.description.is_empty()
                    {
                        response.description = describe(status);
                    }
                }
                let error = ResponseBuilder::new()
                    .description("Any other error: bad input, credentials, something missing, a conflict, …")
                    .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorBody"))))
                    .build();
                operation.responses.responses.entry("default".to_owned()).or_insert(RefOr::T(error));
            }
        }
    }
}

/// The reason phrase of a status code, e.g. "Created" for 201.
fn describe(status: &str) -> String {
    status
        .parse::<u16>()
        .ok()
        .and_then(|code| axum::http::StatusCode::from_u16(code).ok())
        .and_then(|code| code.canonical_reason())
        .unwrap_or(status)
        .to_owned()
}

/// The document as pretty JSON; `docs/openapi.json` holds a committed copy.
pub fn document() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_document_is_current() {
        let committed = include_str!("../../../../../docs/openapi.json");
        assert!(
            committed.trim_end() == super::document().trim_end(),
            "docs/openapi.json is stale: run `cargo run -p ferrosync-cli -- openapi > docs/openapi.json`"
        );
    }
}
