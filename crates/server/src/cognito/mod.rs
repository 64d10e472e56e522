//! What Cognito Sync does after a write, in the background: Cognito Streams (a record per
//! synchronization, and bulk publishes of every dataset) and push sync (silent pushes to an
//! identity's other devices). Both follow the pool's change log as [`crate::logfeed`]
//! consumers, so nothing acknowledged is left unpublished by a crash or a restart.

pub mod publisher;
pub mod record;
pub mod sink;

pub use publisher::spawn;
pub use sink::StreamSettings;

/// Tunables of the Cognito background work.
#[derive(Debug, Clone, Default)]
pub struct CognitoSettings {
    pub streams: StreamSettings,
    /// Push-sync providers, named by the last segment of the pools' ApplicationArns.
    pub push: crate::push::PushSettings,
    /// Retries of one stream record or push.
    pub retry: crate::logfeed::RetryPolicy,
}
