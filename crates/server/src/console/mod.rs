//! The admin console at `/admin`: a knowledge administrator's Confluence
//! connections in the browser (Zendesk Knowledge's external content
//! connections). Server-rendered HTML; every page works without script,
//! and `assets/console.js` adds the type-ahead spaces picker and live sync
//! progress. Every asset is embedded in the binary.
//!
//! The console is a client of the same domain operations as the API
//! (`store::Store::connect`, `choose_scope`, `queue_sync`,
//! `remove_space`, ...), each recorded with the admin who did it. Its
//! connections belong to the organisation itself (no API customer).
//!
//! Sign-in: email and password (Argon2id) or a one-time link from
//! `confsync admin create-admin`. The session is a random token in an
//! HttpOnly, SameSite=Lax cookie (Secure when the public URL is https),
//! stored hashed with its expiry and the CSRF token every form carries.

// A handler answers with a page either way: its error is the page that
// says what went wrong, a `Response`, which clippy finds large.
#![allow(clippy::result_large_err)]

mod pages;

use crate::connection::{client_for, oauth_app, web_link, Scope, Secret};
use crate::routes::{finish_connect, ConnectSettings, Owner};
use crate::{App, AppState};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use rand::Rng;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use store::{Audiences, SyncState};

const COOKIE: &str = "confsync_admin";
/// The largest console form (spaces chosen, segment lists).
const FORM_LIMIT: usize = 256 * 1024;
/// At most this many spaces chosen in one form.
const MAX_CHOSEN: usize = 1_000;

/// The console's in-process state.
pub struct ConsoleState {
    /// Sign-in attempts per email: a password cannot be guessed at speed.
    signin_rate: governor::DefaultKeyedRateLimiter<String>,
    /// OAuth consents waiting for the admin to pick a site (tokens kept in
    /// memory only, for ten minutes).
    consents: std::sync::Mutex<HashMap<String, PendingConsent>>,
}

impl ConsoleState {
    pub fn new(config: &crate::config::ConsoleConfig) -> ConsoleState {
        let per_minute = std::num::NonZeroU32::new(config.signin_attempts_per_minute.max(1))
            .unwrap_or(std::num::NonZeroU32::MIN);
        ConsoleState {
            signin_rate: governor::RateLimiter::keyed(governor::Quota::per_minute(per_minute)),
            consents: Default::default(),
        }
    }
}

/// An Atlassian site the consenting account reaches.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Resource {
    pub id: String,
    pub url: String,
    #[serde(default)]
    pub name: String,
}

/// A finished OAuth consent of an admin, waiting for the site choice.
pub struct PendingConsent {
    pub admin_id: String,
    pub organisation_id: String,
    pub secret: Secret,
    pub resources: Vec<Resource>,
    pub created: Instant,
}

const CONSENT_TTL: Duration = Duration::from_secs(600);

/// Keeps an admin's consent until they pick a site; returns its id.
pub fn hold_consent(app: &App, consent: PendingConsent) -> String {
    let id = hex::encode(rand::thread_rng().gen::<[u8; 16]>());
    let mut held = app
        .console
        .consents
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    held.retain(|_, c| c.created.elapsed() < CONSENT_TTL);
    held.insert(id.clone(), consent);
    id
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(connections_page))
        .route("/admin/connections/table", get(connections_table))
        .route("/admin/assets/console.css", get(css))
        .route("/admin/assets/console.js", get(js))
        .route("/admin/signin", get(signin_page).post(signin))
        .route(
            "/admin/signin/link/{token}",
            get(link_page).post(link_signin),
        )
        .route("/admin/signout", post(signout))
        .route("/admin/account", get(account_page).post(set_password))
        .route("/admin/connections/new", get(new_connection_page))
        .route("/admin/connect/oauth", post(connect_oauth))
        .route("/admin/connect/site", get(site_page).post(choose_site))
        .route("/admin/connect/token", post(connect_token))
        .route(
            "/admin/connections/{ds}/spaces",
            get(spaces_page).post(add_spaces),
        )
        .route("/admin/connections/{ds}/spaces/options", get(space_options))
        .route("/admin/connections/{ds}/sync", post(sync_site))
        .route(
            "/admin/connections/{ds}/remove",
            get(remove_site_page).post(remove_site),
        )
        .route(
            "/admin/connections/{ds}/spaces/{key}",
            get(manage_page).post(save_permissions),
        )
        .route(
            "/admin/connections/{ds}/spaces/{key}/sync",
            post(sync_space),
        )
        .route(
            "/admin/connections/{ds}/spaces/{key}/remove",
            get(remove_space_page).post(remove_space),
        )
        .route("/admin/segments", post(create_segment))
        .route("/admin/preview", get(preview_page))
        .route("/admin/customers", get(customers_page))
        .route("/admin/customers/{ds}/sync", post(sync_customer))
}

