//! Connections as the server holds them: their secrets (encrypted by the
//! store), the Confluence client built from them, what they sync, and how
//! the API shows them (Carbon's data sources).

use crate::error::ApiError;
use crate::model::DataSource;
use crate::App;
use confluence::{Client, Credentials, OAuthApp, OAuthTokens, RetryPolicy, SiteUrl};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use store::{Connection, EndUser, Organisation, Store};

/// A connection's secrets, as the store keeps them (encrypted).
#[derive(Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Secret {
    ApiToken {
        email: String,
        api_token: String,
    },
    Pat {
        pat: String,
    },
    OAuth {
        oauth: OAuthTokens,
        /// The organisation's own app (white label) or the server's.
        own_app: bool,
        /// The client id of the app that issued the tokens: only that app
        /// can refresh them, whatever app the organisation has now.
        #[serde(default)]
        client_id: Option<String>,
    },
}

/// What a connection syncs: everything readable, or chosen spaces and
/// pages (with their descendants); nothing until something is chosen
/// when `all` is false and both lists are empty.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Scope {
    #[serde(default)]
    pub all: bool,
    #[serde(default)]
    pub spaces: Vec<String>,
    #[serde(default)]
    pub pages: Vec<String>,
    /// Carbon's files/sync tags, by the space key or page id they were
    /// chosen with: given to that space's or page subtree's files.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, serde_json::Value>>,
}

impl Scope {
    /// The connection's stored scope. One that does not read as a scope
    /// is an error, never "the whole site": the connection then syncs
    /// nothing and shows SYNC_ERROR.
    pub fn of(connection: &Connection) -> Result<Scope, String> {
        let unreadable =
            || "the connection's stored scope is unreadable; choose its spaces again".to_string();
        let value = &connection.scope;
        let object = value.as_object().ok_or_else(unreadable)?;
        let mut scope: Scope = serde_json::from_value(value.clone()).map_err(|_| unreadable())?;
        if !object.contains_key("all") {
            // A scope written by the CLI has no `all` but both lists:
            // empty lists mean everything.
            if !(object.contains_key("spaces") && object.contains_key("pages")) {
                return Err(unreadable());
            }
            scope.all = scope.spaces.is_empty() && scope.pages.is_empty();
        }
        Ok(scope)
    }

    /// Whether a connection with this stored scope has anything to sync
    /// (an unreadable scope does: its sync reports the error).
    pub fn wants_sync(connection: &Connection) -> bool {
        Scope::of(connection).map_or(true, |scope| !scope.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        !self.all && self.spaces.is_empty() && self.pages.is_empty()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Persists rotated OAuth tokens before they are used.
struct TokenSaver {
    store: Store,
    connection_id: String,
    own_app: bool,
    client_id: Option<String>,
}

impl confluence::TokenStore for TokenSaver {
    fn save<'a>(
        &'a self,
        tokens: &'a OAuthTokens,
    ) -> futures::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let secret = Secret::OAuth {
                oauth: tokens.clone(),
                own_app: self.own_app,
                client_id: self.client_id.clone(),
            };
            let bytes = serde_json::to_vec(&secret).map_err(|e| e.to_string())?;
            self.store
                .set_credentials(&self.connection_id, &bytes)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// An organisation's own OAuth app (white label), with its redirect URI.
async fn own_app(
    app: &App,
    organisation_id: &str,
) -> Result<Option<(OAuthApp, String)>, store::Error> {
    Ok(app
        .store
        .oauth_app(organisation_id, "CONFLUENCE")
        .await?
        .map(|own| {
            (
                OAuthApp {
                    client_id: own.client_id,
                    client_secret: own.client_secret.unwrap_or_default(),
                    token_url: app.config.atlassian.token_url.clone(),
                },
                own.redirect_uri,
            )
        }))
}

/// The server's OAuth app, with its callback, when configured.
fn server_app(app: &App) -> Option<(OAuthApp, String)> {
    match (&app.config.oauth.client_id, &app.config.oauth.client_secret) {
        (Some(id), Some(secret)) => Some((
            OAuthApp {
                client_id: id.clone(),
                client_secret: secret.clone(),
                token_url: app.config.atlassian.token_url.clone(),
            },
            app.config.callback_url(),
        )),
        _ => None,
    }
}

/// The OAuth app of an organisation: its own (white label) or the server's;
/// `true` when its own.
pub async fn oauth_app(
    app: &App,
    organisation_id: &str,
) -> Result<(OAuthApp, String, bool), ApiError> {
    if let Some((own, redirect_uri)) = own_app(app, organisation_id).await? {
        return Ok((own, redirect_uri, true));
    }
    server_app(app)
        .map(|(server, redirect_uri)| (server, redirect_uri, false))
        .ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "oauth_app_not_configured",
                "no OAuth app: configure one for the server, or create a CONFLUENCE white label",
            )
        })
}

