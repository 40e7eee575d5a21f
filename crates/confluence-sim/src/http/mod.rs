//! The HTTP face of the simulator: routing (site form `/wiki/...` and
//! gateway form `/ex/confluence/{cloudId}/wiki/...`), the request pipeline
//! (accounting, faults, authentication, rate limit), errors in
//! Confluence's shapes, query parameters and cursor pagination.

mod control;
mod oauth_http;
mod v1;
mod v2;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::faults::FaultKind;
use crate::Shared;

pub(crate) type AppState = Arc<Shared>;

/// Which API a request is for: errors and quirks differ between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Api {
    V2,
    V1,
}

impl Api {
    fn of(path: &str) -> Api {
        if path.contains("/api/v2/") {
            Api::V2
        } else {
            Api::V1
        }
    }
}

/// The account a request acts as.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Viewer(pub u16);

/// Serves the simulator on `listener` until the task is dropped.
pub(crate) async fn serve(
    shared: AppState,
    listener: tokio::net::TcpListener,
) -> std::io::Result<()> {
    let wiki = Router::new()
        .route("/api/v2/spaces", get(v2::spaces))
        .route("/api/v2/spaces/{id}", get(v2::space))
        .route("/api/v2/spaces/{id}/pages", get(v2::space_pages))
        .route("/api/v2/spaces/{id}/blogposts", get(v2::space_blogposts))
        .route(
            "/api/v2/spaces/{id}/permissions",
            get(v2::space_permissions),
        )
        .route("/api/v2/pages", get(v2::pages))
        .route("/api/v2/pages/{id}", get(v2::page))
        .route("/api/v2/pages/{id}/ancestors", get(v2::ancestors))
        .route(
            "/api/v2/pages/{id}/direct-children",
            get(v2::direct_children),
        )
        .route(
            "/api/v2/pages/{id}/attachments",
            get(v2::container_attachments),
        )
        .route(
            "/api/v2/pages/{id}/footer-comments",
            get(v2::container_comments),
        )
        .route("/api/v2/pages/{id}/labels", get(v2::labels))
        .route("/api/v2/blogposts", get(v2::blogposts))
        .route("/api/v2/blogposts/{id}", get(v2::blogpost))
        .route(
            "/api/v2/blogposts/{id}/attachments",
            get(v2::container_attachments),
        )
        .route(
            "/api/v2/blogposts/{id}/footer-comments",
            get(v2::container_comments),
        )
        .route("/api/v2/blogposts/{id}/labels", get(v2::labels))
        .route("/api/v2/attachments", get(v2::attachments))
        .route("/api/v2/attachments/{id}", get(v2::attachment))
        .route("/api/v2/footer-comments", get(v2::footer_comments))
        .route("/api/v2/footer-comments/{id}", get(v2::footer_comment))
        .route("/rest/api/search", get(v1::search))
        .route("/rest/api/content/search", get(v1::content_search))
        .route("/rest/api/content", get(v1::content_list))
        .route("/rest/api/content/{id}", get(v1::content_one))
        .route("/rest/api/content/{id}/restriction", get(v1::restrictions))
        .route(
            "/rest/api/content/{id}/restriction/byOperation",
            get(v1::restrictions_by_operation),
        )
        .route(
            "/rest/api/content/{id}/child/attachment",
            get(v1::child_attachments),
        )
        .route(
            "/rest/api/content/{id}/child/attachment/{attachment}/download",
            get(v1::download_redirect),
        )
        .route("/rest/api/space", get(v1::space_list))
        .route("/rest/api/space/{key}", get(v1::space_one))
        .route("/rest/api/user", get(v1::user))
        .route("/rest/api/user/current", get(v1::current_user))
        .route("/rest/api/user/bulk", get(v1::user_bulk))
        .route("/rest/api/group", get(v1::groups))
        .route(
            "/rest/api/webhooks",
            get(v1::list_webhooks).post(v1::create_webhook),
        )
        .route("/rest/api/user/memberof", get(v1::member_of))
        .route(
            "/download/attachments/{container}/{filename}",
            get(v1::download_file),
        )
        .route_layer(middleware::from_fn_with_state(shared.clone(), api_pipeline));

    let app = Router::new()
        .nest("/wiki", wiki)
        .route("/authorize", get(oauth_http::authorize))
        .route("/authorize/consent", post(oauth_http::consent))
        .route("/oauth/token", post(oauth_http::token))
        .route(
            "/oauth/token/accessible-resources",
            get(oauth_http::accessible_resources),
        )
        .merge(control::routes())
        .fallback(not_found)
        .with_state(shared.clone());
    // The gateway rewrite wraps the router: it must run before routing.
    let app = tower::Layer::layer(
        &middleware::from_fn_with_state(shared, gateway_rewrite),
        app,
    );
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service(app),
    )
    .await
}

