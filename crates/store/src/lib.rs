//! Stores for Ferrosync: the embedded SQLite store (the default), the PostgreSQL store that
//! several nodes share, and the conformance suite every implementation of
//! [`ferrosync_core::store::Store`] must pass.

/// A `Store` impl whose reads run the `rows` function of the same name on a pooled connection
/// (the type's own `read`); the store supplies the rest (`epoch`, `ping`, `claim_meta`, …).
/// Both stores' impls come from here: only their `rows` modules and pools differ.
macro_rules! impl_store {
    ($ty:ty, $rows:ident, { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl ferrosync_core::store::Store for $ty {
            $($own)*

            // Bookkeeping writes (delivery leases, usage counters) are single statements outside
            // the writer's group commit: `bookkeep` runs each on a connection of the store's
            // own, off the runtime's threads.
            async fn take_log_lease(
                &self,
                consumer: &str,
                service: &Sid,
                owner: &str,
                now: Timestamp,
                until: Timestamp,
            ) -> Result<Option<u64>, StoreError> {
                let (consumer, service, owner) = (consumer.to_owned(), service.clone(), owner.to_owned());
                self.bookkeep(move |c| $rows::take_log_lease(c, &consumer, &service, &owner, now, until)).await
            }

            async fn advance_log_cursor(
                &self,
                consumer: &str,
                service: &Sid,
                owner: &str,
                seq: u64,
                until: Timestamp,
            ) -> Result<bool, StoreError> {
                let (consumer, service, owner) = (consumer.to_owned(), service.clone(), owner.to_owned());
                self.bookkeep(move |c| $rows::advance_log_cursor(c, &consumer, &service, &owner, seq, until)).await
            }

            async fn release_log_lease(&self, consumer: &str, service: &Sid, owner: &str) -> Result<(), StoreError> {
                let (consumer, service, owner) = (consumer.to_owned(), service.clone(), owner.to_owned());
                self.bookkeep(move |c| $rows::release_log_lease(c, &consumer, &service, &owner)).await
            }

            async fn count_sync_sessions(&self, counts: &[(String, u64)]) -> Result<(), StoreError> {
                let counts = counts.to_vec();
                self.bookkeep(move |c| $rows::count_sync_sessions(c, &counts)).await
            }

            fn observe_commits(&self, observer: std::sync::Weak<dyn ferrosync_core::store::CommitObserver>) {
                self.observers.add(observer);
            }

            async fn execute(&self, actor: Actor, mutation: Mutation) -> Result<Applied, CoreError> {
                self.write(actor, mutation).await
            }

            async fn service(&self, r: &ObjectRef) -> Result<Option<Service>, StoreError> {
                let r = r.clone();
                self.read(move |c| $rows::service(c, &r)).await
            }

            async fn services(&self, page: &PageRequest) -> Result<Vec<Service>, StoreError> {
                let page = page.clone();
                self.read(move |c| $rows::services(c, &page)).await
            }

            async fn object(
                &self,
                service: &Sid,
                kind: ObjectKind,
                r: &ObjectRef,
            ) -> Result<Option<SyncObject>, StoreError> {
                let (service, r) = (service.clone(), r.clone());
                self.read(move |c| $rows::object(c, &service, kind, &r)).await
            }

            async fn objects(
                &self,
                service: &Sid,
                kind: ObjectKind,
                page: &PageRequest,
            ) -> Result<Vec<SyncObject>, StoreError> {
                let (service, page) = (service.clone(), page.clone());
                self.read(move |c| $rows::objects(c, &service, kind, &page)).await
            }

            async fn item(&self, object: &Sid, key: &ItemKey) -> Result<Option<Item>, StoreError> {
                let (object, key) = (object.clone(), key.clone());
                self.read(move |c| $rows::item(c, &object, &key)).await
            }

            async fn named_item(
                &self,
                service: &Sid,
                kind: ObjectKind,
                r: &ObjectRef,
                key: &ItemKey,
            ) -> Result<Option<Item>, StoreError> {
                let (service, r, key) = (service.clone(), r.clone(), key.clone());
                self.read(move |c| $rows::named_item(c, &service, kind, &r, &key)).await
            }

            async fn items(
                &self,
                object: &Sid,
                kind: ObjectKind,
                page: &PageRequest,
            ) -> Result<Vec<Item>, StoreError> {
                let (object, page) = (object.clone(), page.clone());
                self.read(move |c| $rows::items(c, &object, kind, &page)).await
            }

            async fn permission(&self, object: &Sid, identity: &str) -> Result<Option<Permission>, StoreError> {
                let (object, identity) = (object.clone(), identity.to_owned());
                self.read(move |c| $rows::permission(c, &object, &identity)).await
            }

            async fn permissions(&self, object: &Sid) -> Result<Vec<Permission>, StoreError> {
                let object = object.clone();
                self.read(move |c| $rows::permissions(c, &object)).await
            }

            async fn events(
                &self,
                service: &Sid,
                after: u64,
                object: Option<&Sid>,
                limit: u32,
            ) -> Result<Vec<StoredEvent>, StoreError> {
                let (epoch, service, object) = (self.epoch.clone(), service.clone(), object.cloned());
                self.read(move |c| $rows::events(c, &epoch, &service, after, object.as_ref(), limit)).await
            }

            async fn api_key(&self, sid: &Sid) -> Result<Option<ApiKeyRecord>, StoreError> {
                let sid = sid.clone();
                self.read(move |c| $rows::api_key(c, &sid)).await
            }

            async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
                self.read($rows::api_keys).await
            }

            async fn log_cursors(&self, consumer: &str) -> Result<Vec<ferrosync_core::store::LogCursor>, StoreError> {
                let consumer = consumer.to_owned();
                self.read(move |c| $rows::log_cursors(c, &consumer)).await
            }

            async fn next_expiry(&self) -> Result<Option<Timestamp>, StoreError> {
                self.read(|c| $rows::next_expiry(c)).await
            }

            async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
                let key = key.to_owned();
                self.read(move |c| $rows::meta(c, &key)).await
            }

            async fn matrix_user(&self, user_id: &str) -> Result<Option<ferrosync_core::matrix::MatrixUser>, StoreError> {
                let user_id = user_id.to_owned();
                self.read(move |c| $rows::matrix_user(c, &user_id)).await
            }

            async fn matrix_users(&self, page: &PageRequest) -> Result<Vec<ferrosync_core::matrix::MatrixUser>, StoreError> {
                let page = page.clone();
                self.read(move |c| $rows::matrix_users(c, &page)).await
            }

            async fn matrix_device(
                &self,
                user_id: &str,
                device_id: &str,
            ) -> Result<Option<ferrosync_core::matrix::MatrixDevice>, StoreError> {
                let (user_id, device_id) = (user_id.to_owned(), device_id.to_owned());
                self.read(move |c| $rows::matrix_device(c, &user_id, &device_id)).await
            }

            async fn matrix_devices(&self, user_id: &str) -> Result<Vec<ferrosync_core::matrix::MatrixDevice>, StoreError> {
                let user_id = user_id.to_owned();
                self.read(move |c| $rows::matrix_devices(c, &user_id)).await
            }

            async fn matrix_media(&self, media_id: &str) -> Result<Option<ferrosync_core::matrix::MatrixMedia>, StoreError> {
                let media_id = media_id.to_owned();
                self.read(move |c| $rows::matrix_media(c, &media_id)).await
            }

            async fn matrix_filter(&self, user_id: &str, filter_id: &str) -> Result<Option<String>, StoreError> {
                let (user_id, filter_id) = (user_id.to_owned(), filter_id.to_owned());
                self.read(move |c| $rows::matrix_filter(c, &user_id, &filter_id)).await
            }

            async fn matrix_filters(&self, user_id: &str) -> Result<Vec<(String, String)>, StoreError> {
                let user_id = user_id.to_owned();
                self.read(move |c| $rows::matrix_filters(c, &user_id)).await
            }

            async fn matrix_media_after(
                &self,
                after: Option<&str>,
                limit: u32,
            ) -> Result<Vec<ferrosync_core::matrix::MatrixMedia>, StoreError> {
                let after = after.map(str::to_owned);
                self.read(move |c| $rows::matrix_media_after(c, after.as_deref(), limit)).await
            }

            async fn identity_pool(
                &self,
                pool_id: &str,
            ) -> Result<Option<ferrosync_core::cognito::IdentityPool>, StoreError> {
                let pool_id = pool_id.to_owned();
                self.read(move |c| $rows::identity_pool(c, &pool_id)).await
            }

            async fn identity_pools(
                &self,
                page: &PageRequest,
            ) -> Result<Vec<ferrosync_core::cognito::IdentityPool>, StoreError> {
                let page = page.clone();
                self.read(move |c| $rows::identity_pools(c, &page)).await
            }

            async fn cognito_identity(
                &self,
                identity_id: &str,
            ) -> Result<Option<ferrosync_core::cognito::CognitoIdentity>, StoreError> {
                let identity_id = identity_id.to_owned();
                self.read(move |c| $rows::cognito_identity(c, &identity_id)).await
            }

            async fn cognito_identities(
                &self,
                pool_id: &str,
                hide_disabled: bool,
                page: &PageRequest,
            ) -> Result<Vec<ferrosync_core::cognito::CognitoIdentity>, StoreError> {
                let (pool_id, page) = (pool_id.to_owned(), page.clone());
                self.read(move |c| $rows::cognito_identities(c, &pool_id, hide_disabled, &page)).await
            }

            async fn login_owner(
                &self,
                pool_id: &str,
                login: &ferrosync_core::cognito::Login,
            ) -> Result<Option<String>, StoreError> {
                let (pool_id, login) = (pool_id.to_owned(), login.clone());
                self.read(move |c| $rows::login_owner(c, &pool_id, &login)).await
            }

            async fn dataset(
                &self,
                identity_id: &str,
                name: &str,
            ) -> Result<Option<ferrosync_core::cognito::Dataset>, StoreError> {
                let (identity_id, name) = (identity_id.to_owned(), name.to_owned());
                self.read(move |c| $rows::dataset(c, &identity_id, &name)).await
            }

            async fn datasets(&self, identity_id: &str) -> Result<Vec<ferrosync_core::cognito::Dataset>, StoreError> {
                let identity_id = identity_id.to_owned();
                self.read(move |c| $rows::datasets(c, &identity_id)).await
            }

            async fn identity_pool_usage(
                &self,
                pool_id: &str,
            ) -> Result<ferrosync_core::cognito::IdentityPoolUsage, StoreError> {
                let pool_id = pool_id.to_owned();
                self.read(move |c| $rows::identity_pool_usage(c, &pool_id)).await
            }

            async fn device(&self, device_id: &str) -> Result<Option<ferrosync_core::cognito::Device>, StoreError> {
                let device_id = device_id.to_owned();
                self.read(move |c| $rows::device(c, &device_id)).await
            }

            async fn dataset_subscribers(
                &self,
                identity_id: &str,
                dataset: &str,
            ) -> Result<Vec<ferrosync_core::cognito::Device>, StoreError> {
                let (identity_id, dataset) = (identity_id.to_owned(), dataset.to_owned());
                self.read(move |c| $rows::dataset_subscribers(c, &identity_id, &dataset)).await
            }

            async fn cognito_identity_ids(
                &self,
                pool_id: &str,
                after: Option<&str>,
                limit: u32,
            ) -> Result<Vec<String>, StoreError> {
                let (pool_id, after) = (pool_id.to_owned(), after.map(str::to_owned));
                self.read(move |c| $rows::cognito_identity_ids(c, &pool_id, after.as_deref(), limit)).await
            }

            async fn identity_devices(
                &self,
                identity_id: &str,
            ) -> Result<Vec<ferrosync_core::cognito::DeviceDump>, StoreError> {
                let identity_id = identity_id.to_owned();
                self.read(move |c| $rows::identity_devices(c, &identity_id)).await
            }
        }
    };
}

