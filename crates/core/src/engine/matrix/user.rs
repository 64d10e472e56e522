//! What a user owns: filters, profile, devices, media, account data and presence.

use super::*;

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

    /// The server's users by user id, for operators (deactivated ones too).
    pub async fn matrix_users(
        &self,
        principal: &crate::auth::Principal,
        page: crate::page::PageRequest,
    ) -> Result<crate::page::Page<MatrixUser>, CoreError> {
        crate::engine::require_admin(principal)?;
        let rows = self.store.matrix_users(&page).await?;
        Ok(page.finish(rows, |u| crate::page::Cursor::Key(u.user_id.clone())))
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
        let profile = match self.run_matrix(m).await? {
            Outcome::MatrixUser(u) => MatrixProfile { display_name: u.display_name, avatar_url: u.avatar_url },
            other => return Err(unexpected(other)),
        };
        // Every room the user is in learns the new profile from a fresh join event.
        for room in self.matrix_joined_rooms(caller).await? {
            self.matrix_membership(caller, &room, &caller.user_id, "join", None).await?;
        }
        Ok(profile)
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
            self.forget_device_keys(&caller.user_id, device_id).await?;
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
pub(super) fn account_data_map(user_id: &str, room_id: Option<&str>) -> String {
    match room_id {
        None => format!("{user_id}/account_data"),
        Some(room) => format!("{user_id}/account_data/{room}"),
    }
}

/// The Map holding every user's presence, keyed by user id.
pub(super) const PRESENCE_MAP: &str = "presence";

impl Engine {
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
