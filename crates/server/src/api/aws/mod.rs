//! What the AWS faces (Cognito Sync, rest-json; Cognito Identity, awsJson1.1) share: SigV4
//! verification, AWS's error wire formats, and request validation driven by the botocore
//! service models.

pub mod error;
pub mod keys;
pub mod model;
pub mod sigv4;
