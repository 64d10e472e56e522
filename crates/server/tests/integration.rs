//! Ferrosync's server end to end: in-process servers driven over real HTTP (reqwest) and real
//! WebSockets (tokio-tungstenite). Every wait is bounded by a timeout.
//!
//! The whole suite runs twice: on the embedded store (`sqlite::…`) and on PostgreSQL
//! (`postgres::…`, skipped with a note unless `FERROSYNC_TEST_POSTGRES` names a server).

#![allow(clippy::unwrap_used, clippy::expect_used)]
// Each feature file is compiled once per store on purpose: same tests, another `TestServer`.
#![allow(clippy::duplicate_mod)]

// Crate roots resolve `mod` beside themselves (tests/), where other test binaries live:
// point each module at its file under tests/integration/.
#[path = "integration/common.rs"]
mod common;

/// The suite on the embedded store.
#[path = "integration"]
mod sqlite {
    mod common {
        pub use crate::common::*;
        pub type TestServer = crate::common::Server<false>;
    }
    #[path = "acl.rs"]
    mod acl;
    #[path = "changes.rs"]
    mod changes;
    #[path = "cognito_identity.rs"]
    mod cognito_identity;
    #[path = "cognito_streams.rs"]
    mod cognito_streams;
    #[path = "cognito_sync.rs"]
    mod cognito_sync;
    #[path = "cognito_sync_wire.rs"]
    mod cognito_sync_wire;
    #[path = "cognito_trigger.rs"]
    mod cognito_trigger;
    #[path = "configured_indexes.rs"]
    mod configured_indexes;
    #[path = "credentials.rs"]
    mod credentials;
    #[path = "linearizability.rs"]
    mod linearizability;
    #[path = "matrix.rs"]
    mod matrix;
    #[path = "matrix_e2ee.rs"]
    mod matrix_e2ee;
    #[path = "matrix_push_rules.rs"]
    mod matrix_push_rules;
    #[path = "matrix_sync.rs"]
    mod matrix_sync;
    #[path = "queries.rs"]
    mod queries;
    #[path = "rest.rs"]
    mod rest;
    #[path = "ttl.rs"]
    mod ttl;
    #[path = "twilio_proxy.rs"]
    mod twilio_proxy;
    #[path = "twilio_proxy_relay.rs"]
    mod twilio_proxy_relay;
    #[path = "twilio_proxy_sessions.rs"]
    mod twilio_proxy_sessions;
    #[path = "twilio_sync.rs"]
    mod twilio_sync;
    #[path = "twilsock.rs"]
    mod twilsock;
    #[path = "twilsock_queries.rs"]
    mod twilsock_queries;
    #[path = "webhooks.rs"]
    mod webhooks;
    #[path = "websocket.rs"]
    mod websocket;
    #[path = "websocket_writes.rs"]
    mod websocket_writes;
}

/// The same suite on PostgreSQL.
#[path = "integration"]
mod postgres {
    mod common {
        pub use crate::common::*;
        pub type TestServer = crate::common::Server<true>;
    }
    #[path = "acl.rs"]
    mod acl;
    #[path = "changes.rs"]
    mod changes;
    #[path = "cognito_identity.rs"]
    mod cognito_identity;
    #[path = "cognito_streams.rs"]
    mod cognito_streams;
    #[path = "cognito_sync.rs"]
    mod cognito_sync;
    #[path = "cognito_sync_wire.rs"]
    mod cognito_sync_wire;
    #[path = "cognito_trigger.rs"]
    mod cognito_trigger;
    #[path = "configured_indexes.rs"]
    mod configured_indexes;
    #[path = "credentials.rs"]
    mod credentials;
    #[path = "linearizability.rs"]
    mod linearizability;
    #[path = "matrix.rs"]
    mod matrix;
    #[path = "matrix_e2ee.rs"]
    mod matrix_e2ee;
    #[path = "matrix_push_rules.rs"]
    mod matrix_push_rules;
    #[path = "matrix_sync.rs"]
    mod matrix_sync;
    #[path = "queries.rs"]
    mod queries;
    #[path = "rest.rs"]
    mod rest;
    #[path = "ttl.rs"]
    mod ttl;
    #[path = "twilio_proxy.rs"]
    mod twilio_proxy;
    #[path = "twilio_proxy_relay.rs"]
    mod twilio_proxy_relay;
    #[path = "twilio_proxy_sessions.rs"]
    mod twilio_proxy_sessions;
    #[path = "twilio_sync.rs"]
    mod twilio_sync;
    #[path = "twilsock.rs"]
    mod twilsock;
    #[path = "twilsock_queries.rs"]
    mod twilsock_queries;
    #[path = "webhooks.rs"]
    mod webhooks;
    #[path = "websocket.rs"]
    mod websocket;
    #[path = "websocket_writes.rs"]
    mod websocket_writes;
}
