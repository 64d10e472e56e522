//! The Matrix routes, served under both `/_matrix/client/v3` and the older `r0`.

use super::{account, account_data, discovery, e2ee, error, media, rooms, sync, user};
use crate::state::AppState;
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

fn client_api() -> Router<Arc<AppState>> {
    Router::new()
        .route("/login", get(discovery::login_flows).post(account::login))
        .route("/register", post(account::register))
        .route("/register/available", get(account::available))
        .route("/account/whoami", get(account::whoami))
        .route("/logout", post(account::logout))
        .route("/logout/all", post(account::logout_all))
        .route("/capabilities", get(discovery::capabilities))
        .route("/user/{user_id}/filter", post(user::put_filter))
        .route("/user/{user_id}/filter/{filter_id}", get(user::get_filter))
        .route("/profile/{user_id}", get(user::get_profile))
        .route("/profile/{user_id}/{field}", get(user::get_profile_field).put(user::put_profile_field))
        .route("/devices", get(user::devices))
        .route("/devices/{device_id}", get(user::device).put(user::rename_device).delete(user::delete_device))
        .route("/delete_devices", post(user::delete_devices))
        .route("/user/{user_id}/account_data/{kind}", get(account_data::get_global).put(account_data::put_global))
        .route(
            "/user/{user_id}/rooms/{room_id}/account_data/{kind}",
            get(account_data::get_room).put(account_data::put_room),
        )
        .route("/presence/{user_id}/status", get(account_data::get_presence).put(account_data::set_presence))
        .route("/pushrules", get(super::push_rules::get_all))
        .route("/pushrules/", get(super::push_rules::get_all))
        .route("/pushrules/global", get(super::push_rules::get_global))
        .route("/pushrules/global/", get(super::push_rules::get_global))
        .route(
            "/pushrules/global/{kind}/{rule_id}",
            get(super::push_rules::get_rule).put(super::push_rules::put_rule).delete(super::push_rules::delete_rule),
        )
        .route("/pushrules/global/{kind}/{rule_id}/enabled", super::push_rules::attribute("enabled"))
        .route("/pushrules/global/{kind}/{rule_id}/actions", super::push_rules::attribute("actions"))
        .route("/sync", get(sync::sync))
        .route("/rooms/{room_id}/typing/{user_id}", axum::routing::put(sync::typing))
        .route("/rooms/{room_id}/receipt/{receipt_type}/{event_id}", post(sync::receipt))
        .route("/rooms/{room_id}/read_markers", post(sync::read_markers))
        .route("/rooms/{room_id}/messages", get(sync::messages))
        .route("/rooms/{room_id}/context/{event_id}", get(sync::context))
        .route("/rooms/{room_id}/redact/{event_id}/{txn_id}", axum::routing::put(rooms::redact))
        .route("/knock/{room}", post(rooms::knock))
        .route("/directory/list/room/{room_id}", get(rooms::get_visibility).put(rooms::put_visibility))
        .route("/publicRooms", get(rooms::public_rooms).post(rooms::public_rooms))
        .route("/keys/upload", post(e2ee::upload))
        .route("/keys/query", post(e2ee::query))
        .route("/keys/claim", post(e2ee::claim))
        .route("/keys/changes", get(e2ee::changes))
        .route("/sendToDevice/{event_type}/{txn_id}", axum::routing::put(e2ee::send_to_device))
        .route("/createRoom", post(rooms::create_room))
        .route("/directory/room/{alias}", get(rooms::get_alias).put(rooms::put_alias).delete(rooms::delete_alias))
        .route("/joined_rooms", get(rooms::joined_rooms))
        .route("/join/{room}", post(rooms::join))
        .route("/rooms/{room_id}/join", post(rooms::join))
        .route("/rooms/{room_id}/leave", post(rooms::leave))
        .route("/rooms/{room_id}/forget", post(rooms::forget))
        .route("/rooms/{room_id}/invite", rooms::for_other("invite"))
        .route("/rooms/{room_id}/kick", rooms::for_other("leave"))
        .route("/rooms/{room_id}/ban", rooms::for_other("ban"))
        .route("/rooms/{room_id}/unban", rooms::for_other("leave"))
        .route("/rooms/{room_id}/send/{event_type}/{txn_id}", axum::routing::put(rooms::send))
        .route("/rooms/{room_id}/state", get(rooms::get_state))
        .route("/rooms/{room_id}/state/{event_type}", get(rooms::get_state_event).put(rooms::put_state))
        .route("/rooms/{room_id}/state/{event_type}/", get(rooms::get_state_event).put(rooms::put_state))
        .route("/rooms/{room_id}/state/{event_type}/{state_key}", get(rooms::get_state_event).put(rooms::put_state))
        .route("/rooms/{room_id}/members", get(rooms::members))
        .route("/rooms/{room_id}/joined_members", get(rooms::joined_members))
        .fallback(error::unrecognized)
        .method_not_allowed_fallback(error::unrecognized)
}

fn media_api(legacy: bool) -> Router<Arc<AppState>> {
    let (download, thumbnail) = if legacy {
        (get(media::legacy_download), get(media::legacy_thumbnail))
    } else {
        (get(media::download), get(media::thumbnail))
    };
    let router = Router::new()
        .route("/config", get(media::config))
        .route("/download/{server_name}/{media_id}", download.clone())
        .route("/download/{server_name}/{media_id}/{file_name}", download)
        .route("/thumbnail/{server_name}/{media_id}", thumbnail);
    let router = if legacy { router.route("/upload", post(media::upload)) } else { router };
    router.fallback(error::unrecognized).method_not_allowed_fallback(error::unrecognized)
}

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/.well-known/matrix/client", get(discovery::well_known))
        .nest("/_matrix/media/v3", media_api(true))
        .nest("/_matrix/client/v1/media", media_api(false))
        .route("/_matrix/client/versions", get(discovery::versions))
        .nest("/_matrix/client/v3", client_api())
        .nest("/_matrix/client/r0", client_api())
        .route("/_matrix/{*rest}", axum::routing::any(error::unrecognized))
}
