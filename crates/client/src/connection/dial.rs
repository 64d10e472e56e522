//! Dialing: the WebSocket opened with the current token, and what a refusal means.

use super::Ws;
use crate::client::Shared;
use crate::error::ClientError;
use ferrosync_protocol::ErrorBody;
use ferrosync_protocol::ws::{CLOSE_TOKEN_EXPIRED, CLOSE_UNAUTHENTICATED, ServerFrame};
use futures_util::StreamExt;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

/// Why a connection attempt failed.
pub(crate) struct ConnectFailure {
    pub terminal: bool,
    pub message: String,
    pub http_status: Option<u16>,
    pub error_code: Option<u32>,
}

impl From<ConnectFailure> for ClientError {
    fn from(f: ConnectFailure) -> Self {
        match (f.http_status, f.error_code) {
            (Some(status), code) => ClientError::refused(status, code.unwrap_or(0), f.message),
            _ => ClientError::Transport(f.message),
        }
    }
}

/// Opens the WebSocket with the current token and waits for the server's `connected`.
pub(crate) async fn connect(shared: &Shared) -> Result<Ws, ConnectFailure> {
    let url = ws_url(shared.rest.base());
    let transport = |message: String| ConnectFailure { terminal: false, message, http_status: None, error_code: None };
    let mut request = url.as_str().into_client_request().map_err(|e| transport(e.to_string()))?;
    let token = shared.token.read().map(|t| t.clone()).unwrap_or_default();
    let bearer = format!("Bearer {token}").parse().map_err(|_| ConnectFailure {
        terminal: true,
        message: "the token is not a valid header value".into(),
        http_status: None,
        error_code: None,
    })?;
    request.headers_mut().insert("authorization", bearer);
    let (mut ws, _) = match tokio_tungstenite::connect_async(request).await {
        Ok(ok) => ok,
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response.body().as_deref().and_then(|b| serde_json::from_slice::<ErrorBody>(b).ok());
            return Err(ConnectFailure {
                terminal: status == 401 || status == 403,
                message: body.as_ref().map_or_else(|| format!("the server answered {status}"), |b| b.message.clone()),
                http_status: Some(status),
                error_code: body.map(|b| b.code),
            });
        }
        Err(e) => return Err(transport(e.to_string())),
    };
    let hello = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
    match hello {
        Ok(Some(Ok(Message::Text(t)))) if matches!(serde_json::from_str(&t), Ok(ServerFrame::Connected { .. })) => {
            Ok(ws)
        }
        Ok(Some(Ok(Message::Close(Some(f))))) => Err(ConnectFailure {
            terminal: u16::from(f.code) == CLOSE_UNAUTHENTICATED || u16::from(f.code) == CLOSE_TOKEN_EXPIRED,
            message: f.reason.to_string(),
            http_status: None,
            error_code: None,
        }),
        _ => Err(transport("the server did not greet the connection".into())),
    }
}

fn ws_url(base: &str) -> String {
    let rest = base.strip_prefix("https://").map(|r| format!("wss://{r}"));
    let url =
        rest.unwrap_or_else(|| base.strip_prefix("http://").map_or_else(|| base.to_owned(), |r| format!("ws://{r}")));
    format!("{url}/api/v1/connect")
}

#[cfg(test)]
mod tests {
    #[test]
    fn websocket_urls_follow_the_scheme() {
        assert_eq!(super::ws_url("http://127.0.0.1:7700"), "ws://127.0.0.1:7700/api/v1/connect");
        assert_eq!(super::ws_url("https://sync.example"), "wss://sync.example/api/v1/connect");
    }
}
