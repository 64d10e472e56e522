//! The Matrix face's engine API: accounts here (registration, password login, access tokens,
//! logout), what a user owns in `user`, rooms in `rooms`. Everything but accounts lives as
//! objects of the `matrix` service, read and written through the helpers below.

use super::{Engine, unexpected};
use crate::auth::random_hex;
use crate::error::{CoreError, NotFoundKind};
use crate::matrix::{
    MAX_DEVICE_ID_CHARS, MAX_DISPLAY_NAME_CHARS, MAX_PASSWORD_BYTES, MatrixDevice, MatrixUser, TokenClaims, user_id_of,
    validate_localpart,
};
use crate::model::{ItemKey, ObjectKind};
use crate::store::{Actor, ItemWriteMode, Mutation, Outcome};
use crate::timestamp::Timestamp;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use subtle::ConstantTimeEq;

/// What register and login hand out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixSession {
    pub user_id: String,
    pub device_id: String,
    pub access_token: String,
}

/// Who an access token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixCaller {
    pub user_id: String,
    pub device_id: String,
}

impl MatrixCaller {
    /// The caller as the viewer of events, now.
    pub fn viewer(&self) -> crate::matrix::event::Viewer<'_> {
        crate::matrix::event::Viewer {
            user_id: &self.user_id,
            device_id: &self.device_id,
            now_ms: Timestamp::now().millis(),
        }
    }
}

/// A registration.
#[derive(Debug, Clone, Default)]
pub struct MatrixRegistration<'a> {
    /// `None`: the server picks one.
    pub localpart: Option<&'a str>,
    pub password: Option<&'a str>,
    pub device_id: Option<&'a str>,
    pub device_name: Option<&'a str>,
}

/// Refused logins all read the same, so that they do not tell which users exist.
const BAD_LOGIN: &str = "Invalid username or password";

fn check_password(password: &str) -> Result<(), CoreError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(CoreError::invalid("password", format!("is longer than {MAX_PASSWORD_BYTES} bytes")));
    }
    Ok(())
}

