//! OAuth 2.0 (3LO) with Atlassian: the state parameter, the authorize URL,
//! and the callback (code exchange, accessible-resources, connection).
//!
//! The state is `base64url(claims).base64url(HMAC-SHA256(key, claims))`,
//! its claims naming a nonce, the organisation, the customer and the
//! expiry. The signature says the server issued it; the nonce's row in the
//! store makes it single-use (consumed atomically at the callback) and
//! carries the request's settings.

use crate::connection::{issuing_app, oauth_app, Secret};
use crate::console::Resource;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, CustomerCaller};
use crate::model::{OAuthUrlRequest, OAuthUrlResponse};
use crate::routes::{connection_settings, finish_connect, ConnectSettings};
use crate::{App, AppState};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// The nonce.
    pub n: String,
    /// Organisation id.
    pub o: String,
    /// Customer id.
    pub c: String,
    /// Expiry, seconds since the epoch.
    pub e: i64,
}

#[derive(Debug, PartialEq)]
pub enum StateError {
    Malformed,
    BadSignature,
    Expired,
    Used,
}

impl StateError {
    fn api(&self) -> ApiError {
        let (code, message) = match self {
            StateError::Malformed => ("invalid_state", "the state parameter is malformed"),
            StateError::BadSignature => (
                "invalid_state",
                "the state parameter was not issued by this server",
            ),
            StateError::Expired => (
                "state_expired",
                "the authorization took too long; start again",
            ),
            StateError::Used => ("state_used", "this authorization was already completed"),
        };
        ApiError::bad_request(code, message)
    }
}

fn mac(key: &[u8]) -> Hmac<sha2::Sha256> {
    Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any length")
}

