//! What a store supplies to the rules inside one write transaction: rows, read and written.

use super::{ApiKeyRecord, StoreError};
use crate::cognito::{CognitoIdentity, Dataset, Device, IdentityPool, Login, Platform};
use crate::model::{Item, ItemKey, ObjectKind, ObjectRef, Permission, Service, SyncObject};
use crate::sid::Sid;
use crate::timestamp::Timestamp;

/// Row access inside one write transaction. Implemented by each store; driven by
/// [`crate::rules::apply`].
pub trait TxState {
    fn epoch(&self) -> &str;
    fn service(&mut self, r: &ObjectRef) -> Result<Option<Service>, StoreError>;
    fn put_service(&mut self, service: &Service) -> Result<(), StoreError>;
    fn delete_service(&mut self, sid: &Sid) -> Result<(), StoreError>;
    fn object(&mut self, service: &Sid, kind: ObjectKind, r: &ObjectRef) -> Result<Option<SyncObject>, StoreError>;
    fn object_by_sid(&mut self, sid: &Sid) -> Result<Option<SyncObject>, StoreError>;
    fn put_object(&mut self, object: &SyncObject) -> Result<(), StoreError>;
    fn delete_object(&mut self, sid: &Sid) -> Result<(), StoreError>;
    fn item(&mut self, object: &Sid, key: &ItemKey) -> Result<Option<Item>, StoreError>;
    /// Several items of one object, in the order of `keys`; a store may read them together.
    fn items_at(&mut self, object: &Sid, keys: &[ItemKey]) -> Result<Vec<Option<Item>>, StoreError> {
        keys.iter().map(|k| self.item(object, k)).collect()
    }
    fn put_item(&mut self, item: &Item) -> Result<(), StoreError>;
    fn delete_item(&mut self, object: &Sid, key: &ItemKey) -> Result<(), StoreError>;
    fn permission(&mut self, object: &Sid, identity: &str) -> Result<Option<Permission>, StoreError>;
    fn put_permission(&mut self, permission: &Permission) -> Result<(), StoreError>;
    fn delete_permission(&mut self, object: &Sid, identity: &str) -> Result<bool, StoreError>;
    /// Allocates the service's next sequence number inside the transaction, so commit order
    /// is sequence order.
    fn next_seq(&mut self, service: &Sid) -> Result<u64, StoreError>;
    /// Stores an event under the sequence number `next_seq` gave; `json` is its one
    /// serialisation, shared with every reader.
    fn insert_event(
        &mut self,
        service: &Sid,
        seq: u64,
        object: &Sid,
        date: Timestamp,
        json: &str,
    ) -> Result<(), StoreError>;
    /// Writes a stored object and appends the event `seq` that records the change, as
    /// `put_object` then `insert_event` would; a store may do both in fewer steps (SQLite
    /// updates the object's row once, not once for its state and again for its stream).
    /// `data`, when given, is the object's data as JSON text (the event's own, which is the
    /// object's), for a store that keeps it as text to take rather than serialise it again.
    fn put_object_with_event(
        &mut self,
        object: &SyncObject,
        seq: u64,
        date: Timestamp,
        json: &str,
        data: Option<&str>,
    ) -> Result<(), StoreError>;
    fn expired_objects(&mut self, now: Timestamp, limit: u32) -> Result<Vec<SyncObject>, StoreError>;
    fn expired_items(&mut self, now: Timestamp, limit: u32) -> Result<Vec<Item>, StoreError>;
    /// Deletes events dated before `before`, recording per service the highest pruned seq.
    fn prune_events(&mut self, before: Timestamp) -> Result<u64, StoreError>;
    fn api_key(&mut self, sid: &Sid) -> Result<Option<ApiKeyRecord>, StoreError>;
    fn put_api_key(&mut self, key: &ApiKeyRecord) -> Result<(), StoreError>;
    fn delete_api_key(&mut self, sid: &Sid) -> Result<bool, StoreError>;
    /// Starts a change-log consumer (webhooks, Cognito streams, …) on a service after sequence
    /// number `start` (`Some`), or ends it (`None`), inside the transaction that turns it on or off.
    fn set_log_cursor(&mut self, consumer: &str, service: &Sid, start: Option<u64>) -> Result<(), StoreError>;

