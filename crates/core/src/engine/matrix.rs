//! Matrix accounts: registration, password login, access tokens and logout.

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

/// A user's public profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixProfile {
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
}

/// Filter ids: short, and never starting with `{` (which marks inline JSON in `/sync`).
fn new_filter_id() -> String {
    random_hex(8)
}

impl Engine {
    /// Checks a filter and stores it for the caller; its id.
    pub async fn matrix_put_filter(
        &self,
        caller: &MatrixCaller,
        filter: &serde_json::Value,
    ) -> Result<String, CoreError> {
        crate::matrix::filter::Filter::from_json(filter)?;
        let json = serde_json::to_string(filter).map_err(|e| internal(e.to_string()))?;
        if json.len() > crate::matrix::MAX_FILTER_BYTES {
            return Err(CoreError::invalid(
                "filter",
                format!("is {} bytes; the limit is {}", json.len(), crate::matrix::MAX_FILTER_BYTES),
            ));
        }
        let filter_id = new_filter_id();
        let m =
            Mutation::PutMatrixFilter { user_id: caller.user_id.clone(), filter_id: filter_id.clone(), filter: json };
        self.run_matrix(m).await?;
        Ok(filter_id)
    }

    /// A filter of `user_id` as uploaded.
    pub async fn matrix_filter(&self, user_id: &str, filter_id: &str) -> Result<Option<serde_json::Value>, CoreError> {
        let Some(json) = self.store.matrix_filter(user_id, filter_id).await? else { return Ok(None) };
        serde_json::from_str(&json).map(Some).map_err(|e| internal(format!("a stored filter is not JSON: {e}")))
    }

    /// A user's profile; NotFound for an unknown or deactivated user.
    pub async fn matrix_profile(&self, user_id: &str) -> Result<MatrixProfile, CoreError> {
        match self.store.matrix_user(user_id).await? {
            Some(u) if !u.deactivated => Ok(MatrixProfile { display_name: u.display_name, avatar_url: u.avatar_url }),
            _ => Err(CoreError::not_found(NotFoundKind::MatrixUser, user_id)),
        }
    }

    /// Sets the caller's display name and/or avatar URL (`Some(None)` clears one).
    pub async fn matrix_set_profile(
        &self,
        caller: &MatrixCaller,
        display_name: Option<Option<String>>,
        avatar_url: Option<Option<String>>,
    ) -> Result<MatrixProfile, CoreError> {
        if let Some(Some(name)) = &display_name
            && name.chars().count() > MAX_DISPLAY_NAME_CHARS
        {
            return Err(CoreError::invalid(
                "displayname",
                format!("is longer than {MAX_DISPLAY_NAME_CHARS} characters"),
            ));
        }
        if let Some(Some(url)) = &avatar_url
            && (url.len() > crate::matrix::MAX_URL_CHARS || !url.starts_with("mxc://"))
        {
            return Err(CoreError::invalid(
                "avatar_url",
                format!("must be an mxc:// URI of at most {} characters", crate::matrix::MAX_URL_CHARS),
            ));
        }
        let m = Mutation::SetMatrixProfile { user_id: caller.user_id.clone(), display_name, avatar_url };
        match self.run_matrix(m).await? {
            Outcome::MatrixUser(u) => Ok(MatrixProfile { display_name: u.display_name, avatar_url: u.avatar_url }),
            other => Err(unexpected(other)),
        }
    }

    pub async fn matrix_devices(&self, caller: &MatrixCaller) -> Result<Vec<MatrixDevice>, CoreError> {
        Ok(self.store.matrix_devices(&caller.user_id).await?)
    }

    pub async fn matrix_rename_device(
        &self,
        caller: &MatrixCaller,
        device_id: &str,
        display_name: &str,
    ) -> Result<MatrixDevice, CoreError> {
        check_device(Some(device_id), None)?;
        if display_name.chars().count() > MAX_DISPLAY_NAME_CHARS {
            return Err(CoreError::invalid(
                "display_name",
                format!("is longer than {MAX_DISPLAY_NAME_CHARS} characters"),
            ));
        }
        let m = Mutation::RenameMatrixDevice {
            user_id: caller.user_id.clone(),
            device_id: device_id.to_owned(),
            display_name: display_name.to_owned(),
        };
        match self.run_matrix(m).await? {
            Outcome::MatrixDevice(d) => Ok(d),
            other => Err(unexpected(other)),
        }
    }

