//! Amazon Cognito Sync (2014-06-30), rest-json at the server root (`/identitypools/…`): each
//! request is routed, bound and validated through the botocore model, signed with SigV4
//! (scope service `cognito-sync`), and answered from the engine's Cognito API. Datasets are
//! Maps of the pool's service, so the native API and its change log see every record.

pub mod datasets;
pub mod error;
pub mod pools;
pub mod push;
pub mod records;
pub mod router;
pub mod trigger;
pub mod types;
pub mod usage;