/// The app that issued a connection's (or a consent's) tokens, as long as
/// the organisation still has it: its own app (white label) when `own_app`,
/// else the server's; `client_id`, where recorded, must still match. An app
/// created, replaced or deleted since is never given another app's tokens.
pub async fn issuing_app(
    app: &App,
    organisation_id: &str,
    own_app: bool,
    client_id: Option<&str>,
) -> Result<(OAuthApp, String), String> {
    let (found, redirect_uri) = if own_app {
        self::own_app(app, organisation_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the organisation's OAuth app that issued this connection's tokens was deleted; connect again")?
    } else {
        server_app(app).ok_or(
            "the server's OAuth app that issued this connection's tokens is no longer configured",
        )?
    };
    if client_id.is_some_and(|id| id != found.client_id) {
        return Err(
            "the OAuth app that issued this connection's tokens was replaced; connect again".into(),
        );
    }
    Ok((found, redirect_uri))
}

/// The client a connection syncs with.
pub async fn client_for(app: &App, connection: &Connection) -> Result<Client, String> {
    let bytes = app
        .store
        .credentials(&connection.id)
        .await
        .map_err(|e| e.to_string())?;
    let secret: Secret = serde_json::from_slice(&bytes)
        .map_err(|_| "the connection has no usable credentials (revoked?)".to_string())?;
    let site = SiteUrl {
        base: connection.site_url.clone(),
        context: connection.context_path.clone(),
    };
    let credentials = match secret {
        Secret::ApiToken { email, api_token } => Credentials::ApiToken {
            email,
            token: api_token,
        },
        Secret::Pat { pat } => Credentials::PersonalAccessToken(pat),
        Secret::OAuth {
            oauth,
            own_app,
            client_id,
        } => {
            let (issuer, _) = issuing_app(
                app,
                &connection.organisation_id,
                own_app,
                client_id.as_deref(),
            )
            .await?;
            Credentials::oauth(
                issuer,
                oauth,
                Arc::new(TokenSaver {
                    store: app.store.clone(),
                    connection_id: connection.id.clone(),
                    own_app,
                    client_id,
                }),
            )
        }
    };
    Client::new(site, credentials, RetryPolicy::default()).map_err(|e| e.to_string())
}

/// Carbon's data source status, from the connection and its queue.
pub fn sync_status(connection: &Connection, queued: bool, running: bool) -> &'static str {
    if running {
        return "SYNCING";
    }
    if queued {
        return "QUEUED_FOR_SYNCING";
    }
    use store::ConnectionStatus as S;
    match connection.status {
        S::SyncError | S::NeedsReauthorization => "SYNC_ERROR",
        S::Syncing => "SYNCING",
        S::Connected | S::QueuedForSyncing | S::Ready => "READY",
    }
}

/// Carbon's `data_source_external_id` for Confluence, as Carbon Connect
/// reads it: `{account id}|{email or display name}|{site id}/{site host}`.
/// The component shows part two as the account and, beside it in its
/// account menu, what follows the `/` of part three (with anything but one
/// `/` there it shows "null"). The site id is Atlassian's cloud id for an
/// OAuth connection (its API gateway URL carries it), else the host's first
/// label. `|` inside a part would shift the others, so it is replaced.
pub fn external_id(connection: &Connection) -> String {
    let host_of = |site: &str| {
        url::Url::parse(site).ok().and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(port) => format!("{h}:{port}"),
                None => h.to_string(),
            })
        })
    };
    let site = connection
        .site_link
        .as_deref()
        .unwrap_or(&connection.site_url);
    let host = host_of(site).unwrap_or_else(|| site.to_string());
    let site_id = connection
        .site_url
        .split_once("/ex/confluence/")
        .map(|(_, cloud)| cloud.trim_end_matches('/').to_string())
        .filter(|cloud| !cloud.is_empty())
        .unwrap_or_else(|| host.split(['.', ':']).next().unwrap_or("site").to_string());
    let clean = |part: &str| part.replace(['|', '/'], "-");
    format!(
        "{}|{}|{}/{}",
        clean(&connection.account),
        clean(
            connection
                .account_label
                .as_deref()
                .unwrap_or(&connection.account)
        ),
        clean(&site_id),
        clean(&host)
    )
}

pub async fn data_source(
    store: &Store,
    organisation: &Organisation,
    user: &EndUser,
    connection: &Connection,
) -> Result<DataSource, ApiError> {
    let (queued, running) = store.sync_state(&connection.id).await?;
    let status = sync_status(connection, queued, running);
    Ok(DataSource {
        id: connection.data_source_id,
        data_source_external_id: Some(external_id(connection)),
        data_source_type: "CONFLUENCE".into(),
        token: None,
        sync_status: status.into(),
        source_items_synced_at: connection.source_items_synced_at.clone(),
        organization_user_id: user.number,
        organization_id: organisation.number,
        organization_supplied_user_id: user.customer_id.clone(),
        revoked_access: connection.revoked,
        last_synced_at: connection
            .last_synced_at
            .clone()
            .unwrap_or_else(|| connection.created_at.clone()),
        last_sync_action: connection.last_sync_action.clone(),
        enable_auto_sync: Some(connection.auto_sync && !connection.revoked),
        created_at: connection.created_at.clone(),
        updated_at: connection.updated_at.clone(),
        files_synced_at: connection.last_synced_at.clone(),
        data_source_metadata: serde_json::json!({
            "site_url": connection.site_link.as_deref().unwrap_or(&connection.site_url),
            "account": connection.account,
            "auth_kind": connection.auth_kind,
            "scope": Scope::of(connection).ok(),
            "enforce_permissions": connection.enforce_permissions,
            "chunk_size": connection.chunk_size,
            "chunk_overlap": connection.chunk_overlap,
            "next_sync_at": connection.next_sync_at,
            "error": connection.error,
        }),
        tags: connection.data_source_tags.clone(),
    })
}

/// A link to a page as people open it.
pub fn web_link(connection: &Connection, webui: Option<&str>) -> Option<String> {
    let webui = webui?;
    if webui.starts_with("http://") || webui.starts_with("https://") {
        return Some(webui.to_string());
    }
    let base = connection
        .site_link
        .as_deref()
        .unwrap_or(&connection.site_url);
    let context = if connection.site_link.is_some() {
        "/wiki"
    } else {
        connection.context_path.as_str()
    };
    Some(format!("{base}{context}{webui}"))
}
