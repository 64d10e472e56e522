//! How a command reaches a data directory's store. The embedded store is held by one process
//! at a time: while a server runs on the directory, commands ask it through its local socket
//! (`ferrosync.sock`, beside the data file) with the account's credentials; otherwise they
//! open the store themselves. PostgreSQL takes many processes, so there commands always open
//! it themselves.

use anyhow::{Context, bail};
use base64::Engine as _;
use ferrosync_core::auth::Principal;
use ferrosync_core::engine::Engine;
use ferrosync_protocol::ErrorBody;
use ferrosync_protocol::rest::{ApiKeyView, CreateApiKey, CreateToken, TokenView};
use ferrosync_server::bootstrap::LOCAL_SOCKET_FILE;
use ferrosync_server::{Credentials, ServerConfig, StoreLocation};
use std::path::PathBuf;
use std::sync::Arc;

/// A server running on the data directory, reached through its local socket.
pub struct LocalServer {
    client: reqwest::Client,
    authorization: String,
    socket: PathBuf,
}

impl LocalServer {
    /// The server running on `config`'s data directory, when one answers on its socket.
    pub async fn find(config: &ServerConfig) -> anyhow::Result<Option<LocalServer>> {
        if config.store != StoreLocation::Embedded {
            return Ok(None);
        }
        let socket = config.data_dir.join(LOCAL_SOCKET_FILE);
        // A socket file a killed server left behind answers nobody: the store is free then.
        if tokio::net::UnixStream::connect(&socket).await.is_err() {
            return Ok(None);
        }
        let (creds, _) = Credentials::load_or_create(config)?;
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", creds.account_sid, creds.auth_token));
        let client = reqwest::Client::builder()
            .unix_socket(socket.clone())
            // Plain HTTP over the socket: reading the system's certificate store, which a TLS
            // client does as it is built, would be most of a local command's work.
            .tls_certs_only([])
            .build()
            .context("cannot set up a client for the local socket")?;
        Ok(Some(LocalServer { client, authorization: format!("Basic {basic}"), socket }))
    }

    /// A request to `path` (starting with `/`) on the server.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("http://localhost{path}"))
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
    }

    /// Sends `request`; an answer other than a success becomes an error with the server's message.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let response =
            request.send().await.with_context(|| format!("the server on {} did not answer", self.socket.display()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => bail!("{} (the running server answered {status})", body.message),
            Err(_) => bail!("the running server answered {status}: {text}"),
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> anyhow::Result<T> {
        let response = self.send(request).await?;
        response.json().await.context("the running server's answer is not what this command expects")
    }

    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }
}

/// The account's keys and tokens, from the running server or from the store itself.
pub enum Account {
    Server(LocalServer),
    Store(Arc<Engine>),
}

/// A key as the commands print it.
pub struct Key {
    pub sid: String,
    pub date_created: String,
    pub friendly_name: Option<String>,
    pub secret: Option<String>,
}

impl Account {
    /// The account of `config`'s store: through the server running on it, if one does.
    pub async fn open(config: &ServerConfig) -> anyhow::Result<Account> {
        if let Some(server) = LocalServer::find(config).await? {
            return Ok(Account::Server(server));
        }
        Ok(Account::Store(ferrosync_server::open_engine(config).await?.0))
    }

    pub async fn create_key(&self, name: Option<String>) -> anyhow::Result<Key> {
        Ok(match self {
            Account::Server(s) => {
                let body = CreateApiKey { friendly_name: name };
                let view: ApiKeyView = s.json(s.request(reqwest::Method::POST, "/api/v1/keys").json(&body)).await?;
                view.into()
            }
            Account::Store(engine) => {
                let key = engine.create_api_key(&Principal::Root, name).await?;
                Key {
                    sid: key.sid.to_string(),
                    date_created: key.date_created.to_rfc3339(),
                    friendly_name: key.friendly_name,
                    secret: Some(key.secret),
                }
            }
        })
    }

    pub async fn keys(&self) -> anyhow::Result<Vec<Key>> {
        Ok(match self {
            Account::Server(s) => {
                let views: Vec<ApiKeyView> = s.json(s.request(reqwest::Method::GET, "/api/v1/keys")).await?;
                views.into_iter().map(Key::from).collect()
            }
            Account::Store(engine) => engine
                .api_keys(&Principal::Root)
                .await?
                .into_iter()
                .map(|k| Key {
                    sid: k.sid.to_string(),
                    date_created: k.date_created.to_rfc3339(),
                    friendly_name: k.friendly_name,
                    secret: None,
                })
                .collect(),
        })
    }