/// The gateway form `/ex/confluence/{cloudId}/wiki/...` serves the same
/// operations as the site form; a wrong cloud id is a 404, as on Atlassian's
/// gateway. Rewriting happens before routing, so it wraps the router.
async fn gateway_rewrite(
    State(shared): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if let Some(rest) = path.strip_prefix("/ex/confluence/") {
        let (cloud_id, tail) = rest.split_once('/').unwrap_or((rest, ""));
        if cloud_id != shared.site.read().cloud_id || !tail.starts_with("wiki") {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"code": 404, "message": "Not Found"})),
            )
                .into_response();
        }
        let query = request
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        if let Ok(uri) = format!("/{tail}{query}").parse() {
            *request.uri_mut() = uri;
        }
    }
    // v1 next links are relative to `_links.base` (`.../wiki`), but some
    // clients join them to the site root; Data Center sites with an empty
    // context path serve them there too. Answer both.
    let path = request.uri().path();
    if path.starts_with("/rest/api/") || path.starts_with("/download/") {
        let rewritten = format!(
            "/wiki{}{}",
            path,
            request
                .uri()
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default()
        );
        if let Ok(uri) = rewritten.parse() {
            *request.uri_mut() = uri;
        }
    }
    next.run(request).await
}

/// A path no operation serves: counted like any request (a client that
/// calls a wrong path pays for it on Confluence too), under one name so
/// that the stats stay small whatever is asked.
async fn not_found(State(shared): State<AppState>, request: Request) -> Response {
    {
        let mut stats = shared.stats.lock();
        stats.total += 1;
        *stats
            .operations
            .entry(format!("{} (no such path)", request.method()))
            .or_default() += 1;
    }
    ApiError::not_found(Api::of(request.uri().path())).into_response()
}

/// Accounting, faults, authentication and the rate limit, in that order,
/// for every API operation.
async fn api_pipeline(
    State(shared): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let api = Api::of(request.uri().path());
    let operation = format!(
        "{} {}",
        request.method(),
        request
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str())
            .unwrap_or(request.uri().path())
    );
    {
        let mut stats = shared.stats.lock();
        stats.total += 1;
        *stats.operations.entry(operation).or_default() += 1;
    }

    let (latency, fault, retry_after) = {
        let mut faults = shared.faults.lock();
        let fault = faults.next_fault();
        (
            faults.config.latency_ms,
            fault,
            faults.config.retry_after_secs,
        )
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if let Some(kind) = fault {
        if let Some(response) = fault_response(kind, api, retry_after) {
            return response;
        }
    }

    let credential = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let user = match authenticate(&shared, &credential, api) {
        Ok(user) => user,
        Err(response) => return *response,
    };
    request.extensions_mut().insert(Viewer(user));

    let decision = shared.limiter.lock().check(&credential, Instant::now());
    if let Some(decision) = &decision {
        if !decision.allowed {
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                api,
                "TOO_MANY_REQUESTS",
                "Rate limit exceeded",
            )
            .into_response();
            let headers = response.headers_mut();
            set_header(headers, "retry-after", &decision.retry_after.to_string());
            set_header(headers, "ratelimit-reason", "confluence-burst-based");
            rate_headers(headers, decision);
            return response;
        }
    }

    let mut response = next.run(request).await;
    if let Some(decision) = &decision {
        rate_headers(response.headers_mut(), decision);
    }
    match fault {
        Some(FaultKind::CloseMidBody) => close_mid_body(response).await,
        // Only JSON is cut: a file's truncation is a different fault.
        Some(FaultKind::TruncatedJson)
            if response
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json")) =>
        {
            truncate_body(response).await
        }
        _ => response,
    }
}

fn set_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

fn rate_headers(headers: &mut HeaderMap, decision: &crate::faults::RateDecision) {
    set_header(headers, "x-ratelimit-limit", &decision.limit.to_string());
    set_header(
        headers,
        "x-ratelimit-remaining",
        &decision.remaining.to_string(),
    );
    set_header(
        headers,
        "x-ratelimit-reset",
        &crate::faults::reset_header(decision.reset_in),
    );
    if (decision.remaining as f64) < decision.limit as f64 * 0.2 {
        set_header(headers, "x-ratelimit-nearlimit", "true");
    }
}

