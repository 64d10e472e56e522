//! A subscription: one object's events as a `Stream`.

use super::*;

/// The events of one subscribed object, in log order, each once: the connection resumes from
/// the last one delivered after every reconnect. Dropping it unsubscribes (when it was the
/// object's last subscriber).
///
/// ```no_run
/// # async fn demo(doc: ferrosync_client::Document) -> ferrosync_client::Result<()> {
/// let mut changes = doc.subscribe().await?;
/// while let Some(e) = changes.recv().await {
///     if !e.is_local {
///         println!("someone else changed it: {:?}", e.kind);
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Subscription {
    pub(super) rx: mpsc::Receiver<SyncEvent>,
    pub(super) sid: String,
    pub(super) cmds: mpsc::UnboundedSender<Cmd>,
    /// The offline cache and service, which follow the events delivered.
    pub(super) cache: Option<(Arc<Cache>, String)>,
}

impl Subscription {
    /// The next event; `None` once the client is shut down.
    pub async fn recv(&mut self) -> Option<SyncEvent> {
        let e = self.rx.recv().await;
        self.remember(e.as_ref());
        e
    }

    fn remember(&self, event: Option<&SyncEvent>) {
        let (Some((cache, service)), Some(e)) = (&self.cache, event) else { return };
        let kept = match &e.kind {
            SyncEventKind::Updated { data, revision, .. } => cache.update_document(service, &self.sid, data, *revision),
            SyncEventKind::ItemAdded { item } | SyncEventKind::ItemUpdated { item, .. } => {
                cache.put_item(service, &self.sid, item)
            }
            SyncEventKind::ItemRemoved { key, .. } => cache.drop_item(service, &self.sid, key),
            SyncEventKind::Removed { .. } => cache.forget_object(service, &self.sid),
            SyncEventKind::MessagePublished { .. } => Ok(()),
        };
        if let Err(err) = kept {
            tracing::warn!(error = %err, "offline cache not updated");
        }
    }
}

impl Stream for Subscription {
    type Item = SyncEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SyncEvent>> {
        let polled = self.rx.poll_recv(cx);
        if let Poll::Ready(e) = &polled {
            self.remember(e.as_ref());
        }
        polled
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.rx.close();
        let _ = self.cmds.send(Cmd::Dropped { sid: self.sid.clone() });
    }
}