/// Headers on every console answer: no caching, no framing, scripts and
/// styles from confsync only; forms may post here and, for the OAuth
/// consent, to Atlassian's authorize page.
pub async fn security_headers(
    State(app): State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let console = request.uri().path().starts_with("/admin");
    let mut response = next.run(request).await;
    if console {
        let authorize = url::Url::parse(&app.config.atlassian.authorize_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        let policy = format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self' {authorize}"
        );
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&policy) {
            headers.insert(header::CONTENT_SECURITY_POLICY, value);
        }
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        if !headers.contains_key(header::CACHE_CONTROL) {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
    response
}

// Passwords and tokens.

/// An Argon2id hash (PHC string) of a password.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Whether a new password is acceptable; the reason when not.
pub fn check_password(password: &str) -> Result<(), String> {
    let length = password.chars().count();
    if length < 12 {
        return Err("a password is at least 12 characters".into());
    }
    if length > 1_000 {
        return Err("a password is at most 1,000 characters".into());
    }
    Ok(())
}

fn random_token() -> String {
    hex::encode(rand::thread_rng().gen::<[u8; 32]>())
}

/// A one-time sign-in link for an admin, valid for `ttl`: its URL under
/// the server's public URL.
pub async fn signin_link(
    store: &store::Store,
    public_url: &str,
    admin_id: &str,
    ttl: Duration,
) -> store::Result<String> {
    let token = random_token();
    let expires = chrono::Utc::now()
        + chrono::Duration::from_std(ttl).unwrap_or_else(|_| chrono::Duration::hours(1));
    store
        .add_admin_link(
            admin_id,
            &crate::hash_secret(&token),
            &expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
        .await?;
    Ok(format!(
        "{}/admin/signin/link/{token}",
        public_url.trim_end_matches('/')
    ))
}

// Sessions.

/// A signed-in admin.
pub struct Session {
    pub admin: store::Admin,
    pub csrf: String,
    token_hash: String,
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = cookie_token(&parts.headers);
        if let Some(token) = &token {
            let token_hash = crate::hash_secret(token);
            match app.store.admin_session(&token_hash).await {
                Ok(Some((admin, csrf))) => {
                    return Ok(Session {
                        admin,
                        csrf,
                        token_hash,
                    })
                }
                Ok(None) => {}
                Err(error) => return Err(failure(error)),
            }
        }
        // Not signed in (or no longer): pages send the browser to the
        // sign-in page, and back here after it; anything else is 401.
        let expired = token.is_some();
        if parts.method == Method::GET {
            let next = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/admin");
            let mut to = url::form_urlencoded::Serializer::new(String::new());
            to.append_pair("next", next);
            if expired {
                to.append_pair("expired", "1");
            }
            return Err(Redirect::to(&format!("/admin/signin?{}", to.finish())).into_response());
        }
        Err(pages::message(
            StatusCode::UNAUTHORIZED,
            "Signed out",
            if expired {
                "Your session has expired. Sign in again, then repeat what you were doing."
            } else {
                "Sign in first."
            },
            Some(("/admin/signin", "Sign in")),
        ))
    }
}

/// A console form: its fields in order (a name may repeat).
pub struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").trim().to_string()
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = Response;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let form_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !form_type {
            return Err(pages::message(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Not a form",
                "The console takes forms (application/x-www-form-urlencoded).",
                None,
            ));
        }
        // Read no further than the limit: a larger body is refused, never
        // buffered whole.
        let Ok(bytes) = axum::body::to_bytes(request.into_body(), FORM_LIMIT).await else {
            return Err(pages::message(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Form too large",
                "The form is larger than the console takes, or it did not arrive whole.",
                None,
            ));
        };
        Ok(Form(
            url::form_urlencoded::parse(&bytes).into_owned().collect(),
        ))
    }
}

impl Session {
    /// Refuses a form that does not carry this session's CSRF token.
    fn check(&self, form: &Form) -> Result<(), Response> {
        use subtle_eq::eq;
        match form.get("csrf") {
            Some(token) if eq(token.as_bytes(), self.csrf.as_bytes()) => Ok(()),
            _ => Err(pages::message(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form did not come from your current session (it may be from another tab or an old page). Go back, reload the page and try again.",
                Some(("/admin", "Back to connections")),
            )),
        }
    }

    fn actor(&self) -> store::Actor<'_> {
        store::Actor::from(&self.admin)
    }
}

/// Constant-time comparison, so that a CSRF token cannot be guessed byte
/// by byte from response times.
mod subtle_eq {
    pub fn eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

fn session_cookie(app: &App, token: &str, max_age: Option<Duration>) -> HeaderValue {
    let secure = app.config.public_url().starts_with("https://");
    let mut cookie = cookie::Cookie::build((COOKIE, token.to_string()))
        .path("/admin")
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .secure(secure);
    cookie = match max_age {
        Some(age) => cookie.max_age(cookie::time::Duration::seconds(age.as_secs() as i64)),
        None => cookie.max_age(cookie::time::Duration::ZERO),
    };
    HeaderValue::from_str(&cookie.build().to_string()).unwrap_or(HeaderValue::from_static(""))
}

fn session_ttl(app: &App) -> Duration {
    Duration::from_secs(app.config.console.session_hours.clamp(1, 24 * 30) * 3600)
}

fn expiry(ttl: Duration) -> String {
    (chrono::Utc::now()
        + chrono::Duration::from_std(ttl).unwrap_or_else(|_| chrono::Duration::hours(12)))
    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Where to go after signing in: a console path only (never elsewhere).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/admin") && !n.contains("//") && !n.contains('\\') => n.into(),
        _ => "/admin".into(),
    }
}

fn signed_in(app: &App, token: &str, to: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(app, token, Some(session_ttl(app))),
    );
    response
}

fn failure(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "console request failed");
    pages::message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The console could not do this. Nothing was changed by the failed step; try again, and if it goes on, the server's log says why.",
        Some(("/admin", "Back to connections")),
    )
}

