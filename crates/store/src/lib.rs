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

/// Queues a mutation for a store's writer thread and waits for its answer. With `queued`, the
/// job is counted there from now until the writer commits it (the writer takes it off); a
/// caller that goes away before the job is queued takes it off itself.
pub(crate) async fn queue_write(
    writer: &tokio::sync::mpsc::Sender<WriteJob>,
    actor: ferrosync_core::store::Actor,
    mutation: ferrosync_core::store::Mutation,
    queued: Option<&std::sync::atomic::AtomicUsize>,
) -> Answer {
    use ferrosync_core::store::StoreError;
    /// A count not yet the writer's to take off.
    struct Counted<'a>(Option<&'a std::sync::atomic::AtomicUsize>);
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            if let Some(count) = self.0 {
                count.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            }
        }
    }
    if let Some(count) = queued {
        count.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
    let mut counted = Counted(queued);
    let (reply, rx) = tokio::sync::oneshot::channel();
    writer
        .send(WriteJob {
            actor,
            mutation: Some(mutation),
            reply: Some(reply),
            runtime: tokio::runtime::Handle::try_current().ok(),
        })
        .await
        .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
    counted.0 = None;
    rx.await.map_err(|_| StoreError::Unavailable("the writer stopped before answering".into()))?
}

/// A mutation waiting for a store's writer thread, and where its answer goes.
pub(crate) struct WriteJob {
    pub(crate) actor: ferrosync_core::store::Actor,
    /// Taken (moved into the rules rather than copied) by a commit that cannot run it again.
    pub(crate) mutation: Option<ferrosync_core::store::Mutation>,
    /// Where the answer goes; none for a job committed in place, whose caller has it at once.
    pub(crate) reply: Option<Reply>,
    /// The runtime the caller waits on, where a batch's answers are best sent from.
    pub(crate) runtime: Option<tokio::runtime::Handle>,
}

pub(crate) type Answer = Result<ferrosync_core::store::Applied, ferrosync_core::CoreError>;
type Reply = tokio::sync::oneshot::Sender<Answer>;

/// A batch's answers on their way to its callers. Each answer wakes its caller. Sent from the
/// writer thread, that is a wake-up from outside the runtime, and on a core the writer shares
/// with the runtime the woken runtime thread takes the core at once: the writer and the runtime
/// switched back and forth once per answer (two context switches per write where sixteen
/// writers shared a commit). Sent from a task on a caller's runtime, an answer is a push onto
/// that runtime's own queue, and the batch costs one wake-up from outside.
///
/// Dropped with answers left (its task never ran: the runtime shut down first), it sends them.
struct Delivery(Vec<(Reply, Answer)>);

impl Delivery {
    /// The batch's answers paired with the callers waiting for them; the batch is left empty.
    fn of(batch: &mut Vec<WriteJob>, answers: Vec<Answer>) -> Self {
        Delivery(batch.drain(..).map(|job| job.reply).zip(answers).filter_map(|(r, a)| Some((r?, a))).collect())
    }

    /// Sends the answers from `runtime` (that of the first caller still waiting on one, so it is
    /// being driven), or from here when that gains nothing (one answer) or there is none. A
    /// caller on another runtime is still answered, just by a wake-up from outside its own.
    fn send(self, runtime: Option<tokio::runtime::Handle>) {
        match runtime {
            Some(runtime) if self.0.len() > 1 => drop(runtime.spawn(async move { drop(self) })),
            _ => drop(self),
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        for (reply, answer) in self.0.drain(..) {
            // A caller that went away no longer needs its answer; the write stands.
            let _ = reply.send(answer);
        }
    }
}

/// Most mutations one commit carries; bounds the latency a batch adds to its first member.
pub(crate) const MAX_BATCH: usize = 512;

/// The observers of a store's commits ([`ferrosync_core::store::CommitObserver`]), shared by
/// the store (which adds them) and its writer thread (which tells them).
#[derive(Default)]
pub(crate) struct Observers(std::sync::Mutex<Vec<std::sync::Weak<dyn ferrosync_core::store::CommitObserver>>>);

impl Observers {
    pub(crate) fn add(&self, observer: std::sync::Weak<dyn ferrosync_core::store::CommitObserver>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(observer);
    }

    /// Tells every live observer of the batch's committed mutations, in commit order.
    pub(crate) fn tell(&self, results: &[Result<ferrosync_core::store::Applied, ferrosync_core::CoreError>]) {
        let mut observers = self.0.lock().unwrap_or_else(|e| e.into_inner());
        observers.retain(|o| o.strong_count() > 0);
        for observer in observers.iter().filter_map(std::sync::Weak::upgrade) {
            for applied in results.iter().flatten() {
                observer.committed(applied);
            }
        }
    }
}

/// The group-commit loop both stores' writer threads run: takes whatever is queued (up to
/// [`MAX_BATCH`]) as one batch, has `commit` apply it in one transaction and tell the
/// observers (it may put a job handed over to it at the batch's head), answers each caller,
/// then lets `answered` do housekeeping that must not delay an answer. Ends when every sender
/// is gone.
pub(crate) fn run_writer(
    mut rx: tokio::sync::mpsc::Receiver<WriteJob>,
    mut commit: impl FnMut(&mut Vec<WriteJob>) -> Vec<Answer>,
    mut answered: impl FnMut(),
) {
    let mut batch: Vec<WriteJob> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        // Let the callers that are ready to write queue their jobs before this batch is
        // taken: on a core shared with the runtime, the writer woken by the first job would
        // otherwise commit it nearly alone while the others wait a whole commit for the next
        // turn. With nothing else runnable on its core, a yield returns at once.
        std::thread::yield_now();
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let results = commit(&mut batch);
        metrics::histogram!("ferrosync_store_commit_batch_size").record(batch.len() as f64);
        // A caller on no runtime (blocked on the future by hand) cannot host the sending.
        let runtime = batch
            .iter()
            .filter(|job| job.reply.as_ref().is_some_and(|r| !r.is_closed()))
            .find_map(|job| job.runtime.clone());
        Delivery::of(&mut batch, results).send(runtime);
        // The answers and events have just woken runtime threads. On a core shared with them,
        // let them send, and queue what arrived during the commit, before the housekeeping
        // and the next batch: they would not preempt this thread under SCHED_BATCH.
        std::thread::yield_now();
        answered();
    }
}