    /// Checks the caller's password again (user-interactive auth for sensitive operations).
    pub async fn matrix_confirm_password(&self, caller: &MatrixCaller, password: &str) -> Result<bool, CoreError> {
        check_password(password)?;
        let hash = self.store.matrix_user(&caller.user_id).await?.and_then(|u| u.password_hash);
        Ok(match hash {
            Some(hash) => verify(password.to_owned(), hash).await,
            None => false,
        })
    }

    /// Logs out the caller's listed devices (unknown ones are passed over); how many went.
    pub async fn matrix_delete_devices(&self, caller: &MatrixCaller, device_ids: &[String]) -> Result<u64, CoreError> {
        let mut removed = 0;
        for device_id in device_ids {
            let m =
                Mutation::RemoveMatrixDevices { user_id: caller.user_id.clone(), device_id: Some(device_id.clone()) };
            match self.run_matrix(m).await? {
                Outcome::MatrixDevicesRemoved(n) => removed += n,
                other => return Err(unexpected(other)),
            }
        }
        Ok(removed)
    }
}

/// `content_type` and `filename` of an upload: what headers and a download name can carry.
const MAX_MEDIA_META_CHARS: usize = 255;

impl Engine {
    /// Stores an upload of the caller's; its media id. `max_bytes` is the configured limit.
    pub async fn matrix_upload(
        &self,
        caller: &MatrixCaller,
        content_type: Option<&str>,
        filename: Option<&str>,
        content: Vec<u8>,
        max_bytes: usize,
    ) -> Result<String, CoreError> {
        if content.len() > max_bytes {
            return Err(CoreError::TooLarge { field: "content", size: content.len(), limit: max_bytes });
        }
        for (field, value) in [("Content-Type", content_type), ("filename", filename)] {
            if value.is_some_and(|v| v.chars().count() > MAX_MEDIA_META_CHARS || v.chars().any(char::is_control)) {
                return Err(CoreError::invalid(
                    field,
                    format!("must be at most {MAX_MEDIA_META_CHARS} printable characters"),
                ));
            }
        }
        let media = crate::matrix::MatrixMedia {
            media_id: random_hex(12),
            user_id: caller.user_id.clone(),
            content_type: content_type.map(str::to_owned),
            filename: filename.map(str::to_owned),
            content,
            date_created: Timestamp::now(),
        };
        let media_id = media.media_id.clone();
        self.run_matrix(Mutation::PutMatrixMedia(Box::new(media))).await?;
        Ok(media_id)
    }

    pub async fn matrix_media(&self, media_id: &str) -> Result<Option<crate::matrix::MatrixMedia>, CoreError> {
        Ok(self.store.matrix_media(media_id).await?)
    }
}

/// Presence states a user may set.
pub const PRESENCE_STATES: [&str; 3] = ["online", "unavailable", "offline"];
/// A presence status message.
const MAX_STATUS_MSG_CHARS: usize = 1024;
/// Event types (account data types).
const MAX_EVENT_TYPE_CHARS: usize = 255;

/// A user's presence as last set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixPresence {
    pub presence: String,
    pub status_msg: Option<String>,
    /// When it was last set.
    pub last_active: Timestamp,
}

/// The Map holding a user's account data: global, or of one room.
fn account_data_map(user_id: &str, room_id: Option<&str>) -> String {
    match room_id {
        None => format!("{user_id}/account_data"),
        Some(room) => format!("{user_id}/account_data/{room}"),
    }
}

/// The Map holding every user's presence, keyed by user id.
const PRESENCE_MAP: &str = "presence";

impl Engine {
    /// Opens (creating if needed) a Map of the Matrix service, as the system.
    async fn matrix_map(&self, name: &str) -> Result<(), CoreError> {
        let req = crate::engine::OpenRequest { unique_name: Some(name.to_owned()), ..Default::default() };
        self.open(&crate::auth::Principal::Root, super::services::MATRIX_SERVICE, ObjectKind::Map, req).await?;
        Ok(())
    }