fn not_found(what: &str) -> Response {
    pages::message(
        StatusCode::NOT_FOUND,
        "Not found",
        &format!("There is no such {what} in your organisation's connections."),
        Some(("/admin", "Back to connections")),
    )
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

type Page = Result<Response, Response>;

// Assets.

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("assets/console.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("assets/console.js"),
    )
        .into_response()
}

// Signing in and out.

#[derive(serde::Deserialize)]
struct SigninQuery {
    next: Option<String>,
    expired: Option<String>,
}

async fn signin_page(Query(query): Query<SigninQuery>) -> Response {
    let notice = query
        .expired
        .is_some()
        .then_some("Your session has expired. Sign in again.");
    pages::signin(
        &safe_next(query.next.as_deref()),
        "",
        notice,
        StatusCode::OK,
    )
}

async fn signin(State(app): State<AppState>, form: Form) -> Response {
    let email = form.text("email").to_lowercase();
    let password = form.get("password").unwrap_or("").to_string();
    let next = safe_next(form.get("next"));
    if app.console.signin_rate.check_key(&email).is_err() {
        return pages::signin(
            &next,
            &email,
            Some("Too many sign-in attempts for this email. Wait a minute and try again."),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let found = match app.store.admin_by_email(&email).await {
        Ok(found) => found,
        Err(error) => return failure(error),
    };
    // An unknown email costs as much as a wrong password.
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$uyRlBqTzcKiMtVYXZHjQdTdjJxsK/vZrl4EBmgzXVS4";
    let (admin, hash) = match found {
        Some((admin, Some(hash))) => (Some(admin), hash),
        _ => (None, DUMMY.to_string()),
    };
    let verified = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let Some(admin) = admin.filter(|_| verified) else {
        return pages::signin(
            &next,
            &email,
            Some("That email and password do not match an admin."),
            StatusCode::UNAUTHORIZED,
        );
    };
    let token = random_token();
    let csrf = random_token();
    let expires_at = expiry(session_ttl(&app));
    let session = store::NewSession {
        token_hash: &crate::hash_secret(&token),
        csrf: &csrf,
        expires_at: &expires_at,
    };
    if let Err(error) = app.store.create_admin_session(&admin.id, &session).await {
        return failure(error);
    }
    signed_in(&app, &token, &next)
}

async fn link_page(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    match app.store.admin_link(&crate::hash_secret(&token)).await {
        Ok(Some(admin)) => pages::link(&admin),
        Ok(None) => pages::message(
            StatusCode::NOT_FOUND,
            "Link no longer valid",
            "This sign-in link was used already or has expired. Ask the operator for a new one (confsync admin create-admin prints one), or sign in with your password.",
            Some(("/admin/signin", "Sign in")),
        ),
        Err(error) => failure(error),
    }
}

/// Uses a sign-in link (a POST, so that a mail scanner fetching the link
/// does not use it up).
async fn link_signin(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    let session_token = random_token();
    let csrf = random_token();
    let expires_at = expiry(session_ttl(&app));
    let session = store::NewSession {
        token_hash: &crate::hash_secret(&session_token),
        csrf: &csrf,
        expires_at: &expires_at,
    };
    match app
        .store
        .use_admin_link(&crate::hash_secret(&token), &session)
        .await
    {
        Ok(Some(_)) => signed_in(&app, &session_token, "/admin"),
        Ok(None) => pages::message(
            StatusCode::NOT_FOUND,
            "Link no longer valid",
            "This sign-in link was used already or has expired.",
            Some(("/admin/signin", "Sign in")),
        ),
        Err(error) => failure(error),
    }
}

async fn signout(State(app): State<AppState>, session: Session, form: Form) -> Page {
    session.check(&form)?;
    app.store
        .end_admin_session(&session.token_hash)
        .await
        .map_err(failure)?;
    let mut response = see_other("/admin/signin");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&app, "", None));
    Ok(response)
}

async fn account_page(session: Session) -> Response {
    pages::account(&session, None, None)
}

async fn set_password(State(app): State<AppState>, session: Session, form: Form) -> Page {
    session.check(&form)?;
    let password = form.get("password").unwrap_or("").to_string();
    if let Err(reason) = check_password(&password) {
        return Ok(pages::account(&session, Some(&reason), None));
    }
    if form.get("confirm") != Some(password.as_str()) {
        return Ok(pages::account(
            &session,
            Some("The two passwords differ."),
            None,
        ));
    }
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(failure)?
        .map_err(failure)?;
    app.store
        .set_admin_password(&session.admin.id, &hash, Some(&session.token_hash))
        .await
        .map_err(failure)?;
    Ok(pages::account(
        &session,
        None,
        Some("Password set. Your other sessions were signed out."),
    ))
}

// Connections.

async fn connections_page(State(app): State<AppState>, session: Session) -> Page {
    let sites = app
        .store
        .console_sites(&session.admin.organisation_id)
        .await
        .map_err(failure)?;
    let actions = app
        .store
        .admin_actions(&session.admin.organisation_id, 10)
        .await
        .map_err(failure)?;
    Ok(pages::connections(&session, &sites, &actions))
}

/// The connections table alone, for the page's live refresh.
async fn connections_table(State(app): State<AppState>, session: Session) -> Page {
    let sites = app
        .store
        .console_sites(&session.admin.organisation_id)
        .await
        .map_err(failure)?;
    Ok(Html(pages::connections_table(&session, &sites).into_string()).into_response())
}