fn check_device(device_id: Option<&str>, name: Option<&str>) -> Result<(), CoreError> {
    if let Some(id) = device_id {
        let n = id.chars().count();
        if n == 0 || n > MAX_DEVICE_ID_CHARS {
            return Err(CoreError::invalid("device_id", format!("must be 1 to {MAX_DEVICE_ID_CHARS} characters long")));
        }
    }
    if name.is_some_and(|n| n.chars().count() > MAX_DISPLAY_NAME_CHARS) {
        return Err(CoreError::invalid(
            "initial_device_display_name",
            format!("is longer than {MAX_DISPLAY_NAME_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Argon2id off the async threads: hashing takes tens of milliseconds on purpose.
async fn hash(password: String) -> Result<String, CoreError> {
    tokio::task::spawn_blocking(move || Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()))
        .await
        .map_err(|e| internal(format!("password hashing stopped: {e}")))?
        .map_err(|e| internal(format!("password hashing failed: {e}")))
}

async fn verify(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || Argon2::default().verify_password(password.as_bytes(), phc.as_str()).is_ok())
        .await
        .unwrap_or(false)
}

/// A failure of the server itself (answered as a 500 by every face).
fn internal(message: String) -> CoreError {
    CoreError::Store(crate::store::StoreError::Backend(message))
}

fn new_device_id() -> String {
    random_hex(5).to_uppercase()
}

impl Engine {
    fn matrix_device(&self, user_id: &str, device_id: Option<&str>, name: Option<&str>) -> MatrixDevice {
        MatrixDevice {
            user_id: user_id.to_owned(),
            device_id: device_id.map_or_else(new_device_id, str::to_owned),
            display_name: name.map(str::to_owned),
            token_id: random_hex(16),
            date_created: Timestamp::now(),
        }
    }

    fn session_of(&self, device: &MatrixDevice) -> Result<MatrixSession, CoreError> {
        let claims = TokenClaims {
            user_id: device.user_id.clone(),
            device_id: device.device_id.clone(),
            token_id: device.token_id.clone(),
        };
        let json = serde_json::to_vec(&claims).map_err(|e| internal(e.to_string()))?;
        Ok(MatrixSession {
            user_id: device.user_id.clone(),
            device_id: device.device_id.clone(),
            access_token: format!("mat_{}", self.secrets.seal_token(&json)),
        })
    }

    async fn run_matrix(&self, m: Mutation) -> Result<Outcome, CoreError> {
        Ok(self.store.execute(Actor::SYSTEM, m).await?.outcome)
    }

    /// Registers a user on `server_name` with a first device, and logs that device in.
    /// AlreadyExists when the user id is taken.
    pub async fn matrix_register(
        &self,
        server_name: &str,
        r: MatrixRegistration<'_>,
    ) -> Result<MatrixSession, CoreError> {
        let localpart = match r.localpart {
            Some(l) => l.to_owned(),
            None => format!("u{}", random_hex(6)),
        };
        validate_localpart(&localpart, server_name)?;
        if let Some(p) = r.password {
            check_password(p)?;
        }
        check_device(r.device_id, r.device_name)?;
        let user_id = format!("@{localpart}:{server_name}");
        let password_hash = match r.password {
            Some(p) => Some(hash(p.to_owned()).await?),
            None => None,
        };
        let user = MatrixUser {
            user_id: user_id.clone(),
            password_hash,
            display_name: Some(localpart),
            avatar_url: None,
            deactivated: false,
            date_created: Timestamp::now(),
        };
        let device = self.matrix_device(&user_id, r.device_id, r.device_name);
        match self.run_matrix(Mutation::CreateMatrixUser { user, device }).await? {
            Outcome::MatrixDevice(device) => self.session_of(&device),
            other => Err(unexpected(other)),
        }
    }

    /// Whether a user id is free on `server_name` (register/available).
    pub async fn matrix_username_available(&self, server_name: &str, localpart: &str) -> Result<bool, CoreError> {
        validate_localpart(localpart, server_name)?;
        Ok(self.store.matrix_user(&format!("@{localpart}:{server_name}")).await?.is_none())
    }

    /// Password login: `user` is a localpart or a full id of `server_name`. A device id that
    /// exists already gets a new token (its old one stops working). NotAuthorized, worded the
    /// same for every refusal, when the user, the password or the account does not fit.
    pub async fn matrix_login(
        &self,
        server_name: &str,
        user: &str,
        password: &str,
        device_id: Option<&str>,
        device_name: Option<&str>,
    ) -> Result<MatrixSession, CoreError> {
        check_password(password)?;
        check_device(device_id, device_name)?;
        let refused = || CoreError::NotAuthorized(BAD_LOGIN.into());
        let user_id = user_id_of(user, server_name).ok_or_else(refused)?;
        let account = self.store.matrix_user(&user_id).await?;
        let hash = account.as_ref().filter(|u| !u.deactivated).and_then(|u| u.password_hash.clone());
        let Some(hash) = hash else { return Err(refused()) };
        if !verify(password.to_owned(), hash).await {
            return Err(refused());
        }
        let device = self.matrix_device(&user_id, device_id, device_name);
        match self.run_matrix(Mutation::PutMatrixDevice(device)).await {
            Ok(Outcome::MatrixDevice(device)) => self.session_of(&device),
            Ok(other) => Err(unexpected(other)),
            Err(CoreError::NotFound { what: NotFoundKind::MatrixUser, .. }) => Err(refused()),
            Err(e) => Err(e),
        }
    }

    /// The caller an access token stands for; `None` when it is not one of this server's
    /// tokens, or its device was logged out (or logged in again since).
    pub async fn matrix_caller(&self, access_token: &str) -> Result<Option<MatrixCaller>, CoreError> {
        let Some(sealed) = access_token.strip_prefix("mat_") else { return Ok(None) };
        let Some(claims) =
            self.secrets.open_token(sealed).and_then(|raw| serde_json::from_slice::<TokenClaims>(&raw).ok())
        else {
            return Ok(None);
        };
        let Some(device) = self.store.matrix_device(&claims.user_id, &claims.device_id).await? else {
            return Ok(None);
        };
        let current = bool::from(device.token_id.as_bytes().ct_eq(claims.token_id.as_bytes()));
        Ok(current.then_some(MatrixCaller { user_id: claims.user_id, device_id: claims.device_id }))
    }

    /// Logs out the caller's device, or (`all`) every device of the user.
    pub async fn matrix_logout(&self, caller: &MatrixCaller, all: bool) -> Result<u64, CoreError> {
        let gone: Vec<String> = if all {
            self.store.matrix_devices(&caller.user_id).await?.into_iter().map(|d| d.device_id).collect()
        } else {
            vec![caller.device_id.clone()]
        };
        for device in &gone {
            self.forget_device_keys(&caller.user_id, device).await?;
        }
        let m = Mutation::RemoveMatrixDevices {
            user_id: caller.user_id.clone(),
            device_id: (!all).then(|| caller.device_id.clone()),
        };
        match self.run_matrix(m).await? {
            Outcome::MatrixDevicesRemoved(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }
}

mod rooms;
mod user;

mod e2ee;
mod ephemeral;
mod history;
mod sync;

pub use history::MessagesRequest;
pub use rooms::CreateRoom;
pub(crate) use sync::LazyMembers;
pub use sync::SyncParams;
pub use user::{MatrixPresence, MatrixProfile};

// ----- objects of the Matrix service, as the system ----------------------------------------------

impl Engine {
    /// Opens (creating if needed) a Map of the Matrix service, as the system.
    async fn matrix_map(&self, name: &str) -> Result<(), CoreError> {
        let req = crate::engine::OpenRequest { unique_name: Some(name.to_owned()), ..Default::default() };
        self.open(&crate::auth::Principal::Root, crate::engine::services::MATRIX_SERVICE, ObjectKind::Map, req).await?;
        Ok(())
    }

    async fn matrix_put(&self, map: &str, key: &str, data: serde_json::Value) -> Result<(), CoreError> {
        self.matrix_put_ttl(map, key, data, None).await
    }

    /// An entry that expires after `ttl` seconds (and leaves with a change-log event).
    async fn matrix_put_ttl(
        &self,
        map: &str,
        key: &str,
        data: serde_json::Value,
        ttl: Option<u64>,
    ) -> Result<(), CoreError> {
        let patch = crate::engine::ItemPatch { data: Some(data), ttl, collection_ttl: None, if_match: None };
        let write = || {
            self.write_item(
                &crate::auth::Principal::Root,
                crate::engine::services::MATRIX_SERVICE,
                ObjectKind::Map,
                map,
                ItemKey::Key(key.to_owned()),
                patch.clone(),
                ItemWriteMode::Upsert,
            )
        };
        match write().await {
            Err(CoreError::NotFound { what: NotFoundKind::Object(_), .. }) => {
                // The Map's first item: make the Map, then write.
                self.matrix_map(map).await?;
                write().await.map(drop)
            }
            other => other.map(drop),
        }
    }

    async fn matrix_get(&self, map: &str, key: &str) -> Result<Option<serde_json::Value>, CoreError> {
        Ok(self
            .system_entry(crate::engine::services::MATRIX_SERVICE, map, key)
            .await?
            .map(|i| std::sync::Arc::unwrap_or_clone(i.data)))
    }

    /// Removes an entry of a Map or List of the Matrix service; one already gone is no error.
    async fn matrix_remove(&self, kind: ObjectKind, name: &str, key: ItemKey) -> Result<(), CoreError> {
        let removed = self
            .remove_item(&crate::auth::Principal::Root, crate::engine::services::MATRIX_SERVICE, kind, name, key, None)
            .await;
        match removed {
            Ok(()) | Err(CoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every entry of a Map of the Matrix service as (key, data), in key order.
    async fn matrix_entries(&self, name: &str) -> Result<Vec<(String, serde_json::Value)>, CoreError> {
        let items = self.matrix_items(ObjectKind::Map, name).await?;
        Ok(items.into_iter().filter_map(|i| Some((i.key?, std::sync::Arc::unwrap_or_clone(i.data)))).collect())
    }

    /// Every item of a Map (or List) of the Matrix service, in order; empty when it does not exist.
    async fn matrix_items(&self, kind: ObjectKind, name: &str) -> Result<Vec<crate::model::Item>, CoreError> {
        self.system_items(crate::engine::services::MATRIX_SERVICE, kind, name).await
    }
}
