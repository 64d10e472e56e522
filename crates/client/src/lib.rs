//! The Rust client of Ferrosync's native API.
//!
//! One [`Client`] holds a REST client and one WebSocket. Handles on documents, lists, maps
//! and streams read and write over REST; their subscriptions ride the WebSocket, which
//! reconnects by itself with jittered backoff and resumes every subscription from the last
//! change it delivered, so each change arrives once, in order, however often the network
//! drops.
//!
//! ```no_run
//! use ferrosync_client::{Client, SyncEventKind};
//! use futures_util::StreamExt;
//!
//! # async fn demo(token: &str) -> ferrosync_client::Result<()> {
//! let client = Client::connect("http://127.0.0.1:7700", token).await?;
//! let presence = client.map("presence").await?;
//! let mut changes = presence.subscribe().await?;
//! presence.set(&client.identity(), serde_json::json!({"online": true})).await?;
//! while let Some(event) = changes.next().await {
//!     match event.kind {
//!         SyncEventKind::ItemAdded { item } | SyncEventKind::ItemUpdated { item, .. } => {
//!             println!("{} is here (local: {})", item.key, event.is_local)
//!         }
//!         SyncEventKind::ItemRemoved { key, .. } => println!("{key} left"),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! The wire types are those of `ferrosync-protocol`, which the server uses too.

mod cache;
mod changes;
mod client;
mod connection;
mod dataset;
mod error;
mod events;
mod http;
mod local;
mod objects;
mod offline;
mod paging;
mod query;
mod token;

pub use changes::{ChangeFeed, ChangesFrom};
pub use client::{Client, ClientBuilder, ClientEvent, ClientEvents, ConnectionState};
pub use dataset::{Dataset, Record, SyncReport};
pub use error::{ClientError, Result};
pub use events::{Item, ItemKey, SyncEvent, SyncEventKind};
pub use ferrosync_protocol::{Event, EventKind, ObjectKind, OpenMode, Order};
pub use objects::{Document, ItemsQuery, ObjectId, OpenOptions, Subscription, SyncList, SyncMap, SyncStream};
pub use offline::{Conflict, ConflictHandler, ReplayReport, Resolution};
pub use paging::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, Pager};
pub use query::{LiveQuery, LiveQueryEvent, QueryItem};
pub use token::TokenInfo;

/// The wire types, for callers that need them.
pub use ferrosync_protocol as protocol;