async fn new_connection_page(State(app): State<AppState>, session: Session) -> Response {
    let oauth = oauth_app(&app, &session.admin.organisation_id)
        .await
        .is_ok();
    pages::new_connection(&session, oauth, None, &Default::default())
}

/// Starts an OAuth consent for the admin's organisation (its own app or
/// the server's): the browser goes to Atlassian and comes back to the
/// API's callback, which hands the tokens to `site_page`.
async fn connect_oauth(State(app): State<AppState>, session: Session, form: Form) -> Page {
    session.check(&form)?;
    let organisation_id = &session.admin.organisation_id;
    let (oauth, redirect_uri, own_app) = match oauth_app(&app, organisation_id).await {
        Ok(found) => found,
        Err(_) => {
            return Ok(pages::new_connection(
                &session,
                false,
                Some("No OAuth app is configured for this server or organisation. Connect with an API token instead."),
                &Default::default(),
            ))
        }
    };
    let url = crate::oauth::begin(
        &app,
        organisation_id,
        "",
        serde_json::json!({
            "admin": session.admin.id,
            "own_app": own_app,
            "client_id": oauth.client_id,
        }),
        &oauth.client_id,
        &redirect_uri,
    )
    .await
    .map_err(|e| failure(e.message()))?;
    Ok(see_other(&url))
}

#[derive(serde::Deserialize)]
struct ConsentQuery {
    consent: String,
}

fn held_consent<'a>(
    held: &'a HashMap<String, PendingConsent>,
    id: &str,
    session: &Session,
) -> Option<&'a PendingConsent> {
    held.get(id).filter(|c| {
        c.admin_id == session.admin.id
            && c.organisation_id == session.admin.organisation_id
            && c.created.elapsed() < CONSENT_TTL
    })
}

async fn site_page(
    State(app): State<AppState>,
    session: Session,
    Query(query): Query<ConsentQuery>,
) -> Response {
    let resources = {
        let held = app
            .console
            .consents
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        held_consent(&held, &query.consent, &session).map(|c| c.resources.clone())
    };
    match resources {
        Some(resources) => pages::choose_site(&session, &query.consent, &resources, None),
        None => consent_gone(),
    }
}

fn consent_gone() -> Response {
    pages::message(
        StatusCode::NOT_FOUND,
        "Consent expired",
        "This Atlassian consent is no longer waiting (it is kept ten minutes, and used once). Connect again.",
        Some(("/admin/connections/new", "Create connection")),
    )
}

async fn choose_site(State(app): State<AppState>, session: Session, form: Form) -> Page {
    session.check(&form)?;
    let consent_id = form.text("consent");
    let consent = {
        let mut held = app
            .console
            .consents
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if held_consent(&held, &consent_id, &session).is_none() {
            None
        } else {
            held.remove(&consent_id)
        }
    };
    let Some(consent) = consent else {
        return Ok(consent_gone());
    };
    let chosen = form.text("site");
    let Some(resource) = consent.resources.iter().find(|r| r.id == chosen).cloned() else {
        let page = pages::choose_site(
            &session,
            &consent_id,
            &consent.resources,
            Some("Choose one of the sites listed."),
        );
        hold_again(&app, consent_id, consent);
        return Ok(page);
    };
    let gateway = format!(
        "{}/ex/confluence/{}",
        app.config.atlassian.api_url.trim_end_matches('/'),
        resource.id
    );
    let site_link = resource.url.trim_end_matches('/').to_string();
    connect_and_list(
        &app,
        &session,
        "oauth",
        &gateway,
        "/wiki",
        Some(&site_link),
        consent.secret,
    )
    .await
}

fn hold_again(app: &App, id: String, consent: PendingConsent) {
    app.console
        .consents
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, consent);
}

/// An API token (Cloud) or a personal access token (Data Center).
async fn connect_token(State(app): State<AppState>, session: Session, form: Form) -> Page {
    session.check(&form)?;
    let kind = form.text("kind");
    let site_name = form.text("site");
    let email = form.text("email");
    let token = form.get("token").unwrap_or("").trim().to_string();
    let oauth = oauth_app(&app, &session.admin.organisation_id)
        .await
        .is_ok();
    let values = pages::TokenForm {
        kind: kind.clone(),
        site: site_name.clone(),
        email: email.clone(),
    };
    let refuse = |message: String| {
        Ok(pages::new_connection(
            &session,
            oauth,
            Some(&message),
            &values,
        ))
    };
    let site = match app.config.resolve_site(&site_name) {
        Ok(site) => site,
        Err(reason) => return refuse(format!("Site: {reason}.")),
    };
    if token.is_empty() || token.chars().count() > 4096 {
        return refuse("Token: paste the token (1 to 4,096 characters).".into());
    }
    let secret = match kind.as_str() {
        "api_token" => {
            if !email.contains('@') || email.chars().count() > 320 {
                return refuse(
                    "Email: the email of the Atlassian account the token belongs to.".into(),
                );
            }
            Secret::ApiToken {
                email,
                api_token: token,
            }
        }
        "pat" => {
            if !site.configured {
                return refuse("Personal access tokens are for Data Center sites the operator configured; use an API token for Confluence Cloud.".into());
            }
            Secret::Pat { pat: token }
        }
        _ => return refuse("Choose an API token or a personal access token.".into()),
    };
    let auth_kind = if matches!(secret, Secret::Pat { .. }) {
        "pat"
    } else {
        "api_token"
    };
    connect_and_list(
        &app,
        &session,
        auth_kind,
        &site.base_url,
        &site.context_path,
        None,
        secret,
    )
    .await
}

