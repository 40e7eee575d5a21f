//! Request extractors: JSON bodies with Carbon's validation errors, and
//! the caller (organisation and customer) from the credentials.

use crate::error::{ApiError, FieldError};
use crate::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use sha2::Digest;

/// A JSON body. Malformed JSON, wrong types and missing fields answer 422
/// with where and what; a body over the limit 413; another content type 415.
/// A missing body reads as `{}` (every field of most requests is optional).
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + JsonSchema + 'static> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(kind) = request.headers().get(header::CONTENT_TYPE) {
            let kind = kind.to_str().unwrap_or("");
            if !kind.is_empty() && !kind.contains("json") {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send the body as application/json",
                ));
            }
        }
        let limit = state.config.max_body_bytes;
        let time = std::time::Duration::from_secs(state.config.limits.body_read_timeout_secs);
        let bytes = read_limited(request.into_body(), limit, time).await?;
        // No body at all reads as `{}` (where the schema allows it); any
        // other text must be JSON.
        let text: &[u8] = if bytes.is_empty() { b"{}" } else { &bytes };
        parse(text).map(Body)
    }
}

/// Reads a body of at most `limit` bytes. A larger one is read on (and
/// thrown away) up to eight times the limit, so that the client hears the
/// 413 instead of a broken connection; beyond that the connection closes.
/// A body that does not arrive whole within `time` is refused (408), so a
/// slow client cannot hold a connection by trickling its body.
async fn read_limited(
    body: axum::body::Body,
    limit: usize,
    time: std::time::Duration,
) -> Result<Vec<u8>, ApiError> {
    use futures::StreamExt;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {limit} bytes"),
        )
    };
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    let mut total = 0usize;
    let deadline = tokio::time::Instant::now() + time;
    let slow = || {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("the body did not arrive within {} s", time.as_secs()),
        )
    };
    while let Some(chunk) = tokio::time::timeout_at(deadline, stream.next())
        .await
        .map_err(|_| slow())?
    {
        let chunk = chunk
            .map_err(|_| ApiError::bad_request("unreadable_body", "the body could not be read"))?;
        total += chunk.len();
        if total <= limit {
            bytes.extend_from_slice(&chunk);
        } else if total > limit.saturating_mul(8) {
            return Err(too_large());
        }
    }
    if total > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Where a string (or a key) holding U+0000 is, if anywhere.
fn nul_at(value: &Value) -> Option<Vec<Value>> {
    match value {
        Value::String(s) if s.contains('\0') => Some(Vec::new()),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            nul_at(item).map(|mut path| {
                path.insert(0, json!(i));
                path
            })
        }),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                return Some(vec![json!(key)]);
            }
            nul_at(item).map(|mut path| {
                path.insert(0, json!(key));
                path
            })
        }),
        _ => None,
    }
}

/// Parses a request body into `T`. The body is checked against `T`'s JSON
/// Schema first (the one `/openapi.json` publishes), so that the document
/// is the contract: a body the schema refuses is refused (422, each error
/// located), and what the schema allows reaches the handler. Numbers with
/// no fraction (`10.0`) are integers, as JSON Schema counts them.
pub fn parse<T: DeserializeOwned + JsonSchema + 'static>(text: &[u8]) -> Result<T, ApiError> {
    let mut value: Value = serde_json::from_slice(text).map_err(|e| {
        ApiError::Validation(vec![FieldError {
            loc: vec![json!("body")],
            msg: without_position(&e.to_string()),
            kind: "json_invalid",
        }])
    })?;
    integral_numbers(&mut value);
    // No text confsync keeps may hold U+0000 (PostgreSQL's text cannot):
    // refused alike whichever store is behind the API.
    if let Some(path) = nul_at(&value) {
        let mut loc = vec![json!("body")];
        loc.extend(path);
        return Err(ApiError::Validation(vec![FieldError {
            loc,
            msg: "text may not contain the NUL character (U+0000)".into(),
            kind: "string_nul",
        }]));
    }
    let errors: Vec<FieldError> = validator::<T>()?
        .iter_errors(&value)
        .take(20)
        .map(|error| {
            let mut loc = vec![json!("body")];
            loc.extend(
                error
                    .instance_path
                    .as_str()
                    .split('/')
                    .skip(1)
                    .map(|segment| {
                        let segment = segment.replace("~1", "/").replace("~0", "~");
                        match segment.parse::<u64>() {
                            Ok(index) => json!(index),
                            Err(_) => json!(segment),
                        }
                    }),
            );
            FieldError {
                loc,
                msg: schema_message(&error),
                kind: "value_error",
            }
        })
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let mut loc = vec![json!("body")];
        for segment in error.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => loc.push(json!(index)),
                serde_path_to_error::Segment::Map { key } => loc.push(json!(key)),
                serde_path_to_error::Segment::Enum { variant } => loc.push(json!(variant)),
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        ApiError::Validation(vec![FieldError {
            loc,
            msg: without_position(&error.into_inner().to_string()),
            kind: "value_error",
        }])
    })
}

