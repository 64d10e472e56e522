//! The engine as the source of SigV4 signing secrets: developer credentials (the account's
//! AccountSid + AuthToken, API keys) and the temporary credentials of Cognito identities.

use super::sigv4::{AwsAuthError, SigningKeys, SigningSecret};
use ferrosync_core::auth::Principal;
use ferrosync_core::{CoreError, Engine};

pub struct EngineKeys<'a>(pub &'a Engine);

impl SigningKeys for EngineKeys<'_> {
    type Principal = Principal;

    async fn secret(
        &self,
        access_key_id: &str,
        session_token: Option<&str>,
    ) -> Result<SigningSecret<Principal>, AwsAuthError> {
        match self.0.aws_secret(access_key_id, session_token).await {
            Ok(found) => Ok(SigningSecret { secret: found.secret, principal: found.principal }),
            Err(CoreError::AccessTokenExpired) => Err(AwsAuthError::ExpiredToken),
            Err(CoreError::InvalidCredentials | CoreError::NotFound { .. } | CoreError::InvalidSid(_)) => {
                Err(AwsAuthError::UnrecognizedClient)
            }
            Err(other) => {
                tracing::warn!(error = %other, "cannot look up a signing secret");
                Err(AwsAuthError::Internal(other.to_string()))
            }
        }
    }
}