/// Connects a site for the organisation (nothing chosen yet, so nothing
/// syncs), and sends the admin to its spaces.
async fn connect_and_list(
    app: &App,
    session: &Session,
    auth_kind: &str,
    site_url: &str,
    context: &str,
    site_link: Option<&str>,
    secret: Secret,
) -> Page {
    match connect_org(
        app,
        &session.admin,
        auth_kind,
        site_url,
        context,
        site_link,
        secret,
    )
    .await
    {
        // The spaces page lists them itself.
        Ok(connection) => Ok(see_other(&format!(
            "/admin/connections/{}/spaces",
            connection.data_source_id
        ))),
        Err(error) => {
            let oauth = oauth_app(app, &session.admin.organisation_id).await.is_ok();
            Ok(pages::new_connection(
                session,
                oauth,
                Some(&format!(
                    "Confluence refused the connection: {}",
                    error.message()
                )),
                &Default::default(),
            ))
        }
    }
}

/// The organisation's own connection to a site, made by an admin: the
/// same domain operation as the API's connect, recorded with the admin,
/// nothing chosen yet.
async fn connect_org(
    app: &App,
    admin: &store::Admin,
    auth_kind: &str,
    site_url: &str,
    context: &str,
    site_link: Option<&str>,
    secret: Secret,
) -> Result<store::Connection, crate::error::ApiError> {
    let organisation = app.store.organisation(&admin.organisation_id).await?;
    let settings = ConnectSettings {
        chunk_size: 1500,
        chunk_overlap: 20,
        sync_files_on_connection: false,
        tags: Default::default(),
        enforce_permissions: None,
        sync_source_items: false,
        content_kinds: None,
    };
    finish_connect(
        app,
        &organisation,
        Owner::Admin(admin),
        auth_kind,
        site_url,
        context,
        site_link,
        secret,
        &settings,
        None,
    )
    .await
}

/// Adds spaces to a console connection and queues the sync that fetches
/// them: one domain operation, recorded.
async fn add_content(
    app: &App,
    admin: &store::Admin,
    connection: &store::Connection,
    keys: &[String],
) -> store::Result<()> {
    let mut scope = Scope::of(connection).unwrap_or_default();
    scope.all = false;
    for key in keys {
        if !scope.spaces.contains(key) {
            scope.spaces.push(key.clone());
        }
    }
    app.store
        .choose_scope(
            &admin.organisation_id,
            &connection.id,
            &scope.to_json(),
            keys,
            None,
            None,
            &[],
            Some(store::Actor::from(admin)),
        )
        .await?;
    app.jobs_ready.notify_one();
    Ok(())
}

/// What an admin does for a site with an API token in the console, in one
/// call: connect, list the spaces, choose every one offered, sync. The
/// demo uses it; returns the connection.
pub async fn connect_every_space(
    app: &App,
    admin: &store::Admin,
    site: &str,
    email: &str,
    api_token: &str,
) -> Result<store::Connection, String> {
    let site = app.config.resolve_site(site)?;
    let secret = Secret::ApiToken {
        email: email.to_string(),
        api_token: api_token.to_string(),
    };
    let connection = connect_org(
        app,
        admin,
        "api_token",
        &site.base_url,
        &site.context_path,
        None,
        secret,
    )
    .await
    .map_err(|e| e.message())?;
    list_spaces(app, &connection).await?;
    let keys: Vec<String> = app
        .store
        .space_options(&connection.id, "", 10_000)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|o| o.key)
        .collect();
    add_content(app, admin, &connection, &keys)
        .await
        .map_err(|e| e.to_string())?;
    app.store
        .connection(&connection.id)
        .await
        .map_err(|e| e.to_string())
}

async fn own_connection(
    app: &App,
    session: &Session,
    ds: i64,
) -> Result<store::Connection, Response> {
    app.store
        .org_connection(&session.admin.organisation_id, ds, true)
        .await
        .map_err(failure)?
        .ok_or_else(|| not_found("connection"))
}

/// Lists the site's spaces that may be chosen (personal spaces are not
/// offered: the console's policy) into the store.
async fn list_spaces(app: &App, connection: &store::Connection) -> Result<usize, String> {
    use futures::TryStreamExt;
    let client = client_for(app, connection).await?;
    let spaces: Vec<confluence::model::Space> = client
        .stream::<confluence::model::Space>(client.spaces_url(&[]))
        .try_collect()
        .await
        .map_err(|e| format!("listing the site's spaces failed: {e}"))?;
    let items: Vec<store::NewSourceItem> = spaces
        .iter()
        .filter(|s| s.space_type != "personal")
        .map(|space| crate::jobs::space_item(connection, space, false))
        .collect();
    app.store
        .replace_space_options(&connection.id, &items)
        .await
        .map_err(|e| e.to_string())?;
    Ok(items.len())
}

fn chosen_spaces(connection: &store::Connection) -> Vec<String> {
    Scope::of(connection).map(|s| s.spaces).unwrap_or_default()
}