/// What a schema error says, without echoing the whole value (which may be
/// a megabyte, or a secret).
fn schema_message(error: &jsonschema::ValidationError<'_>) -> String {
    let text = error.to_string();
    let mut short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        short.push_str("...");
    }
    short
}

/// `10.0` becomes `10`: JSON Schema calls it an integer, serde would not.
/// Only within the range floats hold exactly; beyond it the schema's
/// bounds refuse the number.
fn integral_numbers(value: &mut Value) {
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64() {
                let safe = crate::openapi::SAFE_INTEGER as f64;
                if f.fract() == 0.0 && f.abs() <= safe {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        Value::Object(map) => map.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// The compiled schema of each request type, built once.
fn validator<T: JsonSchema + 'static>() -> Result<std::sync::Arc<jsonschema::Validator>, ApiError> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    type Cache = Mutex<HashMap<std::any::TypeId, Arc<jsonschema::Validator>>>;
    static VALIDATORS: OnceLock<Cache> = OnceLock::new();
    let cache = VALIDATORS.get_or_init(Default::default);
    let id = std::any::TypeId::of::<T>();
    if let Some(found) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
        return Ok(found.clone());
    }
    let schema = crate::openapi::request_schema::<T>();
    // The schemas are the code's own: one that does not compile is a bug
    // (logged, 500), which every test of the endpoint shows.
    let compiled = Arc::new(
        jsonschema::options()
            .should_validate_formats(false)
            .build(&schema)
            .map_err(|e| {
                ApiError::internal(format!(
                    "the schema of {} does not compile: {e}",
                    T::schema_name()
                ))
            })?,
    );
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, compiled.clone());
    Ok(compiled)
}

fn without_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// SHA-256 in hex: how keys and tokens are stored.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// What the credentials of a request are, before a handler says which
/// authority it needs.
enum Credential {
    /// `Bearer <API key>`, and the customer named by `customer-id`, if any.
    ApiKey {
        organisation: store::Organisation,
        customer_id: Option<String>,
        end_user: Option<store::EndUser>,
    },
    /// `Token <customer token>`: one customer, and the viewer the
    /// organisation gave when it minted the token.
    Token {
        organisation: store::Organisation,
        customer_id: String,
        viewer: index::Viewer,
        end_user: Option<store::EndUser>,
    },
}

/// The organisation's own authority: an API key. Organisation operations
/// (customers, webhooks, white labels, minting customer tokens) take this
/// extractor; a customer token is refused with 403 `customer_token_forbidden`,
/// whatever else it carries.
#[derive(Clone, Debug)]
pub struct OrgCaller {
    pub organisation: store::Organisation,
    /// The customer named by `customer-id`, for the few organisation
    /// operations that act on one customer (minting their token).
    pub customer_id: Option<String>,
}

impl OrgCaller {
    pub fn customer(&self) -> Result<&str, ApiError> {
        self.customer_id.as_deref().ok_or_else(customer_required)
    }
}

