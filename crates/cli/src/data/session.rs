//! The connection a data command works through: its token (given, or minted from the data
//! directory and renewed), and what its errors say.

use super::*;

/// The connected client, and what explains its errors and renews its token.
pub struct Session {
    pub client: Client,
    explain: Explain,
}

/// What error messages name: the server, the token's identity, where the token came from.
struct Explain {
    url: String,
    identity: String,
    /// Set when the token was minted here, so it can be minted again.
    minter: Option<Minter>,
}

struct Minter {
    config: ServerConfig,
    service: String,
    identity: String,
}

/// Where a token is minted from, for messages.
pub(super) fn store_place(config: &ServerConfig) -> String {
    match &config.store {
        StoreLocation::Embedded => format!("the data directory {}", config.data_dir.display()),
        StoreLocation::Postgres(_) => "the PostgreSQL store".to_owned(),
    }
}

impl Minter {
    async fn mint(&self) -> anyhow::Result<String> {
        let context = || {
            format!(
                "no --token given, and no token could be minted for service '{}' from {}",
                self.service,
                store_place(&self.config)
            )
        };
        // Opening the engine would create an empty store (and new credentials) in a data
        // directory that has none; a token from there would be refused anyway.
        if self.config.store == StoreLocation::Embedded
            && !self.config.data_dir.join(ferrosync_server::bootstrap::DATABASE_FILE).exists()
        {
            return Err(anyhow::anyhow!(
                "{} holds no server data: pass --token, or the server's --data-dir",
                self.config.data_dir.display()
            ))
            .with_context(context);
        }
        mint_token(&self.config, &self.service, &self.identity, Some(MINTED_TOKEN_TTL_SECS), None)
            .await
            .with_context(context)
    }
}

impl Session {
    /// The server's base URL.
    pub(super) fn url(&self) -> &str {
        &self.explain.url
    }

    /// Whether the token was minted here (and so can be renewed here).
    pub(super) fn mints_its_token(&self) -> bool {
        self.explain.minter.is_some()
    }

    pub(super) async fn connect(config: &ServerConfig, remote: &Remote) -> anyhow::Result<Session> {
        let (token, minter) = match remote.token.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => (t.to_owned(), None),
            None => {
                let Some(service) = remote.service.clone() else {
                    bail!(
                        "no access token: pass --token (or FERROSYNC_TOKEN), or --service (or FERROSYNC_SERVICE) \
                         to mint one from the data directory"
                    )
                };
                let minter = Minter { config: config.clone(), service, identity: remote.identity.clone() };
                (minter.mint().await?, Some(minter))
            }
        };
        // An unreadable token is refused by `connect` below, with the reason.
        let identity = TokenInfo::parse(&token).map(|i| i.identity).unwrap_or_default();
        let explain = Explain { url: remote.url.trim_end_matches('/').to_owned(), identity, minter };
        // Connecting (rather than connecting lazily) reports a refused token or an unreachable
        // server at once, and a watch needs the WebSocket anyway.
        let client = Client::connect(&explain.url, &token).await.map_err(|e| explain.fail(e, "the connection"))?;
        Ok(Session { client, explain })
    }

    pub fn fail(&self, e: ClientError, what: &str) -> anyhow::Error {
        self.explain.fail(e, what)
    }

    /// Replaces a minted token before it runs out; a given one cannot be renewed here.
    pub(super) async fn renew_token(&self) -> anyhow::Result<()> {
        let Some(minter) = &self.explain.minter else {
            bail!("the access token has expired: run again with a fresh --token")
        };
        let token = minter.mint().await?;
        self.client.update_token(&token).await.map_err(|e| self.fail(e, "the token renewal"))
    }
}

impl Explain {
    /// The message a user sees for an SDK error while acting on `what` ("document settings").
    fn fail(&self, e: ClientError, what: &str) -> anyhow::Error {
        match &e {
            ClientError::Api { status: 404, code, message, .. } => {
                if *code == ErrorCode::ServiceNotFound.code() {
                    anyhow::anyhow!("not found: {message}")
                } else {
                    anyhow::anyhow!("not found: {what}")
                }
            }
            ClientError::Api { status: 412, message, .. } => anyhow::anyhow!("conflict: {what}: {message}"),
            ClientError::Api { status: 409, message, .. } => anyhow::anyhow!("already exists: {message}"),
            ClientError::Api { status: 401, message, .. } => match &self.minter {
                Some(m) => anyhow::anyhow!(
                    "unauthorized: {message} (the token was minted from {}: is that the store of the server at {}?)",
                    store_place(&m.config),
                    self.url
                ),
                None => anyhow::anyhow!("unauthorized: {message} (check --token)"),
            },
            ClientError::Api { status: 403, message, .. } => anyhow::anyhow!(
                "forbidden: {message} (the service has ACLs enabled: grant identity '{}' access to {what}, or use \
                 the token of an identity that has it)",
                self.identity
            ),
            ClientError::Api { status: 400 | 413 | 415 | 422, message, .. } => {
                anyhow::anyhow!("invalid request for {what}: {message}")
            }
            ClientError::Api { status, message, .. } => anyhow::anyhow!("server error {status} on {what}: {message}"),
            ClientError::Transport(message) | ClientError::Unreachable(message) => {
                anyhow::anyhow!("cannot reach the server at {}: {message}", self.url)
            }
            ClientError::InvalidArgument { field: "token", message } => {
                anyhow::anyhow!("unreadable access token (--token): {message}")
            }
            ClientError::InvalidArgument { .. } => anyhow::anyhow!("{e}"),
            _ => anyhow::anyhow!("{what}: {e}"),
        }
    }
}

/// Mints an access token from the store `config` names, as the root account: signed by
/// `api_key`, or by the account's first key (created when there is none). While a server runs
/// on an embedded store, the server mints it.
pub async fn mint_token(
    config: &ServerConfig,
    service: &str,
    identity: &str,
    ttl: Option<u64>,
    api_key: Option<&str>,
) -> anyhow::Result<String> {
    crate::local::Account::open(config).await?.mint_token(service, identity, ttl, api_key).await
}