#[derive(serde::Deserialize, Default)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn spaces_page(
    State(app): State<AppState>,
    session: Session,
    Path(ds): Path<i64>,
    Query(query): Query<SearchQuery>,
) -> Page {
    let connection = own_connection(&app, &session, ds).await?;
    let notice = match list_spaces(&app, &connection).await {
        Ok(_) => None,
        Err(error) => Some(format!(
            "The site's spaces could not be listed again ({error}); the list below is the last one."
        )),
    };
    let chosen = chosen_spaces(&connection);
    let options = offered(&app, &connection, &chosen, &query.q).await?;
    Ok(pages::spaces(
        &session,
        &connection,
        &chosen,
        &options,
        &query.q,
        notice.as_deref(),
    ))
}

/// The first 20 spaces (alphabetical) matching `query` that the site
/// offers and the connection has not chosen yet.
async fn offered(
    app: &App,
    connection: &store::Connection,
    chosen: &[String],
    query: &str,
) -> Result<Vec<store::SpaceOption>, Response> {
    Ok(app
        .store
        .space_options(&connection.id, query, 20 + chosen.len() as i64)
        .await
        .map_err(failure)?
        .into_iter()
        .filter(|o| !chosen.contains(&o.key))
        .take(20)
        .collect())
}

/// The type-ahead: the first 20 spaces (alphabetical) matching `q`.
async fn space_options(
    State(app): State<AppState>,
    session: Session,
    Path(ds): Path<i64>,
    Query(query): Query<SearchQuery>,
) -> Page {
    let connection = own_connection(&app, &session, ds).await?;
    let chosen = chosen_spaces(&connection);
    let options = offered(&app, &connection, &chosen, &query.q).await?;
    Ok(axum::Json(options).into_response())
}

async fn add_spaces(
    State(app): State<AppState>,
    session: Session,
    Path(ds): Path<i64>,
    form: Form,
) -> Page {
    session.check(&form)?;
    let connection = own_connection(&app, &session, ds).await?;
    let mut wanted = form.all("space");
    wanted.sort();
    wanted.dedup();
    let refuse = |message: &str| -> Page {
        Ok(pages::spaces(
            &session,
            &connection,
            &chosen_spaces(&connection),
            &[],
            "",
            Some(message),
        ))
    };
    if wanted.is_empty() {
        return refuse("Choose at least one space.");
    }
    if wanted.len() > MAX_CHOSEN {
        return refuse("Choose at most 1,000 spaces at a time.");
    }
    // Only spaces the site offered (never personal ones, nor made-up keys).
    let mut offered = Vec::new();
    for key in &wanted {
        let found = app
            .store
            .space_options(&connection.id, key, 50)
            .await
            .map_err(failure)?;
        if !found.iter().any(|o| &o.key == key) {
            return refuse(&format!("{key} is not a space this site offers."));
        }
        offered.push(key.clone());
    }
    add_content(&app, &session.admin, &connection, &offered)
        .await
        .map_err(failure)?;
    Ok(see_other("/admin"))
}

fn site_label(connection: &store::Connection) -> String {
    let link = connection
        .site_link
        .clone()
        .unwrap_or_else(|| connection.site_url.clone());
    link.trim_start_matches("https://")
        .trim_start_matches("http://")
        .to_string()
}

async fn sync_site(
    State(app): State<AppState>,
    session: Session,
    Path(ds): Path<i64>,
    form: Form,
) -> Page {
    session.check(&form)?;
    let connection = own_connection(&app, &session, ds).await?;
    queue(&app, &session, &connection, &site_label(&connection)).await
}

async fn sync_space(
    State(app): State<AppState>,
    session: Session,
    Path((ds, key)): Path<(i64, String)>,
    form: Form,
) -> Page {
    session.check(&form)?;
    let connection = own_connection(&app, &session, ds).await?;
    if !chosen_spaces(&connection).contains(&key) {
        return Err(not_found("space"));
    }
    queue(&app, &session, &connection, &key).await
}

/// Syncs a connection now (its spaces' changes since the last sync).
async fn queue(app: &App, session: &Session, connection: &store::Connection, target: &str) -> Page {
    app.store
        .queue_sync(
            &session.admin.organisation_id,
            &connection.id,
            "console",
            Some(session.actor()),
            target,
        )
        .await
        .map_err(failure)?;
    app.jobs_ready.notify_one();
    Ok(see_other("/admin"))
}

async fn remove_site_page(
    State(app): State<AppState>,
    session: Session,
    Path(ds): Path<i64>,
) -> Page {
    let site = console_site(&app, &session, ds).await?;
    Ok(pages::remove_site(&session, &site))
}

async fn console_site(
    app: &App,
    session: &Session,
    ds: i64,
) -> Result<store::ConsoleSite, Response> {
    app.store
        .console_sites(&session.admin.organisation_id)
        .await
        .map_err(failure)?
        .into_iter()
        .find(|s| s.connection.data_source_id == ds)
        .ok_or_else(|| not_found("connection"))
}

async fn remove_site(
    State(app): State<AppState>,
    session: Session,
    Path(ds): Path<i64>,
    form: Form,
) -> Page {
    session.check(&form)?;
    let connection = own_connection(&app, &session, ds).await?;
    app.store
        .remove_connection(
            &session.admin.organisation_id,
            &connection.id,
            Some(session.actor()),
            &site_label(&connection),
        )
        .await
        .map_err(failure)?;
    // Gone from search before the page answers.
    if let Err(error) = app.follower.flush().await {
        tracing::warn!(%error, "index not caught up after a removal; the next change retries");
    }
    Ok(see_other("/admin"))
}