pub fn sign(key: &[u8], claims: &Claims) -> String {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let mut mac = mac(key);
    mac.update(body.as_bytes());
    format!(
        "{body}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// Checks the signature and the expiry (not the single use: that is the store's).
pub fn verify(key: &[u8], state: &str, now: i64) -> Result<Claims, StateError> {
    let (body, signature) = state.split_once('.').ok_or(StateError::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| StateError::Malformed)?;
    let mut mac = mac(key);
    mac.update(body.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| StateError::BadSignature)?;
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(body)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(StateError::Malformed)?;
    if claims.e <= now {
        return Err(StateError::Expired);
    }
    Ok(claims)
}

/// POST /integrations/oauth_url
pub async fn oauth_url(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<OAuthUrlRequest>,
) -> ApiResult<Json<OAuthUrlResponse>> {
    let customer = caller.customer_id.clone();
    if request.service != "CONFLUENCE" {
        return Err(ApiError::field(
            &["service"],
            "only CONFLUENCE is supported",
        ));
    }
    // Without a subdomain, the site is picked from accessible-resources
    // (the only one the account reaches).
    let subdomain = request
        .confluence_subdomain
        .clone()
        .filter(|s| !s.is_empty());
    if let Some(subdomain) = &subdomain {
        app.config
            .resolve_site(subdomain)
            .map_err(|message| ApiError::field(&["confluence_subdomain"], message))?;
    }
    let settings = connection_settings(
        request.chunk_size,
        request.chunk_overlap,
        request.sync_files_on_connection,
        request.data_source_tags.clone(),
        request.enforce_permissions,
        request.sync_source_items,
        request.file_sync_config.as_ref(),
    )?;
    if let Some(id) = request.data_source_id {
        // Reconnecting: it must be this customer's.
        let user = app
            .store
            .end_user(&caller.organisation.id, &customer)
            .await?;
        let owned = match user {
            Some(user) => {
                app.store
                    .data_source(&caller.organisation.id, &user.id, id)
                    .await?
            }
            None => None,
        };
        if owned.is_none() {
            return Err(ApiError::not_found("data source"));
        }
    }
    let (oauth, redirect_uri, own_app) = oauth_app(&app, &caller.organisation.id).await?;
    let saved = serde_json::json!({
        "subdomain": subdomain,
        "settings": settings,
        "data_source_id": request.data_source_id,
        // The app the consent is for: the callback exchanges the code with
        // it, and the connection remembers it for every refresh.
        "own_app": own_app,
        "client_id": oauth.client_id,
    });
    let oauth_url = begin(
        &app,
        &caller.organisation.id,
        &customer,
        saved,
        &oauth.client_id,
        &redirect_uri,
    )
    .await?;
    Ok(Json(OAuthUrlResponse { oauth_url }))
}

/// Starts a consent: a single-use state carrying `saved` (the request's
/// settings, the app; `admin` for the console's), and the authorize URL
/// to send the browser to. `customer` is empty for the console's.
pub(crate) async fn begin(
    app: &App,
    organisation_id: &str,
    customer: &str,
    saved: serde_json::Value,
    client_id: &str,
    redirect_uri: &str,
) -> ApiResult<String> {
    let nonce = hex::encode(rand::thread_rng().gen::<[u8; 16]>());
    let expires = chrono::Utc::now()
        + chrono::Duration::seconds(app.config.oauth_state_ttl_secs.clamp(1, 86_400) as i64);
    let claims = Claims {
        n: nonce.clone(),
        o: organisation_id.to_string(),
        c: customer.to_string(),
        e: expires.timestamp(),
    };
    app.store
        .save_oauth_state(
            &nonce,
            organisation_id,
            customer,
            &saved,
            &expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
        .await?;
    let state = sign(&app.state_key, &claims);
    let mut url =
        url::Url::parse(&app.config.atlassian.authorize_url).map_err(ApiError::internal)?;
    url.query_pairs_mut()
        .append_pair("audience", "api.atlassian.com")
        .append_pair("client_id", client_id)
        .append_pair("scope", &app.config.atlassian.scopes.join(" "))
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", &state)
        .append_pair("response_type", "code")
        .append_pair("prompt", "consent");
    Ok(url.to_string())
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    expires_in: i64,
}

/// GET /integrations/confluence/oauth: Atlassian sends the browser here.
pub async fn callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    match complete(&app, query.as_deref().unwrap_or("")).await {
        // The console's consent: the admin picks the site next.
        Ok(Completed::Console(consent)) => {
            Redirect::to(&format!("/admin/connect/site?consent={consent}")).into_response()
        }
        Ok(Completed::ConsoleCancelled) => {
            Redirect::to("/admin/connections/new?cancelled=1").into_response()
        }
        Ok(Completed::DataSource(data_source_id)) if browser => Html(format!(
            "<!DOCTYPE html><html><head><title>Connected</title></head><body>\
             <h1>Confluence is connected</h1><p>Data source {data_source_id}. You can close this window.</p>\
             </body></html>"
        ))
        .into_response(),
        Ok(Completed::DataSource(data_source_id)) => {
            Json(serde_json::json!({"success": true, "data_source_id": data_source_id})).into_response()
        }
        Err(error) => error.into_response(),
    }
}

/// What a callback finished.
enum Completed {
    /// An API customer's data source, connected.
    DataSource(i64),
    /// An admin's consent, held for the site choice (its id).
    Console(String),
    /// An admin said no at Atlassian.
    ConsoleCancelled,
}

async fn complete(app: &App, query: &str) -> ApiResult<Completed> {
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
    let state = params
        .get("state")
        .ok_or_else(|| ApiError::bad_request("invalid_state", "the state parameter is missing"))?;
    let claims =
        verify(&app.state_key, state, chrono::Utc::now().timestamp()).map_err(|e| e.api())?;
    let saved = match app.store.consume_oauth_state(&claims.n).await? {
        store::StateOutcome::Valid {
            organisation_id,
            customer_id,
            request,
        } if organisation_id == claims.o && customer_id == claims.c => request,
        store::StateOutcome::Valid { .. } | store::StateOutcome::Unknown => {
            return Err(StateError::BadSignature.api())
        }
        store::StateOutcome::Used => return Err(StateError::Used.api()),
        store::StateOutcome::Expired => return Err(StateError::Expired.api()),
    };
    let organisation = app.store.organisation(&claims.o).await?;
    let admin = saved["admin"].as_str().map(str::to_string);
    if admin.is_some() && params.contains_key("error") {
        return Ok(Completed::ConsoleCancelled);
    }
    if params.contains_key("error") {
        // The user said no: Carbon's CANCEL event.
        app.store
            .emit_events(
                &organisation.id,
                &[crate::events::body(
                    crate::events::EventKind::Cancel,
                    &claims.c,
                    "NONE",
                    serde_json::Value::Null,
                    &[],
                )],
            )
            .await?;
        app.outbox_ready.notify_one();
        return Err(ApiError::bad_request(
            "access_denied",
            "the authorization was cancelled",
        ));
    }
    let code = params
        .get("code")
        .ok_or_else(|| ApiError::bad_request("invalid_request", "the code parameter is missing"))?;
    let site = match saved["subdomain"].as_str() {
        Some(subdomain) => Some(
            app.config
                .resolve_site(subdomain)
                .map_err(|m| ApiError::bad_request("invalid_subdomain", m))?,
        ),
        None => None,
    };
    let (oauth, redirect_uri, own_app) =
        match (saved["own_app"].as_bool(), saved["client_id"].as_str()) {
            (Some(own_app), Some(client_id)) => {
                let (oauth, redirect_uri) =
                    issuing_app(app, &organisation.id, own_app, Some(client_id))
                        .await
                        .map_err(|message| ApiError::bad_request("oauth_app_changed", message))?;
                (oauth, redirect_uri, own_app)
            }
            // A consent begun before apps were recorded: the current one.
            _ => oauth_app(app, &organisation.id).await?,
        };
    // The code for tokens.
    let answer = app
        .http
        .post(&oauth.token_url)
        .json(&serde_json::json!({
            "grant_type": "authorization_code",
            "client_id": oauth.client_id,
            "client_secret": oauth.client_secret,
            "code": code,
            "redirect_uri": redirect_uri,
        }))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|_| {
            ApiError::bad_gateway(
                "atlassian_unreachable",
                "Atlassian's token endpoint could not be reached",
            )
        })?;
    if !answer.status().is_success() {
        return Err(ApiError::bad_request(
            "code_exchange_failed",
            format!(
                "Atlassian refused the authorization code ({})",
                answer.status()
            ),
        ));
    }
    let tokens: TokenAnswer = answer.json().await.map_err(|_| {
        ApiError::bad_gateway(
            "atlassian_bad_answer",
            "Atlassian's token answer was not understood",
        )
    })?;
    let refresh_token = tokens.refresh_token.ok_or_else(|| {
        ApiError::bad_request(
            "no_refresh_token",
            "no refresh token: the app must ask for offline_access",
        )
    })?;
    let resources = accessible_resources(app, &tokens.access_token).await?;
    let secret = Secret::OAuth {
        oauth: confluence::OAuthTokens {
            access_token: tokens.access_token,
            refresh_token,
            expires_at: chrono::Utc::now().timestamp() + tokens.expires_in,
            lifetime_secs: tokens.expires_in,
        },
        own_app,
        client_id: Some(oauth.client_id.clone()),
    };
    if let Some(admin_id) = admin {
        let resources = resources
            .into_iter()
            .filter(|r| valid_cloud_id(&r.id))
            .collect();
        let consent = crate::console::hold_consent(
            app,
            crate::console::PendingConsent {
                admin_id,
                organisation_id: organisation.id.clone(),
                secret,
                resources,
                created: std::time::Instant::now(),
            },
        );
        return Ok(Completed::Console(consent));
    }
    let (gateway, site_link) = site_of(app, &resources, site.as_ref())?;
    let settings: ConnectSettings =
        serde_json::from_value(saved["settings"].clone()).map_err(ApiError::internal)?;
    let reconnect = saved["data_source_id"].as_i64();
    let connection = finish_connect(
        app,
        &organisation,
        crate::routes::Owner::Customer(&claims.c),
        "oauth",
        &gateway,
        "/wiki",
        Some(&site_link),
        secret,
        &settings,
        reconnect,
    )
    .await?;
    Ok(Completed::DataSource(connection.data_source_id))
}

/// Carbon's Confluence connect: an access and a refresh token the caller
/// obtained with the organisation's own OAuth app (registered with
/// /white_label/create), for the site the subdomain names. The tokens are
/// taken as they are and refreshed with that app from the first sync on
/// (the refresh token rotates then, and at each refresh after).
pub(crate) async fn connect_with_tokens(
    app: &App,
    organisation: &store::Organisation,
    customer: &str,
    access_token: &str,
    refresh_token: &str,
    site: &crate::config::ResolvedSite,
    settings: &ConnectSettings,
) -> ApiResult<store::Connection> {
    let (oauth, _, own_app) = oauth_app(app, &organisation.id).await?;
    if !own_app {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "oauth_app_not_configured",
            "tokens from your own OAuth app need that app registered first (/white_label/create): confsync refreshes them with it",
        ));
    }
    if refresh_token.is_empty() || refresh_token.chars().count() > 4096 {
        return Err(ApiError::field(
            &["authentication", "refresh_token"],
            "must be 1 to 4096 characters",
        ));
    }
    let resources = accessible_resources(app, access_token).await?;
    let (gateway, site_link) = site_of(app, &resources, Some(site))?;
    let secret = Secret::OAuth {
        oauth: confluence::OAuthTokens {
            access_token: access_token.to_string(),
            refresh_token: refresh_token.to_string(),
            // Its lifetime is not known: refreshed before the first use.
            expires_at: chrono::Utc::now().timestamp(),
            lifetime_secs: 3600,
        },
        own_app: true,
        client_id: Some(oauth.client_id.clone()),
    };
    finish_connect(
        app,
        organisation,
        crate::routes::Owner::Customer(customer),
        "oauth",
        &gateway,
        "/wiki",
        Some(&site_link),
        secret,
        settings,
        None,
    )
    .await
}