fn fault_response(kind: FaultKind, api: Api, retry_after: u64) -> Option<Response> {
    let too_many = || {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            api,
            "TOO_MANY_REQUESTS",
            "Rate limit exceeded",
        )
        .into_response()
    };
    let mut response = match kind {
        FaultKind::TooManySeconds => {
            let mut r = too_many();
            set_header(r.headers_mut(), "retry-after", &retry_after.to_string());
            r
        }
        FaultKind::TooManyHttpDate => {
            let mut r = too_many();
            set_header(
                r.headers_mut(),
                "retry-after",
                &crate::faults::http_date_in(retry_after),
            );
            r
        }
        FaultKind::TooManyMissing => too_many(),
        FaultKind::TooManyAbsurd => {
            let mut r = too_many();
            set_header(r.headers_mut(), "retry-after", "9223372036854775807");
            r
        }
        FaultKind::Internal => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            api,
            "INTERNAL_SERVER_ERROR",
            "Internal server error",
        )
        .into_response(),
        FaultKind::Unavailable => {
            let mut r = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                api,
                "SERVICE_UNAVAILABLE",
                "Service unavailable",
            )
            .into_response();
            set_header(r.headers_mut(), "retry-after", &retry_after.to_string());
            r
        }
        // Gateways answer in HTML, not JSON.
        FaultKind::BadGateway | FaultKind::GatewayTimeout => {
            let status = if kind == FaultKind::BadGateway {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::GATEWAY_TIMEOUT
            };
            (
                status,
                [(header::CONTENT_TYPE, "text/html")],
                format!("<html><body><h1>{status}</h1></body></html>"),
            )
                .into_response()
        }
        FaultKind::Unauthorized => ApiError::new(
            StatusCode::UNAUTHORIZED,
            api,
            "UNAUTHORIZED",
            "Unauthorized; scope does not match",
        )
        .into_response(),
        FaultKind::CloseMidBody | FaultKind::TruncatedJson => return None,
    };
    response
        .headers_mut()
        .insert("x-sim-fault", HeaderValue::from_static("1"));
    Some(response)
}

/// Sends the status, the headers and the first half of the body with the
/// full Content-Length, then fails the body so the connection drops.
async fn close_mid_body(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let half = bytes.slice(0..bytes.len() / 2);
    parts.headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(bytes.len().max(1) as u64),
    );
    // The pause lets the status, the headers and the first half reach the
    // client before the connection drops.
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(half)]).chain(
        futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "simulated connection drop",
            ))
        }),
    );
    Response::from_parts(parts, Body::from_stream(stream))
}

/// A complete response whose JSON is cut short.
async fn truncate_body(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let cut = bytes.slice(0..bytes.len() / 2);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(cut.len() as u64));
    Response::from_parts(parts, Body::from(cut))
}

/// Basic (email:api_token) or Bearer (an OAuth access token, or an API
/// token used as a Data Center personal access token).
fn authenticate(shared: &Shared, credential: &str, api: Api) -> Result<u16, Box<Response>> {
    let unauthorized = || {
        Box::new(
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                api,
                "UNAUTHORIZED",
                "Unauthorized",
            )
            .into_response(),
        )
    };
    if let Some(encoded) = credential.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(unauthorized)?;
        let (email, token) = decoded.split_once(':').ok_or_else(unauthorized)?;
        let site = shared.site.read();
        let user = site.user_by_email(email).ok_or_else(unauthorized)?;
        if site.users[user as usize].api_token != token {
            return Err(unauthorized());
        }
        return Ok(user);
    }
    if let Some(token) = credential.strip_prefix("Bearer ") {
        let token = token.trim();
        match shared.oauth.lock().access_user(token, Instant::now()) {
            Ok(user) => return Ok(user),
            Err(true) => {
                if shared.expired_token_quirk {
                    // What Cloud answers in the field for an expired token.
                    return Err(Box::new(match api {
                        Api::V2 => ApiError::not_found(api).into_response(),
                        Api::V1 => ApiError::new(
                            StatusCode::FORBIDDEN,
                            api,
                            "FORBIDDEN",
                            "Current user not permitted to use Confluence",
                        )
                        .into_response(),
                    }));
                }
                return Err(unauthorized());
            }
            Err(false) => {}
        }
        let site = shared.site.read();
        if let Some(user) = site.users.iter().position(|u| u.api_token == token) {
            return Ok(user as u16);
        }
        return Err(unauthorized());
    }
    Err(unauthorized())
}