async fn remove_space_page(
    State(app): State<AppState>,
    session: Session,
    Path((ds, key)): Path<(i64, String)>,
) -> Page {
    let site = console_site(&app, &session, ds).await?;
    if !chosen_spaces(&site.connection).contains(&key) {
        return Err(not_found("space"));
    }
    Ok(pages::remove_space(&session, &site, &key))
}

async fn remove_space(
    State(app): State<AppState>,
    session: Session,
    Path((ds, key)): Path<(i64, String)>,
    form: Form,
) -> Page {
    session.check(&form)?;
    let connection = own_connection(&app, &session, ds).await?;
    let mut scope = Scope::of(&connection).unwrap_or_default();
    if !scope.spaces.contains(&key) {
        return Err(not_found("space"));
    }
    scope.spaces.retain(|k| k != &key);
    app.store
        .remove_space(
            &session.admin.organisation_id,
            &connection.id,
            &key,
            &scope.to_json(),
            Some(session.actor()),
        )
        .await
        .map_err(failure)?;
    if let Err(error) = app.follower.flush().await {
        tracing::warn!(%error, "index not caught up after a removal; the next change retries");
    }
    Ok(see_other("/admin"))
}

// Viewing permissions and segments.

/// Zendesk's two built-in segments, made once per organisation.
async fn segments(app: &App, organisation_id: &str) -> Result<Vec<store::Segment>, Response> {
    let mut all = app.store.segments(organisation_id).await.map_err(failure)?;
    for (suffix, name, user_type) in [
        ("signed-in", "Signed-in users", "signed_in"),
        ("staff", "Agents and admins", "staff"),
    ] {
        let id = format!("{organisation_id}-{suffix}");
        if !all.iter().any(|s| s.id == id) {
            let segment = store::Segment {
                id,
                name: name.into(),
                user_type: user_type.into(),
                tags: Vec::new(),
                or_tags: Vec::new(),
                organization_ids: Vec::new(),
                group_ids: Vec::new(),
            };
            match app.store.create_segment(organisation_id, &segment).await {
                Ok(made) => all.insert(0, made),
                // Made meanwhile by another request.
                Err(_) => all = app.store.segments(organisation_id).await.map_err(failure)?,
            }
        }
    }
    // The built-in ones first.
    all.sort_by_key(|s| !s.id.starts_with(organisation_id));
    Ok(all)
}

async fn manage_data(
    app: &App,
    session: &Session,
    ds: i64,
    key: &str,
) -> Result<pages::Manage, Response> {
    let site = console_site(app, session, ds).await?;
    if !chosen_spaces(&site.connection).contains(&key.to_string()) {
        return Err(not_found("space"));
    }
    let space = site.spaces.iter().find(|s| s.key == key).cloned();
    let visibility = match &space {
        Some(space) => app
            .store
            .scopes(&session.admin.organisation_id, None)
            .await
            .map_err(failure)?
            .into_iter()
            .find(|s| s.connection_id == site.connection.id && s.space_id == space.space_id)
            .map(|s| s.visibility),
        None => None,
    };
    let segments = segments(app, &session.admin.organisation_id).await?;
    Ok(pages::Manage {
        key: key.to_string(),
        space,
        visibility,
        segments,
        site,
    })
}

async fn manage_page(
    State(app): State<AppState>,
    session: Session,
    Path((ds, key)): Path<(i64, String)>,
) -> Page {
    let data = manage_data(&app, &session, ds, &key).await?;
    Ok(pages::manage(&session, &data, None, None))
}

async fn save_permissions(
    State(app): State<AppState>,
    session: Session,
    Path((ds, key)): Path<(i64, String)>,
    form: Form,
) -> Page {
    session.check(&form)?;
    let data = manage_data(&app, &session, ds, &key).await?;
    let Some(space) = &data.space else {
        return Ok(pages::manage(
            &session,
            &data,
            Some("This space has not synced yet: set its permissions once it has."),
            None,
        ));
    };
    let visibility = match form.get("visibility") {
        Some("segments") => store::Visibility::Segments {
            segment_ids: form.all("segment"),
        },
        _ => store::Visibility::Everyone,
    };
    if let store::Visibility::Segments { segment_ids } = &visibility {
        if segment_ids.is_empty() || segment_ids.len() > 10 {
            return Ok(pages::manage(
                &session,
                &data,
                Some("Choose 1 to 10 user segments, or make the space visible to everyone."),
                None,
            ));
        }
    }
    match app
        .store
        .set_space_visibility_as(
            &data.site.connection.id,
            &space.space_id,
            &visibility,
            Some(session.actor()),
        )
        .await
    {
        Ok(()) => {}
        Err(store::Error::NotFound(_) | store::Error::Invalid(_)) => {
            return Ok(pages::manage(
                &session,
                &data,
                Some("One of the segments chosen no longer exists; choose again."),
                None,
            ))
        }
        Err(error) => return Err(failure(error)),
    }
    // Search follows the change at once.
    if let Err(error) = app.follower.flush().await {
        tracing::warn!(%error, "index not caught up after a permission change");
    }
    let data = manage_data(&app, &session, ds, &key).await?;
    Ok(pages::manage(
        &session,
        &data,
        None,
        Some("Viewing permissions saved."),
    ))
}

fn list_field(form: &Form, name: &str) -> Vec<String> {
    let mut items: Vec<String> = form
        .text(name)
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    items.dedup();
    items
}

