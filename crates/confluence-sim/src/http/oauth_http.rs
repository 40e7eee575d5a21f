//! Atlassian's OAuth 2.0 (3LO) endpoints: `/authorize` with a consent step
//! (an HTML form a browser shows, which a test posts directly), the token
//! endpoint, and `accessible-resources`.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::time::{Duration, Instant};

use super::{AppState, Params};
use crate::body::escape;
use crate::oauth::{CodeGrant, TokenError};

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn valid_redirect(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

pub(crate) async fn authorize(State(shared): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let params = Params::parse(raw.as_deref());
    let client_id = params.get("client_id").unwrap_or("");
    let redirect_uri = params.get("redirect_uri").unwrap_or("");
    let scope = params.get("scope").unwrap_or("");
    let state = params.get("state").unwrap_or("");
    if client_id != shared.oauth.lock().client_id {
        return (StatusCode::BAD_REQUEST, Html("<h1>Invalid client_id</h1>")).into_response();
    }
    if params.get("response_type") != Some("code") {
        return (
            StatusCode::BAD_REQUEST,
            Html("<h1>response_type must be code</h1>"),
        )
            .into_response();
    }
    if params.get("audience") != Some("api.atlassian.com") {
        return (
            StatusCode::BAD_REQUEST,
            Html("<h1>audience must be api.atlassian.com</h1>"),
        )
            .into_response();
    }
    if !valid_redirect(redirect_uri) {
        return (
            StatusCode::BAD_REQUEST,
            Html("<h1>Invalid redirect_uri</h1>"),
        )
            .into_response();
    }
    let accounts: String = shared
        .site
        .read()
        .users
        .iter()
        .map(|u| {
            format!(
                "<option value=\"{0}\">{1} ({0})</option>",
                escape(&u.email),
                escape(&u.display_name)
            )
        })
        .collect();
    Html(format!(
        "<!DOCTYPE html><html><head><title>Authorize app</title></head><body>\
         <h1>An app wants to access your Atlassian account</h1>\
         <p>Scopes: {scope_text}</p>\
         <form method=\"post\" action=\"/authorize/consent\">\
         <input type=\"hidden\" name=\"client_id\" value=\"{client_id}\">\
         <input type=\"hidden\" name=\"redirect_uri\" value=\"{redirect_uri}\">\
         <input type=\"hidden\" name=\"scope\" value=\"{scope_text}\">\
         <input type=\"hidden\" name=\"state\" value=\"{state}\">\
         <label>Account <select name=\"account\">{accounts}</select></label>\
         <button type=\"submit\" name=\"decision\" value=\"accept\">Accept</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Cancel</button>\
         </form></body></html>",
        scope_text = escape(scope),
        client_id = escape(client_id),
        redirect_uri = escape(redirect_uri),
        state = escape(state),
    ))
    .into_response()
}

#[derive(Deserialize)]
pub(crate) struct Consent {
    client_id: String,
    redirect_uri: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    state: String,
    account: String,
    decision: String,
}

/// The consent form's target: redirects to the app with a code (or with
/// `error=access_denied`) and the state, as Atlassian does.
pub(crate) async fn consent(State(shared): State<AppState>, body: Bytes) -> Response {
    let Ok(form) = serde_urlencoded_from(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Html("<h1>Malformed consent form</h1>"),
        )
            .into_response();
    };
    if form.client_id != shared.oauth.lock().client_id || !valid_redirect(&form.redirect_uri) {
        return (
            StatusCode::BAD_REQUEST,
            Html("<h1>Invalid client or redirect_uri</h1>"),
        )
            .into_response();
    }
    let Some(user) = shared.site.read().user_by_email(&form.account) else {
        return (StatusCode::BAD_REQUEST, Html("<h1>Unknown account</h1>")).into_response();
    };
    let mut location = match url::Url::parse(&form.redirect_uri) {
        Ok(url) => url,
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                Html("<h1>Invalid redirect_uri</h1>"),
            )
                .into_response()
        }
    };
    if form.decision == "accept" {
        let code = shared.oauth.lock().issue_code(CodeGrant {
            client_id: form.client_id.clone(),
            redirect_uri: form.redirect_uri.clone(),
            user,
            scope: form.scope.clone(),
            expires: Instant::now() + Duration::from_secs(600),
        });
        location
            .query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &form.state);
    } else {
        location
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "User did not authorize the request")
            .append_pair("state", &form.state);
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

fn serde_urlencoded_from(body: &[u8]) -> Result<Consent, serde_json::Error> {
    let map: serde_json::Map<String, serde_json::Value> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
        .collect();
    serde_json::from_value(serde_json::Value::Object(map))
}

#[derive(Deserialize, Default)]
struct TokenRequest {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    refresh_token: String,
}

/// `POST /oauth/token`, with a JSON body as Atlassian documents it (a form
/// body is accepted too, as OAuth libraries send).
pub(crate) async fn token(
    State(shared): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let request: Option<TokenRequest> = if is_form {
        let map: serde_json::Map<String, serde_json::Value> = url::form_urlencoded::parse(&body)
            .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
            .collect();
        serde_json::from_value(serde_json::Value::Object(map)).ok()
    } else {
        serde_json::from_slice(&body).ok()
    };
    let Some(request) = request else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Malformed request body",
        );
    };
    let now = Instant::now();
    let mut oauth = shared.oauth.lock();
    oauth.sweep(now);
    let result = match request.grant_type.as_str() {
        "authorization_code" => oauth.exchange_code(
            &request.client_id,
            &request.client_secret,
            &request.code,
            &request.redirect_uri,
            now,
        ),
        "refresh_token" => oauth.refresh(
            &request.client_id,
            &request.client_secret,
            &request.refresh_token,
            now,
        ),
        "" => Err(TokenError::InvalidRequest("grant_type is required")),
        _ => Err(TokenError::UnsupportedGrantType),
    };
    match result {
        Ok(pair) => {
            let mut body = json!({
                "access_token": pair.access_token,
                "expires_in": pair.expires_in,
                "token_type": "Bearer",
                "scope": pair.scope,
            });
            if let Some(refresh) = pair.refresh_token {
                body["refresh_token"] = refresh.into();
            }
            Json(body).into_response()
        }
        Err(TokenError::InvalidClient) => {
            oauth_error(StatusCode::UNAUTHORIZED, "access_denied", "Unauthorized")
        }
        Err(TokenError::InvalidGrant(description)) => {
            oauth_error(StatusCode::FORBIDDEN, "invalid_grant", description)
        }
        Err(TokenError::UnsupportedGrantType) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Unsupported grant type",
        ),
        Err(TokenError::InvalidRequest(description)) => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
        }
    }
}

pub(crate) async fn accessible_resources(
    State(shared): State<AppState>,
    headers: HeaderMap,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .trim()
        .to_string();
    // The OAuth lock is released before the site lock is taken: locks are
    // never held in the opposite order of `Simulator::credentials`.
    let scopes: Vec<String> = {
        let oauth = shared.oauth.lock();
        if oauth.access_user(&token, Instant::now()).is_err() {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"code": 401, "message": "Unauthorized"})),
            )
                .into_response();
        }
        oauth
            .access_scope(&token)
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty() && *s != "offline_access")
            .map(str::to_string)
            .collect()
    };
    let site = shared.site.read();
    Json(json!([{
        "id": site.cloud_id,
        "name": site.site_name,
        "url": shared.base_url.read().clone(),
        "scopes": scopes,
        "avatarUrl": "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/rocket.png",
    }]))
    .into_response()
}