/// An error in the shape of the API it answers for.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    api: Api,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        api: Api,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            api,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(api: Api, message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            api,
            "INVALID_REQUEST_PARAMETER",
            message,
        )
    }

    pub fn not_found(api: Api) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, api, "NOT_FOUND", "Not Found")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.api {
            Api::V2 => json!({
                "errors": [{
                    "status": self.status.as_u16(),
                    "code": self.code,
                    "title": self.message,
                    "detail": null
                }]
            }),
            Api::V1 => json!({
                "statusCode": self.status.as_u16(),
                "data": {
                    "authorized": self.status != StatusCode::UNAUTHORIZED && self.status != StatusCode::FORBIDDEN,
                    "valid": self.status != StatusCode::BAD_REQUEST,
                    "errors": [],
                    "successful": false
                },
                "message": self.message,
                "reason": self.status.canonical_reason().unwrap_or("")
            }),
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// Query parameters, repeated or comma-separated, in request order.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: Option<&str>) -> Params {
        Params(
            url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn list(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// `limit`: at least 1; above the maximum it is clamped, as Cloud does.
    pub fn limit(&self, api: Api, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.get("limit") {
            None | Some("") => Ok(default),
            Some(text) => match text.parse::<i64>() {
                Ok(n) if n >= 1 => Ok((n as usize).min(max)),
                Ok(_) if api == Api::V1 => Ok(default),
                _ => Err(ApiError::bad_request(
                    api,
                    format!("Provided value {{{text}}} for 'limit' is not the correct type. Expected type is int, minimum 1"),
                )),
            },
        }
    }

    pub fn start(&self, api: Api) -> Result<usize, ApiError> {
        match self.get("start") {
            None | Some("") => Ok(0),
            Some(text) => text.parse::<usize>().map_err(|_| {
                ApiError::bad_request(
                    api,
                    format!("'start' must be a non-negative integer, got {text:?}"),
                )
            }),
        }
    }

    /// The query string without the named parameters, for next links.
    pub fn encode_without(&self, drop: &[&str]) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            if !drop.contains(&k.as_str()) {
                out.append_pair(k, v);
            }
        }
        out.finish()
    }
}

/// An id in a path: digits only, as Confluence's int64 path parameters.
pub(crate) fn path_id(api: Api, text: &str) -> Result<u64, ApiError> {
    text.parse::<u64>().map_err(|_| {
        ApiError::bad_request(
            api,
            format!(
                "Provided value {{{text}}} for 'id' is not the correct type. Expected type is long"
            ),
        )
    })
}

/// The position a cursor stands for: the sort it was made for, the sort key
/// of the last item returned, and its id.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Cursor {
    #[serde(rename = "s")]
    pub sort: String,
    #[serde(rename = "k")]
    pub key: SortKey,
    #[serde(rename = "i")]
    pub id: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(untagged)]
pub(crate) enum SortKey {
    Int(i64),
    Text(String),
}

impl Cursor {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(api: Api, text: &str, sort: &str) -> Result<Cursor, ApiError> {
        let cursor: Cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| ApiError::bad_request(api, "Invalid cursor"))?;
        if cursor.sort != sort {
            return Err(ApiError::bad_request(
                api,
                "Cursor does not match the sort order",
            ));
        }
        Ok(cursor)
    }
}

/// A sort order: by id (walked lazily over an ordered index) or by another
/// key (collected and sorted).
pub(crate) struct Order {
    pub name: String,
    pub field: String,
    pub descending: bool,
}

impl Order {
    pub fn parse(
        api: Api,
        text: Option<&str>,
        allowed: &[&str],
        default: &str,
    ) -> Result<Order, ApiError> {
        let name = text.filter(|t| !t.is_empty()).unwrap_or(default);
        let field = name.trim_start_matches('-');
        if !allowed.contains(&field) {
            return Err(ApiError::bad_request(
                api,
                format!(
                    "Invalid value '{name}' for 'sort'. Allowed: {}",
                    allowed.join(", ")
                ),
            ));
        }
        Ok(Order {
            name: name.to_string(),
            field: field.to_string(),
            descending: name.starts_with('-'),
        })
    }
}