async fn create_segment(State(app): State<AppState>, session: Session, form: Form) -> Page {
    session.check(&form)?;
    let back = safe_next(form.get("back"));
    let name = form.text("name");
    let user_type = form.text("user_type");
    let lists = [
        list_field(&form, "tags"),
        list_field(&form, "or_tags"),
        list_field(&form, "organizations"),
        list_field(&form, "groups"),
    ];
    let problem = if name.is_empty() || name.chars().count() > 100 {
        Some("A segment's name is 1 to 100 characters.")
    } else if !matches!(user_type.as_str(), "signed_in" | "staff") {
        Some("Choose who the segment starts from: signed-in users, or agents and admins.")
    } else if lists
        .iter()
        .any(|l| l.len() > 50 || l.iter().any(|i| i.chars().count() > 100))
    {
        Some("Each list holds at most 50 entries of at most 100 characters.")
    } else {
        None
    };
    if let Some(problem) = problem {
        return Ok(pages::message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Segment not created",
            problem,
            Some((&back, "Back")),
        ));
    }
    let [tags, or_tags, organization_ids, group_ids] = lists;
    app.store
        .create_segment_as(
            &session.admin.organisation_id,
            &store::Segment {
                id: String::new(),
                name,
                user_type,
                tags,
                or_tags,
                organization_ids,
                group_ids,
            },
            Some(session.actor()),
        )
        .await
        .map_err(failure)?;
    Ok(see_other(&back))
}

// Preview as.

#[derive(serde::Deserialize, Default)]
struct PreviewQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    audience: String,
}

/// A viewer who is exactly in a segment: what its conditions ask, nothing
/// more (one of each "any of" list).
fn member_of(segment: &store::Segment) -> index::Viewer {
    let mut tags = segment.tags.clone();
    tags.extend(segment.or_tags.first().cloned());
    index::Viewer {
        signed_in: true,
        agent: segment.user_type == "staff",
        tags,
        organization_ids: segment.organization_ids.iter().take(1).cloned().collect(),
        group_ids: segment.group_ids.iter().take(1).cloned().collect(),
        ..Default::default()
    }
}

async fn preview_page(
    State(app): State<AppState>,
    session: Session,
    Query(query): Query<PreviewQuery>,
) -> Page {
    let organisation_id = &session.admin.organisation_id;
    let segments = segments(&app, organisation_id).await?;
    let custom: Vec<&store::Segment> = segments
        .iter()
        .filter(|s| !s.id.starts_with(organisation_id.as_str()))
        .collect();
    let viewer = match query.audience.as_str() {
        "" | "anonymous" => Some(index::Viewer::default()),
        "signed_in" => Some(index::Viewer {
            signed_in: true,
            ..Default::default()
        }),
        "agent" => Some(index::Viewer {
            signed_in: true,
            agent: true,
            ..Default::default()
        }),
        other => other
            .strip_prefix("segment:")
            .and_then(|id| custom.iter().find(|s| s.id == id))
            .map(|s| member_of(s)),
    };
    let query_text = query.q.trim().to_string();
    let mut notice = None;
    let mut hits = Vec::new();
    let searched = !query_text.is_empty();
    if searched {
        match viewer {
            None => notice = Some("Choose an audience from the list.".to_string()),
            Some(viewer) if query_text.chars().count() <= 1_000 => {
                let own: Vec<String> = app
                    .store
                    .console_sites(organisation_id)
                    .await
                    .map_err(failure)?
                    .into_iter()
                    .map(|s| s.connection.id)
                    .collect();
                if !own.is_empty() {
                    let request = index::SearchRequest {
                        organisation_id: organisation_id.clone(),
                        customer_id: None,
                        viewer,
                        query: query_text.clone(),
                        query_vector: None,
                        k: 10,
                        filters: index::Filters {
                            connection_ids: own,
                            ..Default::default()
                        },
                        hybrid: None,
                        include_vectors: false,
                        // A preview of what readers find: ten pages, each
                        // once, at its best passage.
                        per_file: Some(1),
                    };
                    match app.index.search(&app.store, &request).await {
                        Ok(found) => hits = found,
                        Err(index::Error::Invalid(reason)) => {
                            notice = Some(format!("The search could not run: {reason}."))
                        }
                        Err(error) => return Err(failure(error)),
                    }
                }
            }
            Some(_) => notice = Some("A search is at most 1,000 characters.".to_string()),
        }
    }
    Ok(pages::preview(
        &session,
        &query_text,
        &query.audience,
        &custom,
        searched,
        &hits,
        notice.as_deref(),
    ))
}

// API customers.

async fn customers_page(State(app): State<AppState>, session: Session) -> Page {
    let rows = app
        .store
        .customer_connections(&session.admin.organisation_id, 1_000)
        .await
        .map_err(failure)?;
    Ok(pages::customers(&session, &rows))
}

async fn sync_customer(
    State(app): State<AppState>,
    session: Session,
    Path(ds): Path<i64>,
    form: Form,
) -> Page {
    session.check(&form)?;
    let connection = app
        .store
        .org_connection(&session.admin.organisation_id, ds, false)
        .await
        .map_err(failure)?
        .ok_or_else(|| not_found("connection"))?;
    app.store
        .queue_sync(
            &session.admin.organisation_id,
            &connection.id,
            "console",
            Some(session.actor()),
            &format!("data source {ds}"),
        )
        .await
        .map_err(failure)?;
    app.jobs_ready.notify_one();
    Ok(see_other("/admin/customers"))
}
