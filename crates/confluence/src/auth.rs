//! Credentials: API token (Basic, Cloud), personal access token (Bearer,
//! Data Center) and OAuth 2.0 with rotating refresh tokens.
//!
//! OAuth tokens are refreshed before they expire. A rotated refresh token is
//! handed to the `TokenStore` and persisted *before* the new access token is
//! used, so that a crash can never leave us holding only a spent refresh
//! token, and no refresh token is ever presented twice.

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// OAuth tokens as persisted. Secrets: never logged (see `Debug`).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct OAuthTokens {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds since the epoch at which the access token expires.
    pub expires_at: i64,
    /// The lifetime it was issued with, to refresh at a fraction of it.
    #[serde(default)]
    pub lifetime_secs: i64,
}

impl fmt::Debug for OAuthTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthTokens")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Where rotated tokens go before they are used.
pub trait TokenStore: Send + Sync {
    fn save<'a>(
        &'a self,
        tokens: &'a OAuthTokens,
    ) -> futures::future::BoxFuture<'a, std::result::Result<(), String>>;
}

#[derive(Clone, Serialize, Deserialize)]
pub struct OAuthApp {
    pub client_id: String,
    pub client_secret: String,
    /// `https://auth.atlassian.com/oauth/token`, or the simulator's.
    pub token_url: String,
}

impl fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthApp")
            .field("client_id", &self.client_id)
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub enum Credentials {
    ApiToken {
        email: String,
        token: String,
    },
    PersonalAccessToken(String),
    OAuth {
        app: OAuthApp,
        tokens: Arc<Mutex<OAuthTokens>>,
        store: Arc<dyn TokenStore>,
        /// One refresh at a time: a second caller that finds the tokens
        /// already rotated uses the new ones instead of presenting the old
        /// refresh token again.
        refresh_lock: Arc<tokio::sync::Mutex<()>>,
    },
}

impl Credentials {
    pub fn oauth(app: OAuthApp, tokens: OAuthTokens, store: Arc<dyn TokenStore>) -> Credentials {
        Credentials::OAuth {
            app,
            tokens: Arc::new(Mutex::new(tokens)),
            store,
            refresh_lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::ApiToken { email, .. } => write!(f, "ApiToken({email}, <redacted>)"),
            Credentials::PersonalAccessToken(_) => write!(f, "PersonalAccessToken(<redacted>)"),
            Credentials::OAuth { app, .. } => write!(f, "OAuth({})", app.client_id),
        }
    }
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    expires_in: i64,
}

impl Credentials {
    /// The Authorization header for the next request, refreshing OAuth
    /// tokens first when they are close to expiry.
    pub(crate) async fn header(&self, http: &reqwest::Client) -> Result<String> {
        match self {
            Credentials::ApiToken { email, token } => {
                use base64::Engine;
                Ok(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{email}:{token}"))
                ))
            }
            Credentials::PersonalAccessToken(token) => Ok(format!("Bearer {token}")),
            Credentials::OAuth {
                app,
                tokens,
                store,
                refresh_lock,
            } => {
                let current = tokens.lock().clone();
                // Refresh when a quarter of the lifetime (at most a minute)
                // is left, so no request goes out with a dying token.
                let margin = (current.lifetime_secs / 4).clamp(1, 60);
                if now_secs() + margin < current.expires_at {
                    return Ok(format!("Bearer {}", current.access_token));
                }
                refresh(http, app, tokens, store.as_ref(), refresh_lock, &current).await?;
                Ok(format!("Bearer {}", tokens.lock().access_token))
            }
        }
    }

    /// Forces a refresh (after a 401 on a token we thought valid).
    pub(crate) async fn refresh_now(&self, http: &reqwest::Client) -> Result<bool> {
        if let Credentials::OAuth {
            app,
            tokens,
            store,
            refresh_lock,
        } = self
        {
            let current = tokens.lock().clone();
            refresh(http, app, tokens, store.as_ref(), refresh_lock, &current).await?;
            return Ok(true);
        }
        Ok(false)
    }
}

async fn refresh(
    http: &reqwest::Client,
    app: &OAuthApp,
    tokens: &Mutex<OAuthTokens>,
    store: &dyn TokenStore,
    lock: &tokio::sync::Mutex<()>,
    seen: &OAuthTokens,
) -> Result<()> {
    let _guard = lock.lock().await;
    if tokens.lock().refresh_token != seen.refresh_token {
        return Ok(());
    }
    let body = serde_json::json!({
        "grant_type": "refresh_token",
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "refresh_token": seen.refresh_token,
    });
    let response = http
        .post(&app.token_url)
        .json(&body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| Error::Transport(format!("token refresh: {e}")))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| Error::Transport(format!("token refresh: {e}")))?;
    if status.as_u16() == 400 || status.as_u16() == 401 || status.as_u16() == 403 {
        let reason = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| status.to_string());
        return Err(Error::GrantRevoked(reason));
    }
    if !status.is_success() {
        return Err(Error::Server {
            status: status.as_u16(),
            message: "token endpoint failed".into(),
        });
    }
    let parsed: TokenResponse = serde_json::from_str(&text).map_err(|e| Error::Decode {
        url: app.token_url.clone(),
        message: e.to_string(),
    })?;
    let next = OAuthTokens {
        access_token: parsed.access_token,
        refresh_token: parsed
            .refresh_token
            .unwrap_or_else(|| seen.refresh_token.clone()),
        expires_at: now_secs() + parsed.expires_in,
        lifetime_secs: parsed.expires_in,
    };
    // Persist first: if this fails, the rotated token is lost with the
    // process either way, so say so loudly rather than use it.
    store.save(&next).await.map_err(Error::TokenStore)?;
    *tokens.lock() = next;
    tracing::debug!("oauth tokens refreshed");
    Ok(())
}
