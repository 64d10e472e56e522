//! Stream messages: `POST {links.messages}` publishes.

use super::error::{self, CdsError, Target};
use super::request::{CdsReply, CdsRequest, Cx};
use super::types::ItemBody;
use ferrosync_core::model::ObjectKind;
use serde_json::json;

pub async fn publish(cx: &Cx<'_>, req: &CdsRequest<'_>, id: &str) -> Result<CdsReply, CdsError> {
    let body: ItemBody = req.json()?;
    let data = body.data.ok_or_else(|| error::bad_request("data is required"))?;
    let logged = cx
        .engine
        .publish_logged(cx.principal, cx.svc(), id, data)
        .await
        .map_err(|e| error::from_core(e, Target::Object(ObjectKind::Stream)))?;
    Ok(CdsReply::json(201, &json!({ "sid": logged.value.sid })).wrote(logged.seq))
}