/// One customer's authority: an API key with `customer-id`, or that
/// customer's own token. Customer operations take this extractor and can
/// reach nothing outside the customer.
#[derive(Clone, Debug)]
pub struct CustomerCaller {
    pub organisation: store::Organisation,
    pub customer_id: String,
    /// The viewer a customer token was minted for: a search made with the
    /// token sees at most what this viewer may see. `None` for an API key,
    /// whose caller (the organisation) says who the viewer is.
    pub token_viewer: Option<index::Viewer>,
    /// The customer's end user as the credential was checked, read in the
    /// same statement (`None`: none then). `routes::end_user` reads it.
    pub end_user: Option<store::EndUser>,
}

fn customer_required() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "customer_id_required",
        "send the customer-id header (or authenticate with a customer token)",
    )
}

pub const MAX_CUSTOMER_ID: usize = 255;

pub fn valid_customer_id(id: &str) -> bool {
    !id.trim().is_empty()
        && id.chars().count() <= MAX_CUSTOMER_ID
        && !id.chars().any(char::is_control)
}

impl FromRequestParts<AppState> for OrgCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match authenticate(parts, state).await? {
            Credential::ApiKey {
                organisation,
                customer_id,
                ..
            } => Ok(OrgCaller {
                organisation,
                customer_id,
            }),
            Credential::Token { .. } => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "customer_token_forbidden",
                "this operation acts for the organisation: it takes the organisation's API key, not a customer token",
            )),
        }
    }
}

impl FromRequestParts<AppState> for CustomerCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match authenticate(parts, state).await? {
            Credential::ApiKey {
                organisation,
                customer_id,
                end_user,
            } => Ok(CustomerCaller {
                organisation,
                customer_id: customer_id.ok_or_else(customer_required)?,
                token_viewer: None,
                end_user,
            }),
            Credential::Token {
                organisation,
                customer_id,
                viewer,
                end_user,
            } => Ok(CustomerCaller {
                organisation,
                customer_id,
                token_viewer: Some(viewer),
                end_user,
            }),
        }
    }
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Credential, ApiError> {
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    let (scheme, credential) = authorization.split_once(' ').unwrap_or((authorization, ""));
    let credential = credential.trim();
    if credential.is_empty() {
        return Err(ApiError::unauthorized(
            "send authorization: Bearer <api key> (with customer-id) or Token <customer token>",
        ));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" => {
            // The customer's end user is read with the key (one statement);
            // a customer-id that is not valid is refused once the key is
            // known good, as before.
            let customer_id = match parts.headers.get("customer-id") {
                None => Ok(None),
                Some(value) => value
                    .to_str()
                    .ok()
                    .filter(|id| valid_customer_id(id))
                    .map(|id| Some(id.to_string()))
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid_customer_id",
                            format!(
                                "customer-id must be 1 to {MAX_CUSTOMER_ID} printable characters"
                            ),
                        )
                    }),
            };
            let named = customer_id.as_ref().ok().and_then(|id| id.as_deref());
            let (organisation, end_user) = state
                .store
                .caller_by_key(&hash_secret(credential), named)
                .await?
                .ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
            state.admit(&organisation.id)?;
            Ok(Credential::ApiKey {
                organisation,
                customer_id: customer_id?,
                end_user,
            })
        }
        "token" => {
            let token = state
                .store
                .customer_token(&hash_secret(credential), "access")
                .await?
                .ok_or_else(|| ApiError::unauthorized("invalid or expired customer token"))?;
            state.admit(&token.organisation.id)?;
            // A token's viewer was checked when it was minted; one that no
            // longer reads (a newer field, a damaged row) is the narrowest
            // viewer, never a wider one.
            let viewer = token
                .viewer
                .as_deref()
                .and_then(|v| serde_json::from_str(v).ok())
                .unwrap_or_default();
            Ok(Credential::Token {
                organisation: token.organisation,
                customer_id: token.customer_id,
                viewer,
                end_user: token.end_user,
            })
        }
        _ => Err(ApiError::unauthorized(
            "unknown authorization scheme: use Bearer or Token",
        )),
    }
}
