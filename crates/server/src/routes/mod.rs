//! The API's handlers. Each resolves the caller's organisation (and
//! customer) first, and every lookup by id goes through it: another
//! tenant's id reads as not found, exactly as an id that does not exist.

use crate::connection::{data_source, Scope, Secret};
use crate::error::{ApiError, ApiResult};
use crate::events;
use crate::extract::{hash_secret, valid_customer_id, Body, CustomerCaller, OrgCaller};
use crate::jobs::next_run;
use crate::model::*;
use crate::{App, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use store::{Connection, EndUser, Organisation};

mod customers;
mod files;
mod hooks;
mod search;
mod sources;
mod white_label;

pub use customers::*;
pub use files::*;
pub use hooks::*;
pub use search::*;
pub use sources::*;
pub use white_label::*;

// Shared pieces.

/// The most results one page of a list may hold.
pub const MAX_LIMIT: i64 = 250;
/// The most chunks one search may return: the cost of a search grows with
/// k (k = 1000 took seconds under load), and one tenant must not slow the
/// others.
pub const MAX_K: i64 = 100;

pub(crate) fn page(pagination: &Pagination) -> ApiResult<(i64, i64)> {
    if !(1..=MAX_LIMIT).contains(&pagination.limit) {
        return Err(ApiError::field(
            &["pagination", "limit"],
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    if pagination.offset < 0 {
        return Err(ApiError::field(
            &["pagination", "offset"],
            "must not be negative",
        ));
    }
    Ok((pagination.limit, pagination.offset))
}

pub(crate) fn check_ids<T>(path: &[&str], ids: &Option<Vec<T>>, max: usize) -> ApiResult<()> {
    if ids.as_ref().is_some_and(|ids| ids.len() > max) {
        return Err(ApiError::field(path, format!("at most {max} values")));
    }
    Ok(())
}

/// The caller's customer, if it exists yet (a customer is created by its
/// first connection).
/// A JSON answer written into one buffer of about its size, given as the
/// second field (axum's `Json` starts at 128 bytes and doubles: a listing
/// of 125 KB was copied over ten times as it grew), by sonic-rs: the same
/// JSON as serde_json's, with the strings escaped many bytes at a time.
pub struct SizedJson<T>(pub T, pub usize);

impl<T: serde::Serialize> axum::response::IntoResponse for SizedJson<T> {
    fn into_response(self) -> axum::response::Response {
        let mut buffer = Vec::with_capacity(self.1);
        match sonic_rs::to_writer(&mut buffer, &self.0) {
            Ok(()) => (
                [(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/json"),
                )],
                buffer,
            )
                .into_response(),
            Err(error) => ApiError::internal(error).into_response(),
        }
    }
}

pub(crate) async fn end_user(app: &App, caller: &CustomerCaller) -> ApiResult<Option<EndUser>> {
    // Read with the credential (one statement for both); a customer who
    // had none then is looked for again (a handler may have created them).
    if let Some(user) = &caller.end_user {
        return Ok(Some(user.clone()));
    }
    Ok(app
        .store
        .end_user(&caller.organisation.id, &caller.customer_id)
        .await?)
}

/// A path's integer id, or a 422 naming it (axum's own rejection is
/// plain text).
pub(crate) fn path_id(name: &str, value: &str) -> ApiResult<i64> {
    value.parse().map_err(|_| {
        ApiError::Validation(vec![crate::error::FieldError {
            loc: vec![json!("path"), json!(name)],
            msg: "must be an integer".into(),
            kind: "int_parsing",
        }])
    })
}

/// The caller's file as the store lists it, with the caller, or 404
/// (whoever else's it may be).
pub(crate) async fn caller_file(
    app: &App,
    caller: &CustomerCaller,
    file_id: i64,
) -> ApiResult<(EndUser, store::ApiFile)> {
    let user = end_user(app, caller)
        .await?
        .ok_or_else(|| ApiError::not_found("file"))?;
    let query = store::FileQuery {
        ids: vec![file_id],
        limit: 1,
        ..Default::default()
    };
    let (mut files, _) = app
        .store
        .api_files(&caller.organisation.id, &user.id, &query)
        .await?;
    let file = files.pop().ok_or_else(|| ApiError::not_found("file"))?;
    Ok((user, file))
}

/// The caller's data source, or 404 (whoever else's it may be).
pub(crate) async fn owned_source(
    app: &App,
    caller: &CustomerCaller,
    id: i64,
) -> ApiResult<(EndUser, Connection)> {
    let user = end_user(app, caller)
        .await?
        .ok_or_else(|| ApiError::not_found("data source"))?;
    let connection = app
        .store
        .data_source(&caller.organisation.id, &user.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("data source"))?;
    Ok((user, connection))
}

/// Settings a connect request carries, checked.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConnectSettings {
    pub chunk_size: i64,
    pub chunk_overlap: i64,
    pub sync_files_on_connection: bool,
    pub tags: BTreeMap<String, Value>,
    /// `None` when the request did not say: a new connection does not
    /// enforce, an existing one keeps what it has.
    #[serde(default)]
    pub enforce_permissions: Option<bool>,
    /// List the site's item tree after the connect (a picker shows it).
    #[serde(default = "yes")]
    pub sync_source_items: bool,
    /// The kinds of content it syncs (`None`: all for a new connection,
    /// unchanged for an existing one).
    #[serde(default)]
    pub content_kinds: Option<String>,
}

pub(crate) fn yes() -> bool {
    true
}

pub fn check_chunking(
    chunk_size: Option<i64>,
    chunk_overlap: Option<i64>,
) -> ApiResult<(i64, i64)> {
    let size = chunk_size.unwrap_or(1500);
    let overlap = chunk_overlap.unwrap_or(20);
    if !(50..=20_000).contains(&size) {
        return Err(ApiError::field(
            &["chunk_size"],
            "must be between 50 and 20000 tokens",
        ));
    }
    if !(0..=10_000).contains(&overlap) {
        return Err(ApiError::field(
            &["chunk_overlap"],
            "must be between 0 and 10000 tokens",
        ));
    }
    // At most half a chunk less one: more is taken as that, as the
    // document says (a rule between two fields no schema can state).
    Ok((size, overlap.min(size / 2 - 1)))
}

/// New chunk settings for a connection, when a request gives any: what it
/// gives, the rest as the connection has it, checked together.
pub(crate) fn new_chunking(
    connection: &Connection,
    chunk_size: Option<i64>,
    chunk_overlap: Option<i64>,
) -> ApiResult<Option<(i64, i64)>> {
    if chunk_size.is_none() && chunk_overlap.is_none() {
        return Ok(None);
    }
    check_chunking(
        chunk_size.or(Some(connection.chunk_size)),
        chunk_overlap.or(Some(connection.chunk_overlap)),
    )
    .map(Some)
}

pub(crate) fn check_tags(tags: &BTreeMap<String, Value>) -> ApiResult<()> {
    if tags.len() > 50 {
        return Err(ApiError::field(&["tags"], "at most 50 tags"));
    }
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > 100 {
            return Err(ApiError::field(
                &["tags"],
                "tag keys must be 1 to 100 characters",
            ));
        }
        let long = |v: &Value, max: usize| v.as_str().is_some_and(|t| t.chars().count() > max);
        let bad = match value {
            Value::Array(items) => {
                items.len() > 50
                    || items
                        .iter()
                        .any(|v| long(v, 100) || v.is_array() || v.is_object() || v.is_null())
            }
            Value::Object(_) => true,
            other => long(other, 1000),
        };
        if bad {
            return Err(ApiError::field(
                &["tags", key],
                "a tag value is a string (at most 1000 characters), a number, a boolean, or a list of up to 50 of those (strings at most 100 characters)",
            ));
        }
    }
    Ok(())
}

pub fn connection_settings(
    chunk_size: Option<i64>,
    chunk_overlap: Option<i64>,
    sync_files_on_connection: Option<bool>,
    tags: Option<BTreeMap<String, Value>>,
    enforce_permissions: Option<bool>,
    sync_source_items: Option<bool>,
    file_sync_config: Option<&FileSyncConfigInput>,
) -> ApiResult<ConnectSettings> {
    let (chunk_size, chunk_overlap) = check_chunking(chunk_size, chunk_overlap)?;
    let tags = tags.unwrap_or_default();
    check_tags(&tags)?;
    Ok(ConnectSettings {
        chunk_size,
        chunk_overlap,
        sync_files_on_connection: sync_files_on_connection.unwrap_or(true),
        tags,
        enforce_permissions,
        sync_source_items: sync_source_items.unwrap_or(true),
        content_kinds: file_sync_config.and_then(FileSyncConfigInput::content_kinds),
    })
}

pub(crate) fn auth_header(secret: &Secret) -> String {
    use base64::Engine as _;
    match secret {
        Secret::ApiToken { email, api_token } => format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{email}:{api_token}"))
        ),
        Secret::Pat { pat } => format!("Bearer {pat}"),
        Secret::OAuth { oauth, .. } => format!("Bearer {}", oauth.access_token),
    }
}

/// Who the credentials are: Confluence's current user (its account id,
/// and its email or display name). Wrong credentials are the caller's
/// error (400), an unreachable site a 502.
pub(crate) async fn current_account(
    app: &App,
    site_url: &str,
    context: &str,
    secret: &Secret,
) -> ApiResult<(String, Option<String>)> {
    let url = format!("{site_url}{context}/rest/api/user/current");
    let response = app
        .http
        .get(&url)
        .header("authorization", auth_header(secret))
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .map_err(|error| {
            // The cause is the operator's to see (the caller gets the
            // site and the kind of failure, not this server's network).
            let cause = error_chain(&error);
            tracing::warn!(site = %site_url, %cause, "connect: the Confluence site could not be reached");
            ApiError::bad_gateway(
                "confluence_unreachable",
                format!("the Confluence site {site_url} could not be reached"),
            )
        })?;
    let status = response.status();
    if matches!(status.as_u16(), 401 | 403) {
        return Err(ApiError::bad_request(
            "invalid_credentials",
            "Confluence refused these credentials",
        ));
    }
    if status.as_u16() == 404 {
        tracing::warn!(%url, "connect: no Confluence REST API there (404); check the site's context path");
        return Err(ApiError::bad_gateway(
            "confluence_not_found",
            format!(
                "no Confluence REST API at {site_url}{context} (404): the site's address or context path is wrong"
            ),
        ));
    }
    if !status.is_success() {
        tracing::warn!(%url, %status, "connect: Confluence answered with an error");
        return Err(ApiError::bad_gateway(
            "confluence_error",
            format!("Confluence answered {status}"),
        ));
    }
    let user: Value = response.json().await.map_err(|error| {
        tracing::warn!(%url, cause = %error_chain(&error), "connect: Confluence's answer was not JSON");
        ApiError::bad_gateway(
            "confluence_error",
            format!("{site_url}{context} did not answer as Confluence's REST API does"),
        )
    })?;
    let account = ["accountId", "userKey", "username"]
        .iter()
        .find_map(|k| user[*k].as_str().filter(|v| !v.is_empty()))
        .ok_or_else(|| {
            ApiError::bad_gateway("confluence_error", "Confluence did not say who the user is")
        })?;
    let label = ["email", "displayName", "publicName"]
        .iter()
        .find_map(|k| user[*k].as_str().filter(|v| !v.trim().is_empty()))
        .map(|v| v.chars().take(255).collect::<String>());
    Ok((account.to_string(), label))
}

/// An error with its causes, innermost last ("connection refused", a DNS
/// failure, a certificate refused).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Whose a new connection is: an API customer's, or the organisation's
/// own (connected by an admin in the console).
#[derive(Clone, Copy)]
pub enum Owner<'a> {
    Customer(&'a str),
    Admin(&'a store::Admin),
}

/// Creates (or updates, when reconnecting) a connection, announces it
/// (ADD, when new and a customer's) and queues its first sync: one store
/// operation, so that a crash leaves all of it or none.
#[allow(clippy::too_many_arguments)] // what a connection is made of, from three different flows
pub async fn finish_connect(
    app: &App,
    organisation: &Organisation,
    owner: Owner<'_>,
    auth_kind: &str,
    site_url: &str,
    context: &str,
    site_link: Option<&str>,
    secret: Secret,
    settings: &ConnectSettings,
    reconnect: Option<i64>,
) -> ApiResult<Connection> {
    let (account, account_label) = current_account(app, site_url, context, &secret).await?;
    let secret_bytes = serde_json::to_vec(&secret).map_err(ApiError::internal)?;
    let (customer, admin) = match owner {
        Owner::Customer(customer) => (Some(customer), None),
        Owner::Admin(admin) => (None, Some(admin)),
    };
    let known = match customer {
        Some(customer) => app.store.end_user(&organisation.id, customer).await?,
        None => None,
    };
    let hours = app.sync_interval_hours(known.as_ref());
    let tags = serde_json::to_value(&settings.tags).map_err(ApiError::internal)?;
    let new_scope = Scope {
        all: settings.sync_files_on_connection,
        ..Scope::default()
    }
    .to_json();
    let connected = app
        .store
        .connect(
            store::Connect {
                organisation_id: &organisation.id,
                customer_id: customer,
                connected_by: admin.map(store::Actor::from),
                // The console's policy: personal spaces are not offered.
                allow_personal_spaces: admin.is_none(),
                site_url,
                context_path: context,
                site_link,
                auth_kind,
                account: &account,
                account_label: account_label.as_deref(),
                credentials: &secret_bytes,
                chunk_size: settings.chunk_size,
                chunk_overlap: settings.chunk_overlap,
                tags: &tags,
                enforce_permissions: settings.enforce_permissions,
                content_kinds: settings.content_kinds.as_deref(),
                new_scope: &new_scope,
                reconnect,
                list_items: settings.sync_source_items,
                next_sync_at: &next_run(hours),
            },
            |connection, created| match customer {
                // Carbon's events are a customer's: the console's
                // connections have none.
                Some(customer) if created => {
                    vec![events::body(
                        events::EventKind::Add,
                        customer,
                        "DATA_SOURCE",
                        json!(connection.data_source_id),
                        &[("data_source_type", "CONFLUENCE".into())],
                    )]
                }
                _ => Vec::new(),
            },
            Scope::wants_sync,
        )
        .await?;
    if connected.created {
        app.outbox_ready.notify_one();
    }
    if connected.queued || settings.sync_source_items {
        app.jobs_ready.notify_one();
    }
    Ok(connected.connection)
}