    async fn matrix_put(&self, map: &str, key: &str, data: serde_json::Value) -> Result<(), CoreError> {
        let patch = crate::engine::ItemPatch { data: Some(data), ttl: None, collection_ttl: None, if_match: None };
        let write = || {
            self.write_item(
                &crate::auth::Principal::Root,
                super::services::MATRIX_SERVICE,
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
        let found = self
            .item(
                &crate::auth::Principal::Root,
                super::services::MATRIX_SERVICE,
                ObjectKind::Map,
                map,
                &ItemKey::Key(key.to_owned()),
            )
            .await;
        match found {
            Ok(item) => Ok(Some(item.data)),
            Err(CoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets one type of the caller's account data, global or of a room.
    pub async fn matrix_put_account_data(
        &self,
        caller: &MatrixCaller,
        room_id: Option<&str>,
        event_type: &str,
        content: serde_json::Value,
    ) -> Result<(), CoreError> {
        let n = event_type.chars().count();
        if n == 0 || n > MAX_EVENT_TYPE_CHARS {
            return Err(CoreError::invalid("type", format!("must be 1 to {MAX_EVENT_TYPE_CHARS} characters long")));
        }
        if !content.is_object() {
            return Err(CoreError::invalid("content", "must be a JSON object"));
        }
        self.matrix_put(&account_data_map(&caller.user_id, room_id), event_type, content).await
    }

    /// One type of a user's account data, global or of a room.
    pub async fn matrix_account_data(
        &self,
        user_id: &str,
        room_id: Option<&str>,
        event_type: &str,
    ) -> Result<Option<serde_json::Value>, CoreError> {
        self.matrix_get(&account_data_map(user_id, room_id), event_type).await
    }

    /// Sets the caller's presence.
    pub async fn matrix_set_presence(
        &self,
        caller: &MatrixCaller,
        presence: &str,
        status_msg: Option<&str>,
    ) -> Result<(), CoreError> {
        if !PRESENCE_STATES.contains(&presence) {
            return Err(CoreError::invalid(
                "presence",
                format!("must be one of {}, got '{presence}'", PRESENCE_STATES.join(", ")),
            ));
        }
        if status_msg.is_some_and(|m| m.chars().count() > MAX_STATUS_MSG_CHARS) {
            return Err(CoreError::invalid("status_msg", format!("is longer than {MAX_STATUS_MSG_CHARS} characters")));
        }
        let data = serde_json::json!({
            "presence": presence,
            "status_msg": status_msg,
            "last_active_ts": Timestamp::now().millis(),
        });
        self.matrix_put(PRESENCE_MAP, &caller.user_id, data).await
    }

    /// A user's presence: as last set, `offline` if never; NotFound for an unknown user.
    pub async fn matrix_presence(&self, user_id: &str) -> Result<MatrixPresence, CoreError> {
        self.matrix_profile(user_id).await?;
        let Some(data) = self.matrix_get(PRESENCE_MAP, user_id).await? else {
            return Ok(MatrixPresence { presence: "offline".into(), status_msg: None, last_active: Timestamp(0) });
        };
        Ok(MatrixPresence {
            presence: data["presence"].as_str().unwrap_or("offline").to_owned(),
            status_msg: data["status_msg"].as_str().map(str::to_owned),
            last_active: Timestamp(data["last_active_ts"].as_i64().unwrap_or(0)),
        })
    }
}

/// What createRoom asks for (the parts this server honours).
#[derive(Debug, Clone, Default)]
pub struct CreateRoom {
    /// `private_chat`, `trusted_private_chat` or `public_chat`; absent: by `public`.
    pub preset: Option<String>,
    /// `visibility: public`.
    pub public: bool,
    pub name: Option<String>,
    pub topic: Option<String>,
    pub invite: Vec<String>,
    /// `(type, state_key, content)`, applied after the preset.
    pub initial_state: Vec<(String, String, serde_json::Value)>,
    pub power_level_content_override: Option<serde_json::Value>,
    pub creation_content: Option<serde_json::Value>,
    pub room_version: Option<String>,
    /// `room_alias_name`: the room gets `#<name>:<server>` as it is made.
    pub alias_name: Option<String>,
}

/// The room version new rooms get.
pub const DEFAULT_ROOM_VERSION: &str = "10";

fn new_event_id() -> String {
    format!("${}", random_hex(16))
}

impl Engine {
    fn room_event(
        &self,
        sender: &str,
        event_type: &str,
        state_key: Option<&str>,
        content: serde_json::Value,
    ) -> crate::matrix::room::RoomEventDraft {
        crate::matrix::room::RoomEventDraft {
            event_id: new_event_id(),
            event_type: event_type.to_owned(),
            state_key: state_key.map(str::to_owned),
            sender: sender.to_owned(),
            content,
            origin_server_ts: Timestamp::now().millis(),
        }
    }

    async fn room_write(
        &self,
        room_id: &str,
        create: bool,
        events: Vec<crate::matrix::room::RoomEventDraft>,
        txn: Option<crate::matrix::room::Txn>,
        alias: Option<String>,
    ) -> Result<Vec<String>, CoreError> {
        let svc = self.service(&crate::auth::Principal::Root, super::services::MATRIX_SERVICE).await?;
        let m = Mutation::MatrixRoomEvents {
            service: svc.sid.clone(),
            room_id: room_id.to_owned(),
            create,
            events,
            txn,
            alias,
        };
        match self.run_logged(&svc, &crate::auth::Principal::Root, m).await?.value {
            Outcome::MatrixEvents(ids) => Ok(ids),
            other => Err(unexpected(other)),
        }
    }

    /// createRoom: the creation event, the creator's join, power levels, the preset's rules,
    /// the initial state, name and topic, then the invites, all in one transaction.
    pub async fn matrix_create_room(
        &self,
        server_name: &str,
        caller: &MatrixCaller,
        req: CreateRoom,
    ) -> Result<String, CoreError> {
        let version = req.room_version.clone().unwrap_or_else(|| DEFAULT_ROOM_VERSION.to_owned());
        if version != DEFAULT_ROOM_VERSION {
            return Err(CoreError::invalid(
                "room_version",
                format!("'{version}' is not supported; use {DEFAULT_ROOM_VERSION}"),
            ));
        }
        let room_id = format!("!{}:{server_name}", random_hex(9));
        let me = caller.user_id.as_str();
        let mut create = req.creation_content.clone().unwrap_or_else(|| serde_json::json!({}));
        if !create.is_object() {
            return Err(CoreError::invalid("creation_content", "must be a JSON object"));
        }
        create["creator"] = serde_json::json!(me);
        create["room_version"] = serde_json::json!(version);
        let preset =
            req.preset.clone().unwrap_or_else(|| if req.public { "public_chat".into() } else { "private_chat".into() });
        let (join_rule, history, guest) = match preset.as_str() {
            "public_chat" => ("public", "shared", "forbidden"),
            "private_chat" | "trusted_private_chat" => ("invite", "shared", "can_join"),
            other => return Err(CoreError::invalid("preset", format!("'{other}' is not a preset"))),
        };
        let mut users = serde_json::Map::new();
        users.insert(me.to_owned(), serde_json::json!(100));
        if preset == "trusted_private_chat" {
            for invitee in &req.invite {
                users.insert(invitee.clone(), serde_json::json!(100));
            }
        }
        let mut levels = serde_json::json!({
            "users": users, "users_default": 0, "events_default": 0, "state_default": 50,
            "ban": 50, "kick": 50, "redact": 50, "invite": 0,
            "events": { "m.room.name": 50, "m.room.power_levels": 100, "m.room.history_visibility": 100,
                        "m.room.canonical_alias": 50, "m.room.avatar": 50, "m.room.tombstone": 100,
                        "m.room.server_acl": 100, "m.room.encryption": 100 },
        });
        if let Some(overrides) = req.power_level_content_override.as_ref().and_then(|o| o.as_object()) {
            for (k, v) in overrides {
                levels[k] = v.clone();
            }
        }
        let mut events = vec![
            self.room_event(me, "m.room.create", Some(""), create),
            self.room_event(me, "m.room.member", Some(me), serde_json::json!({ "membership": "join" })),
            self.room_event(me, "m.room.power_levels", Some(""), levels),
            self.room_event(me, "m.room.join_rules", Some(""), serde_json::json!({ "join_rule": join_rule })),
            self.room_event(
                me,
                "m.room.history_visibility",
                Some(""),
                serde_json::json!({ "history_visibility": history }),
            ),
            self.room_event(me, "m.room.guest_access", Some(""), serde_json::json!({ "guest_access": guest })),
        ];
        for (kind, key, content) in &req.initial_state {
            events.push(self.room_event(me, kind, Some(key), content.clone()));
        }
        let alias = match &req.alias_name {
            Some(name) => {
                let alias = format!("#{name}:{server_name}");
                check_alias(&alias, server_name)?;
                events.push(self.room_event(
                    me,
                    "m.room.canonical_alias",
                    Some(""),
                    serde_json::json!({ "alias": alias }),
                ));
                Some(alias)
            }
            None => None,
        };
        if let Some(name) = &req.name {
            events.push(self.room_event(me, "m.room.name", Some(""), serde_json::json!({ "name": name })));
        }
        if let Some(topic) = &req.topic {
            events.push(self.room_event(me, "m.room.topic", Some(""), serde_json::json!({ "topic": topic })));
        }
        for invitee in &req.invite {
            events.push(self.room_event(
                me,
                "m.room.member",
                Some(invitee),
                serde_json::json!({ "membership": "invite" }),
            ));
        }
        self.room_write(&room_id, true, events, None, alias).await?;
        Ok(room_id)
    }

    /// A message event; the same transaction id from the same device answers the first event.
    pub async fn matrix_send(
        &self,
        caller: &MatrixCaller,
        room_id: &str,
        event_type: &str,
        content: serde_json::Value,
        txn_id: &str,
    ) -> Result<String, CoreError> {
        if !content.is_object() {
            return Err(CoreError::invalid("content", "must be a JSON object"));
        }
        let txn = crate::matrix::room::Txn {
            user_id: caller.user_id.clone(),
            device_id: caller.device_id.clone(),
            txn_id: txn_id.to_owned(),
        };
        let event = self.room_event(&caller.user_id, event_type, None, content);
        let ids = self.room_write(room_id, false, vec![event], Some(txn), None).await?;
        ids.into_iter().next().ok_or_else(|| internal("a send made no event".into()))
    }

    /// A state event (membership changes included).
    pub async fn matrix_put_state(
        &self,
        caller: &MatrixCaller,
        room_id: &str,
        event_type: &str,
        state_key: &str,
        content: serde_json::Value,
    ) -> Result<String, CoreError> {
        if !content.is_object() {
            return Err(CoreError::invalid("content", "must be a JSON object"));
        }
        let event = self.room_event(&caller.user_id, event_type, Some(state_key), content);
        let ids = self.room_write(room_id, false, vec![event], None, None).await?;
        ids.into_iter().next().ok_or_else(|| internal("a state change made no event".into()))
    }

    /// join, leave, invite, kick (leave for another), ban, unban (leave of a ban).
    pub async fn matrix_membership(
        &self,
        caller: &MatrixCaller,
        room_id: &str,
        target: &str,
        membership: &str,
        reason: Option<&str>,
    ) -> Result<String, CoreError> {
        let mut content = serde_json::json!({ "membership": membership });
        if let Some(reason) = reason {
            content["reason"] = serde_json::json!(reason);
        }
        if membership == "join"
            && let Ok(profile) = self.matrix_profile(target).await
        {
            if let Some(name) = profile.display_name {
                content["displayname"] = serde_json::json!(name);
            }
            if let Some(url) = profile.avatar_url {
                content["avatar_url"] = serde_json::json!(url);
            }
        }
        self.matrix_put_state(caller, room_id, "m.room.member", target, content).await
    }
}

impl Engine {
    /// Every item of a Map (or List) of the Matrix service, in order; empty when it does not exist.
    async fn matrix_items(&self, kind: ObjectKind, name: &str) -> Result<Vec<crate::model::Item>, CoreError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = crate::page::PageRequest {
                order: crate::page::Order::Asc,
                from: None,
                after: token.take(),
                limit: 1000,
            };
            let got = match self
                .items(&crate::auth::Principal::Root, super::services::MATRIX_SERVICE, kind, name, page)
                .await
            {
                Ok(got) => got,
                Err(CoreError::NotFound { .. }) => return Ok(out),
                Err(e) => return Err(e),
            };
            let last = got.items.last().map(|i| match (&i.key, i.index) {
                (Some(k), _) => crate::page::Cursor::Key(k.clone()),
                (None, idx) => crate::page::Cursor::Index(idx.unwrap_or_default()),
            });
            out.extend(got.items);
            match (got.next, last) {
                (Some(_), Some(last)) => token = Some(last),
                _ => return Ok(out),
            }
        }
    }

    /// The caller's membership of a room, if any.
    async fn membership_of(&self, user_id: &str, room_id: &str) -> Result<Option<String>, CoreError> {
        let entry = self.matrix_get(&crate::matrix::room::memberships_name(user_id), room_id).await?;
        Ok(entry.and_then(|e| e["membership"].as_str().map(str::to_owned)))
    }

    /// The room's current state events; only for its members.
    pub async fn matrix_room_state(
        &self,
        caller: &MatrixCaller,
        room_id: &str,
    ) -> Result<Vec<serde_json::Value>, CoreError> {
        self.require_member(caller, room_id).await?;
        let items = self.matrix_items(ObjectKind::Map, &crate::matrix::room::state_name(room_id)).await?;
        Ok(items.into_iter().map(|i| i.data).collect())
    }

    /// One state event's content; only for members.
    pub async fn matrix_state_content(
        &self,
        caller: &MatrixCaller,
        room_id: &str,
        event_type: &str,
        state_key: &str,
    ) -> Result<Option<serde_json::Value>, CoreError> {
        self.require_member(caller, room_id).await?;
        let key = crate::matrix::room::state_entry(event_type, state_key);
        Ok(self.matrix_get(&crate::matrix::room::state_name(room_id), &key).await?.map(|e| e["content"].clone()))
    }

    async fn require_member(&self, caller: &MatrixCaller, room_id: &str) -> Result<(), CoreError> {
        match self.membership_of(&caller.user_id, room_id).await?.as_deref() {
            Some("join") => Ok(()),
            _ => Err(CoreError::Forbidden(format!("{} is not in room {room_id}", caller.user_id))),
        }
    }

    /// The rooms the caller has joined.
    pub async fn matrix_joined_rooms(&self, caller: &MatrixCaller) -> Result<Vec<String>, CoreError> {
        let items = self.matrix_items(ObjectKind::Map, &crate::matrix::room::memberships_name(&caller.user_id)).await?;
        Ok(items.into_iter().filter(|i| i.data["membership"] == "join").filter_map(|i| i.key).collect())
    }
}

/// `#localpart:server`, on this server, within the id length limit.
fn check_alias(alias: &str, server_name: &str) -> Result<(), CoreError> {
    let local = alias
        .strip_prefix('#')
        .and_then(|rest| rest.strip_suffix(&format!(":{server_name}")))
        .ok_or_else(|| CoreError::invalid("room_alias", format!("'{alias}' is not an alias of {server_name}")))?;
    if local.is_empty() || local.contains(':') || local.chars().any(char::is_whitespace) {
        return Err(CoreError::invalid("room_alias", format!("'{local}' may not be empty or hold ':' or spaces")));
    }
    if alias.len() > crate::matrix::MAX_USER_ID_CHARS {
        return Err(CoreError::invalid(
            "room_alias",
            format!("is longer than {} bytes", crate::matrix::MAX_USER_ID_CHARS),
        ));
    }
    Ok(())
}

impl Engine {
    /// The room an alias points at.
    pub async fn matrix_resolve_alias(&self, alias: &str) -> Result<Option<String>, CoreError> {
        let entry = self.matrix_get(crate::matrix::room::ALIASES, alias).await?;
        Ok(entry.and_then(|e| e["room_id"].as_str().map(str::to_owned)))
    }

    /// Points a new alias at a room the caller is in.
    pub async fn matrix_set_alias(
        &self,
        server_name: &str,
        caller: &MatrixCaller,
        alias: &str,
        room_id: &str,
    ) -> Result<(), CoreError> {
        check_alias(alias, server_name)?;
        self.require_member(caller, room_id).await?;
        self.alias_write(alias, Some(room_id), &caller.user_id).await
    }

    /// Removes an alias: its creator, or a member who may set the room's canonical alias.
    pub async fn matrix_delete_alias(&self, caller: &MatrixCaller, alias: &str) -> Result<(), CoreError> {
        self.alias_write(alias, None, &caller.user_id).await
    }

    async fn alias_write(&self, alias: &str, room_id: Option<&str>, user_id: &str) -> Result<(), CoreError> {
        let svc = self.service(&crate::auth::Principal::Root, super::services::MATRIX_SERVICE).await?;
        let m = Mutation::MatrixAlias {
            service: svc.sid.clone(),
            alias: alias.to_owned(),
            room_id: room_id.map(str::to_owned),
            user_id: user_id.to_owned(),
        };
        self.run_logged(&svc, &crate::auth::Principal::Root, m).await?;
        Ok(())
    }
}

impl Engine {
    /// Forgets a room the caller has left (or was banned from): it no longer counts among the
    /// caller's rooms. Refused while the caller is still in it or invited.
    pub async fn matrix_forget(&self, caller: &MatrixCaller, room_id: &str) -> Result<(), CoreError> {
        match self.membership_of(&caller.user_id, room_id).await?.as_deref() {
            Some("leave" | "ban") => {}
            None => return Ok(()),
            Some(other) => {
                return Err(CoreError::invalid(
                    "room_id",
                    format!("cannot be forgotten while the membership is '{other}'"),
                ));
            }
        }
        let removed = self
            .remove_item(
                &crate::auth::Principal::Root,
                super::services::MATRIX_SERVICE,
                ObjectKind::Map,
                &crate::matrix::room::memberships_name(&caller.user_id),
                ItemKey::Key(room_id.to_owned()),
                None,
            )
            .await;
        match removed {
            Ok(()) | Err(CoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