pub(crate) type IdRange<'a> =
    dyn Fn(Bound<u64>, Bound<u64>) -> Box<dyn DoubleEndedIterator<Item = u64> + 'a> + 'a;

static NO_IDS: BTreeSet<u64> = BTreeSet::new();

/// The ids to page through: those of one container or space (`scoped`,
/// where `Some(None)` is a container with nothing in it) or all of a map.
pub(crate) fn index_range<'a, V>(
    scoped: Option<Option<&'a BTreeSet<u64>>>,
    all: &'a BTreeMap<u64, V>,
) -> Box<IdRange<'a>> {
    match scoped {
        Some(set) => {
            let set = set.unwrap_or(&NO_IDS);
            Box::new(move |lo, hi| {
                Box::new(set.range((lo, hi)).copied()) as Box<dyn DoubleEndedIterator<Item = u64>>
            })
        }
        None => Box::new(move |lo, hi| {
            Box::new(all.range((lo, hi)).map(|(id, _)| *id))
                as Box<dyn DoubleEndedIterator<Item = u64>>
        }),
    }
}

/// One page of ids and the cursor for the next, if there is more.
pub(crate) fn paginate(
    range: &IdRange<'_>,
    keep: &dyn Fn(u64) -> bool,
    key_of: &dyn Fn(u64) -> SortKey,
    order: &Order,
    cursor: Option<&Cursor>,
    limit: usize,
) -> (Vec<u64>, Option<Cursor>) {
    let mut ids: Vec<u64> = if order.field == "id" {
        let iter: Box<dyn Iterator<Item = u64>> = match (order.descending, cursor) {
            (false, Some(c)) => range(Bound::Excluded(c.id), Bound::Unbounded),
            (false, None) => range(Bound::Unbounded, Bound::Unbounded),
            (true, Some(c)) => Box::new(range(Bound::Unbounded, Bound::Excluded(c.id)).rev()),
            (true, None) => Box::new(range(Bound::Unbounded, Bound::Unbounded).rev()),
        };
        iter.filter(|&id| keep(id)).take(limit + 1).collect()
    } else {
        let mut keyed: Vec<(SortKey, u64)> = range(Bound::Unbounded, Bound::Unbounded)
            .filter(|&id| keep(id))
            .map(|id| (key_of(id), id))
            .collect();
        keyed.sort();
        if order.descending {
            keyed.reverse();
        }
        let start = match cursor {
            None => 0,
            Some(c) => {
                let mark = (c.key.clone(), c.id);
                keyed
                    .iter()
                    .position(|entry| {
                        if order.descending {
                            *entry < mark
                        } else {
                            *entry > mark
                        }
                    })
                    .unwrap_or(keyed.len())
            }
        };
        keyed
            .into_iter()
            .skip(start)
            .take(limit + 1)
            .map(|(_, id)| id)
            .collect()
    };
    let next = if ids.len() > limit {
        ids.truncate(limit);
        ids.last().map(|&id| Cursor {
            sort: order.name.clone(),
            key: key_of(id),
            id,
        })
    } else {
        None
    };
    (ids, next)
}

/// A v2 list response: `results`, `_links.next` and `_links.base`, and the
/// Link header with `rel="next"`, absent on the last page.
pub(crate) fn v2_list(
    base: &str,
    path: &str,
    params: &Params,
    results: Vec<serde_json::Value>,
    next: Option<Cursor>,
) -> Response {
    let mut links = serde_json::Map::new();
    let mut link_header = None;
    if let Some(cursor) = next {
        let rest = params.encode_without(&["cursor"]);
        let sep = if rest.is_empty() { "" } else { "&" };
        let next_url = format!("/wiki{path}?{rest}{sep}cursor={}", cursor.encode());
        link_header = Some(format!(
            "<{next_url}>; rel=\"next\", <{base}/wiki>; rel=\"base\""
        ));
        links.insert("next".into(), next_url.into());
    }
    links.insert("base".into(), format!("{base}/wiki").into());
    let mut response = axum::Json(json!({"results": results, "_links": links})).into_response();
    if let Some(link) = link_header {
        set_header(response.headers_mut(), "link", &link);
    }
    response
}

pub(crate) fn iso(at: crate::model::Millis) -> String {
    chrono::DateTime::from_timestamp_millis(at)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