/// A `TxState` over a store's `rows` module: row access inside the writer's transaction is the
/// `rows` function of the same name on `self.conn`. The store supplies `epoch`, `service` and
/// `next_seq`, where the two stores differ (locking, sequence allocation), and `object`,
/// `insert_event` and `put_object_with_event`, where the embedded store remembers where the
/// job found an object's row. Whatever writes the services table forgets the rows the batch
/// has seen (`self.services_written()`); whatever else writes objects calls `self.objects_written` with
/// the SID of the object it wrote (`None`: any number of them).
macro_rules! impl_tx_state {
    ($ty:ty, $rows:ident, { $($own:tt)* }) => {
        impl ferrosync_core::store::TxState for $ty {
            $($own)*

            fn put_service(&mut self, service: &Service) -> Result<(), StoreError> {
                self.services_written();
                $rows::put_service(self.conn, service)
            }
            fn delete_service(&mut self, sid: &Sid) -> Result<(), StoreError> {
                self.services_written();
                self.seqs.forget(sid);
                self.objects_written(None);
                $rows::delete_by_sid(self.conn, "services", sid).map(drop)
            }
            fn object_by_sid(&mut self, sid: &Sid) -> Result<Option<SyncObject>, StoreError> {
                $rows::object_by_sid(self.conn, sid)
            }
            fn put_object(&mut self, object: &SyncObject) -> Result<(), StoreError> {
                self.objects_written(Some(&object.sid));
                $rows::put_object(self.conn, object)
            }
            fn delete_object(&mut self, sid: &Sid) -> Result<(), StoreError> {
                self.objects_written(Some(sid));
                $rows::delete_object(self.conn, sid)
            }
            fn item(&mut self, object: &Sid, key: &ItemKey) -> Result<Option<Item>, StoreError> {
                $rows::item(self.conn, object, key)
            }
            fn put_item(&mut self, item: &Item) -> Result<(), StoreError> {
                $rows::put_item(self.conn, item)
            }
            fn delete_item(&mut self, object: &Sid, key: &ItemKey) -> Result<(), StoreError> {
                $rows::delete_item(self.conn, object, key)
            }
            fn permission(&mut self, object: &Sid, identity: &str) -> Result<Option<Permission>, StoreError> {
                $rows::permission(self.conn, object, identity)
            }
            fn put_permission(&mut self, permission: &Permission) -> Result<(), StoreError> {
                $rows::put_permission(self.conn, permission)
            }
            fn delete_permission(&mut self, object: &Sid, identity: &str) -> Result<bool, StoreError> {
                $rows::delete_permission(self.conn, object, identity)
            }
            fn expired_objects(&mut self, now: Timestamp, limit: u32) -> Result<Vec<SyncObject>, StoreError> {
                $rows::expired_objects(self.conn, now, limit)
            }
            fn expired_items(&mut self, now: Timestamp, limit: u32) -> Result<Vec<Item>, StoreError> {
                $rows::expired_items(self.conn, now, limit)
            }
            fn prune_events(&mut self, before: Timestamp) -> Result<u64, StoreError> {
                // Pruning moves services' horizons.
                self.services_written();
                $rows::prune_events(self.conn, before)
            }
            fn api_key(&mut self, sid: &Sid) -> Result<Option<ApiKeyRecord>, StoreError> {
                $rows::api_key(self.conn, sid)
            }
            fn put_api_key(&mut self, key: &ApiKeyRecord) -> Result<(), StoreError> {
                $rows::put_api_key(self.conn, key)
            }
            fn delete_api_key(&mut self, sid: &Sid) -> Result<bool, StoreError> {
                $rows::delete_by_sid(self.conn, "api_keys", sid)
            }
            fn set_log_cursor(&mut self, consumer: &str, service: &Sid, start: Option<u64>) -> Result<(), StoreError> {
                $rows::set_log_cursor(self.conn, consumer, service, start)
            }
            fn matrix_user(&mut self, user_id: &str) -> Result<Option<ferrosync_core::matrix::MatrixUser>, StoreError> {
                $rows::matrix_user(self.conn, user_id)
            }
            fn put_matrix_user(&mut self, user: &ferrosync_core::matrix::MatrixUser) -> Result<(), StoreError> {
                $rows::put_matrix_user(self.conn, user)
            }
            fn matrix_device(
                &mut self,
                user_id: &str,
                device_id: &str,
            ) -> Result<Option<ferrosync_core::matrix::MatrixDevice>, StoreError> {
                $rows::matrix_device(self.conn, user_id, device_id)
            }
            fn put_matrix_device(&mut self, device: &ferrosync_core::matrix::MatrixDevice) -> Result<(), StoreError> {
                $rows::put_matrix_device(self.conn, device)
            }
            fn matrix_filter(&mut self, user_id: &str, filter_id: &str) -> Result<Option<String>, StoreError> {
                $rows::matrix_filter(self.conn, user_id, filter_id)
            }
            fn put_matrix_filter(&mut self, user_id: &str, filter_id: &str, filter: &str) -> Result<(), StoreError> {
                $rows::put_matrix_filter(self.conn, user_id, filter_id, filter)
            }
            fn matrix_media(
                &mut self,
                media_id: &str,
            ) -> Result<Option<ferrosync_core::matrix::MatrixMedia>, StoreError> {
                $rows::matrix_media(self.conn, media_id)
            }
            fn put_matrix_media(&mut self, media: &ferrosync_core::matrix::MatrixMedia) -> Result<(), StoreError> {
                $rows::put_matrix_media(self.conn, media)
            }
            fn delete_matrix_devices(&mut self, user_id: &str, device_id: Option<&str>) -> Result<u64, StoreError> {
                $rows::delete_matrix_devices(self.conn, user_id, device_id)
            }
            fn identity_pool(
                &mut self,
                pool_id: &str,
            ) -> Result<Option<ferrosync_core::cognito::IdentityPool>, StoreError> {
                $rows::identity_pool(self.conn, pool_id)
            }
            fn put_identity_pool(&mut self, pool: &ferrosync_core::cognito::IdentityPool) -> Result<(), StoreError> {
                $rows::put_identity_pool(self.conn, pool)
            }
            fn cognito_identity(
                &mut self,
                identity_id: &str,
            ) -> Result<Option<ferrosync_core::cognito::CognitoIdentity>, StoreError> {
                $rows::cognito_identity(self.conn, identity_id)
            }
            fn put_cognito_identity(
                &mut self,
                identity: &ferrosync_core::cognito::CognitoIdentity,
            ) -> Result<(), StoreError> {
                $rows::put_cognito_identity(self.conn, identity)
            }
            fn delete_cognito_identity(&mut self, identity_id: &str) -> Result<(), StoreError> {
                $rows::delete_cognito_identity(self.conn, identity_id)
            }
            fn login_owner(
                &mut self,
                pool_id: &str,
                login: &ferrosync_core::cognito::Login,
            ) -> Result<Option<String>, StoreError> {
                $rows::login_owner(self.conn, pool_id, login)
            }
            fn put_login(
                &mut self,
                pool_id: &str,
                login: &ferrosync_core::cognito::Login,
                identity_id: &str,
            ) -> Result<(), StoreError> {
                $rows::put_login(self.conn, pool_id, login, identity_id)
            }
            fn delete_login(&mut self, pool_id: &str, login: &ferrosync_core::cognito::Login) -> Result<bool, StoreError> {
                $rows::delete_login(self.conn, pool_id, login)
            }
            fn dataset(
                &mut self,
                identity_id: &str,
                name: &str,
            ) -> Result<Option<ferrosync_core::cognito::Dataset>, StoreError> {
                $rows::dataset(self.conn, identity_id, name)
            }
            fn datasets(&mut self, identity_id: &str) -> Result<Vec<ferrosync_core::cognito::Dataset>, StoreError> {
                $rows::datasets(self.conn, identity_id)
            }
            fn put_dataset(&mut self, dataset: &ferrosync_core::cognito::Dataset) -> Result<(), StoreError> {
                $rows::put_dataset(self.conn, dataset)
            }
            fn delete_dataset(&mut self, identity_id: &str, name: &str) -> Result<(), StoreError> {
                $rows::delete_dataset(self.conn, identity_id, name)
            }
            fn device(&mut self, device_id: &str) -> Result<Option<ferrosync_core::cognito::Device>, StoreError> {
                $rows::device(self.conn, device_id)
            }
            fn device_by_token(
                &mut self,
                identity_id: &str,
                platform: ferrosync_core::cognito::Platform,
                token: &str,
            ) -> Result<Option<ferrosync_core::cognito::Device>, StoreError> {
                $rows::device_by_token(self.conn, identity_id, platform, token)
            }
            fn put_device(&mut self, device: &ferrosync_core::cognito::Device) -> Result<(), StoreError> {
                $rows::put_device(self.conn, device)
            }
            fn delete_devices(&mut self, identity_id: &str) -> Result<(), StoreError> {
                $rows::delete_devices(self.conn, identity_id)
            }
            fn set_subscription(
                &mut self,
                identity_id: &str,
                dataset: &str,
                device_id: &str,
                subscribed: bool,
            ) -> Result<(), StoreError> {
                $rows::set_subscription(self.conn, identity_id, dataset, device_id, subscribed)
            }
        }
    };
}