/// The sites an OAuth access token reaches (Atlassian's
/// accessible-resources, at the configured gateway only), those with an
/// http(s) URL.
pub(crate) async fn accessible_resources(
    app: &App,
    access_token: &str,
) -> ApiResult<Vec<Resource>> {
    let resources: Vec<Resource> = app
        .http
        .get(app.config.accessible_resources_url())
        .bearer_auth(access_token)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|_| {
            ApiError::bad_gateway(
                "atlassian_unreachable",
                "accessible-resources could not be reached",
            )
        })?
        .json()
        .await
        .map_err(|_| {
            ApiError::bad_gateway(
                "atlassian_bad_answer",
                "accessible-resources was not understood",
            )
        })?;
    // Only the gateway (configured) is ever called; the site's URL is kept
    // for links, and must be an http(s) URL.
    Ok(resources
        .into_iter()
        .filter(|r| {
            url::Url::parse(&r.url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        })
        .collect())
}

/// The site a connection syncs: the one whose URL the subdomain names, or
/// the only one reached. Its API gateway URL and its link.
pub(crate) fn site_of(
    app: &App,
    resources: &[Resource],
    site: Option<&crate::config::ResolvedSite>,
) -> ApiResult<(String, String)> {
    let resource = match site {
        Some(site) => resources
            .iter()
            .find(|r| {
                r.url
                    .trim_end_matches('/')
                    .eq_ignore_ascii_case(&site.base_url)
            })
            .ok_or_else(|| {
                ApiError::bad_request(
                    "site_not_accessible",
                    format!("the account that consented cannot reach {}", site.base_url),
                )
            })?,
        None => match resources {
            [only] => only,
            [] => {
                return Err(ApiError::bad_request(
                    "site_not_accessible",
                    "the account that consented reaches no Confluence site",
                ))
            }
            several => {
                let urls: Vec<&str> = several.iter().map(|r| r.url.as_str()).collect();
                return Err(ApiError::bad_request(
                    "choose_site",
                    format!(
                        "the account reaches several sites ({}): give confluence_subdomain",
                        urls.join(", ")
                    ),
                ));
            }
        },
    };
    if !valid_cloud_id(&resource.id) {
        return Err(ApiError::bad_gateway(
            "atlassian_bad_answer",
            "the site's cloud id is malformed",
        ));
    }
    let gateway = format!(
        "{}/ex/confluence/{}",
        app.config.atlassian.api_url.trim_end_matches('/'),
        resource.id
    );
    Ok((gateway, resource.url.trim_end_matches('/').to_string()))
}

/// A cloud id goes into the gateway's path: letters, digits and hyphens.
fn valid_cloud_id(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_signed_and_expire() {
        let key = [7u8; 32];
        let claims = Claims {
            n: "abc".into(),
            o: "org_1".into(),
            c: "customer".into(),
            e: 2_000,
        };
        let state = sign(&key, &claims);
        assert_eq!(verify(&key, &state, 1_000), Ok(claims));
        assert_eq!(verify(&key, &state, 2_000), Err(StateError::Expired));
        assert_eq!(
            verify(&[8u8; 32], &state, 1_000),
            Err(StateError::BadSignature)
        );
        // Changing the claims (another customer) breaks the signature.
        let (_, signature) = state.split_once('.').unwrap();
        let forged = Claims {
            n: "abc".into(),
            o: "org_1".into(),
            c: "someone else".into(),
            e: 2_000,
        };
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            verify(&key, &format!("{forged_body}.{signature}"), 1_000),
            Err(StateError::BadSignature)
        );
        assert_eq!(verify(&key, "garbage", 1_000), Err(StateError::Malformed));
        assert_eq!(verify(&key, "a.b!", 1_000), Err(StateError::Malformed));
    }
}
