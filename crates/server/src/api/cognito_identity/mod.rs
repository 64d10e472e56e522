//! AWS Cognito Identity (awsJson1.1): `POST /` with `X-Amz-Target:
//! AWSCognitoIdentityService.<Operation>` and a JSON body, over the engine's Cognito API. GetId,
//! GetCredentialsForIdentity and GetOpenIdToken are unsigned, as the Mobile SDKs call them; every
//! other operation is SigV4-signed (scope service `cognito-identity`) with developer credentials.
//! The OpenID signing keys are published under `/.well-known/` so that relying parties can
//! verify the tokens GetOpenIdToken issues.

pub mod developer;
pub mod error;
pub mod identities;
pub mod openid;
pub mod pools;
pub mod router;
pub mod tags;
pub mod types;