pub mod conformance;
mod heads;
pub mod postgres;
mod readers;
mod seen;

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

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_core::CoreError;
    use ferrosync_core::store::{Actor, Mutation, StoreError};
    use ferrosync_core::timestamp::Timestamp;

    /// A job told apart by its mutation's date, and the answer that names it back.
    fn job(n: i64, runtime: Option<tokio::runtime::Handle>) -> (WriteJob, tokio::sync::oneshot::Receiver<Answer>) {
        let (reply, rx) = tokio::sync::oneshot::channel();
        (
            WriteJob {
                actor: Actor::SYSTEM,
                mutation: Some(Mutation::Prune { before: Timestamp(n) }),
                reply: Some(reply),
                runtime,
            },
            rx,
        )
    }

    fn named(answer: Answer) -> String {
        match answer {
            Err(CoreError::Store(StoreError::Backend(name))) => name,
            other => format!("an unexpected answer {other:?}"),
        }
    }

    /// Answers each job with its own number, so a caller can tell it got its own answer.
    fn echo(batch: &[WriteJob]) -> Vec<Answer> {
        batch
            .iter()
            .map(|job| match &job.mutation {
                Some(Mutation::Prune { before }) => {
                    Err(CoreError::Store(StoreError::Backend(format!("job {}", before.0))))
                }
                _ => Err(CoreError::Store(StoreError::Backend("not a test job".into()))),
            })
            .collect()
    }

    #[test]
    fn every_caller_gets_its_own_answer_whichever_runtime_it_waits_on() {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let writer = std::thread::spawn(move || run_writer(rx, |batch| echo(batch), || {}));
        let runtimes: Vec<tokio::runtime::Runtime> = (0..2)
            .map(|_| tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().expect("a runtime"))
            .collect();
        let mut callers = Vec::new();
        for n in 0..64 {
            let runtime = &runtimes[n % 2];
            let tx = tx.clone();
            let handle = runtime.handle().clone();
            callers.push(runtime.spawn(async move {
                let (job, answer) = job(n as i64, Some(handle));
                tx.send(job).await.map_err(|_| "the writer stopped")?;
                answer.await.map(named).map_err(|_| "no answer")
            }));
        }
        // One more from no runtime at all: it is answered from wherever its batch is sent.
        let (lone, lone_answer) = job(64, None);
        tx.blocking_send(lone).expect("the writer takes it");
        for (n, caller) in callers.into_iter().enumerate() {
            let got = runtimes[0].block_on(caller).expect("the caller ran");
            assert_eq!(got, Ok(format!("job {n}")));
        }
        assert_eq!(lone_answer.blocking_recv().map(named), Ok("job 64".to_owned()));
        drop(tx);
        writer.join().expect("the writer stops when its senders are gone");
    }

    /// A queued write is counted until the writer takes it off; one whose caller went away
    /// before it was queued (the queue full) is no longer counted, so it holds nothing back.
    #[tokio::test]
    async fn a_write_abandoned_before_it_is_queued_is_not_counted() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let queued = AtomicUsize::new(0);
        let (full, _) = job(0, None);
        tx.send(full).await.expect("the queue takes one");
        let waiting = queue_write(&tx, Actor::SYSTEM, Mutation::Prune { before: Timestamp(1) }, Some(&queued));
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), waiting).await.is_err(),
            "the queue is full"
        );
        assert_eq!(queued.load(Ordering::Acquire), 0, "an abandoned write is not counted");

        // Queued, it stays counted (the writer takes it off once committed), and is answered.
        rx.recv().await.expect("the first job");
        let sent = queue_write(&tx, Actor::SYSTEM, Mutation::Prune { before: Timestamp(2) }, Some(&queued));
        let answer = async {
            let mut batch = vec![rx.recv().await.expect("the second job")];
            assert_eq!(queued.load(Ordering::Acquire), 1, "counted while queued");
            let answers = echo(&batch);
            Delivery::of(&mut batch, answers).send(None);
        };
        let (got, ()) = tokio::join!(sent, answer);
        assert_eq!(named(got), "job 2");
    }

    #[test]
    fn answers_bound_for_a_runtime_that_shut_down_are_still_sent() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        let handle = runtime.handle().clone();
        drop(runtime);
        let (mut replies, mut answers) = (Vec::new(), Vec::new());
        for n in 0..3 {
            let (reply, rx) = tokio::sync::oneshot::channel();
            replies.push((reply, Err(CoreError::Store(StoreError::Backend(format!("job {n}"))))));
            answers.push(rx);
        }
        // The task that would send them is dropped unrun; the answers go with it, not lost.
        Delivery(replies).send(Some(handle));
        for (n, rx) in answers.into_iter().enumerate() {
            assert_eq!(rx.blocking_recv().map(named), Ok(format!("job {n}")));
        }
    }
}