    // Matrix accounts.
    fn matrix_user(&mut self, user_id: &str) -> Result<Option<crate::matrix::MatrixUser>, StoreError>;
    fn put_matrix_user(&mut self, user: &crate::matrix::MatrixUser) -> Result<(), StoreError>;
    fn matrix_device(
        &mut self,
        user_id: &str,
        device_id: &str,
    ) -> Result<Option<crate::matrix::MatrixDevice>, StoreError>;
    fn put_matrix_device(&mut self, device: &crate::matrix::MatrixDevice) -> Result<(), StoreError>;
    fn matrix_filter(&mut self, user_id: &str, filter_id: &str) -> Result<Option<String>, StoreError>;
    fn put_matrix_filter(&mut self, user_id: &str, filter_id: &str, filter: &str) -> Result<(), StoreError>;
    fn matrix_media(&mut self, media_id: &str) -> Result<Option<crate::matrix::MatrixMedia>, StoreError>;
    fn put_matrix_media(&mut self, media: &crate::matrix::MatrixMedia) -> Result<(), StoreError>;
    /// Deletes one device of a user, or all of them; how many went.
    fn delete_matrix_devices(&mut self, user_id: &str, device_id: Option<&str>) -> Result<u64, StoreError>;

    // Cognito: pools, identities and their logins, dataset metadata, push devices.
    fn identity_pool(&mut self, pool_id: &str) -> Result<Option<IdentityPool>, StoreError>;
    fn put_identity_pool(&mut self, pool: &IdentityPool) -> Result<(), StoreError>;
    /// The identity with its logins.
    fn cognito_identity(&mut self, identity_id: &str) -> Result<Option<CognitoIdentity>, StoreError>;
    /// Writes the identity's own fields (its logins are written with [`TxState::put_login`]).
    fn put_cognito_identity(&mut self, identity: &CognitoIdentity) -> Result<(), StoreError>;
    /// Deletes the identity with its logins, devices (and their subscriptions) and dataset rows.
    fn delete_cognito_identity(&mut self, identity_id: &str) -> Result<(), StoreError>;
    /// The identity a login is linked to.
    fn login_owner(&mut self, pool_id: &str, login: &Login) -> Result<Option<String>, StoreError>;
    /// Links a login to an identity, moving it from any other.
    fn put_login(&mut self, pool_id: &str, login: &Login, identity_id: &str) -> Result<(), StoreError>;
    fn delete_login(&mut self, pool_id: &str, login: &Login) -> Result<bool, StoreError>;
    fn dataset(&mut self, identity_id: &str, name: &str) -> Result<Option<Dataset>, StoreError>;
    /// Every dataset row of an identity, deleted ones included, by name.
    fn datasets(&mut self, identity_id: &str) -> Result<Vec<Dataset>, StoreError>;
    fn put_dataset(&mut self, dataset: &Dataset) -> Result<(), StoreError>;
    fn delete_dataset(&mut self, identity_id: &str, name: &str) -> Result<(), StoreError>;
    fn device(&mut self, device_id: &str) -> Result<Option<Device>, StoreError>;
    fn device_by_token(
        &mut self,
        identity_id: &str,
        platform: Platform,
        token: &str,
    ) -> Result<Option<Device>, StoreError>;
    fn put_device(&mut self, device: &Device) -> Result<(), StoreError>;
    /// Deletes an identity's devices and their subscriptions.
    fn delete_devices(&mut self, identity_id: &str) -> Result<(), StoreError>;
    fn set_subscription(
        &mut self,
        identity_id: &str,
        dataset: &str,
        device_id: &str,
        subscribed: bool,
    ) -> Result<(), StoreError>;
}