    pub async fn remove_key(&self, sid: &str) -> anyhow::Result<()> {
        match self {
            Account::Server(s) => {
                s.send(s.request(reqwest::Method::DELETE, &format!("/api/v1/keys/{}", path_segment(sid)))).await?;
            }
            Account::Store(engine) => engine.remove_api_key(&Principal::Root, sid).await?,
        }
        Ok(())
    }

    /// Mints an access token as the root account: signed by `api_key`, or by the account's
    /// first key (created when there is none).
    pub async fn mint_token(
        &self,
        service: &str,
        identity: &str,
        ttl: Option<u64>,
        api_key: Option<&str>,
    ) -> anyhow::Result<String> {
        Ok(match self {
            Account::Server(s) => {
                let body = CreateToken {
                    service: service.to_owned(),
                    identity: identity.to_owned(),
                    ttl,
                    api_key: api_key.map(str::to_owned),
                };
                let view: TokenView = s.json(s.request(reqwest::Method::POST, "/api/v1/tokens").json(&body)).await?;
                view.token
            }
            Account::Store(engine) => {
                let minted = match api_key {
                    Some(k) => {
                        let k = ferrosync_core::Sid::parse_kind(k, ferrosync_core::SidKind::ApiKey)?;
                        engine.mint_token_with_key(&Principal::Root, &k, service, identity, ttl).await?
                    }
                    None => engine.mint_token(&Principal::Root, service, identity, ttl).await?,
                };
                minted.token
            }
        })
    }
}

impl From<ApiKeyView> for Key {
    fn from(v: ApiKeyView) -> Self {
        Key { sid: v.sid, date_created: v.date_created, friendly_name: v.friendly_name, secret: v.secret }
    }
}

/// `s` as one segment of a URL's path.
pub fn path_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Gathers a body streamed in chunks of any size into its lines, for the answers the local
/// socket streams (a dump, a backup's progress). A line may span chunks; what follows the last
/// newline of a chunk is kept for the next.
#[derive(Default)]
pub struct Lines {
    line: Vec<u8>,
    /// `line` holds a whole line, already handed out: cleared before gathering the next.
    done: bool,
}

impl Lines {
    /// The next whole line (without its newline), taken from the front of `chunk`; `None` once
    /// `chunk` is used up without ending one, its bytes kept.
    pub fn next(&mut self, chunk: &mut &[u8]) -> Option<&[u8]> {
        if std::mem::take(&mut self.done) {
            self.line.clear();
        }
        let Some(end) = chunk.iter().position(|b| *b == b'\n') else {
            self.line.extend_from_slice(chunk);
            *chunk = &[];
            return None;
        };
        self.line.extend_from_slice(&chunk[..end]);
        *chunk = &chunk[end + 1..];
        self.done = true;
        Some(&self.line)
    }
}

#[cfg(test)]
mod tests {
    use super::Lines;

    #[test]
    fn lines_are_whole_however_the_body_is_cut() {
        let body = b"{\"a\":1}\n\nsecond line\n{\"last\":true}\ntail without newline";
        for size in [1, 2, 3, 7, body.len()] {
            let mut lines = Lines::default();
            let mut seen = Vec::new();
            for piece in body.chunks(size) {
                let mut rest = piece;
                while let Some(line) = lines.next(&mut rest) {
                    seen.push(String::from_utf8_lossy(line).into_owned());
                }
                assert!(rest.is_empty(), "chunks of {size}: the chunk is used up");
            }
            assert_eq!(seen, ["{\"a\":1}", "", "second line", "{\"last\":true}"], "chunks of {size}");
        }
    }

    #[test]
    fn what_follows_a_line_is_left_in_the_chunk() {
        let mut lines = Lines::default();
        let mut chunk: &[u8] = b"par";
        assert_eq!(lines.next(&mut chunk), None);
        let mut chunk: &[u8] = b"tial\nraw bytes\n\n";
        assert_eq!(lines.next(&mut chunk), Some(&b"partial"[..]));
        assert_eq!(chunk, b"raw bytes\n\n");
    }
}