pub mod conformance;
mod heads;
pub mod postgres;
mod readers;
mod seen;
mod writer;

pub(crate) use writer::{Answer, CommitMetrics, Observers, WriteJob, queue_write, run_writer};

/// A service's settings as stored: one JSON document, so new settings need no schema change.
pub(crate) fn settings_to_json(s: &ferrosync_core::model::ServiceSettings) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "{}".into())
}

pub(crate) fn settings_from_json(
    raw: &str,
) -> Result<ferrosync_core::model::ServiceSettings, ferrosync_core::store::StoreError> {
    serde_json::from_str(raw)
        .map_err(|e| ferrosync_core::store::StoreError::Corrupt(format!("service settings '{raw}': {e}")))
}
/// A JSON document column (pool settings) as stored.
pub(crate) fn json_to_string<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

/// Devices (ordered by id) with their subscriptions (ordered by device id, then dataset).
pub(crate) fn group_subscriptions(
    devices: Vec<ferrosync_core::cognito::Device>,
    subscriptions: Vec<(String, String)>,
) -> Vec<ferrosync_core::cognito::DeviceDump> {
    let mut subscriptions = subscriptions.into_iter().peekable();
    devices
        .into_iter()
        .map(|device| {
            while subscriptions.next_if(|(d, _)| *d < device.id).is_some() {}
            let mut datasets = Vec::new();
            while let Some((_, dataset)) = subscriptions.next_if(|(d, _)| *d == device.id) {
                datasets.push(dataset);
            }
            ferrosync_core::cognito::DeviceDump { device, subscriptions: datasets }
        })
        .collect()
}

pub(crate) fn json_from_str<T: serde::de::DeserializeOwned>(
    raw: &str,
    what: &str,
) -> Result<T, ferrosync_core::store::StoreError> {
    serde_json::from_str(raw).map_err(|e| ferrosync_core::store::StoreError::Corrupt(format!("{what} '{raw}': {e}")))
}

pub mod sqlite;
pub mod testing;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;
