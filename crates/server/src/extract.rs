//! Request extractors: JSON bodies with Carbon's validation errors, and
//! the caller (organisation and customer) from the credentials.

use crate::error::{ApiError, FieldError};
use crate::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::json;
use sha2::Digest;

/// A JSON body. Malformed JSON, wrong types and missing fields answer 422
/// with where and what; a body over the limit 413; another content type 415.
/// An empty body reads as `{}` (every field of most requests is optional).
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
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
        let bytes = read_limited(request.into_body(), limit).await?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        parse(text).map(Body)
    }
}

/// Reads a body of at most `limit` bytes. A larger one is read on (and
/// thrown away) up to eight times the limit, so that the client hears the
/// 413 instead of a broken connection; beyond that the connection closes.
async fn read_limited(body: axum::body::Body, limit: usize) -> Result<Vec<u8>, ApiError> {
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
    while let Some(chunk) = stream.next().await {
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

/// Parses JSON into `T`, with the path of the first error.
pub fn parse<T: DeserializeOwned>(text: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let mut loc = vec![json!("body")];
        for segment in error.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => loc.push(json!(index)),
                serde_path_to_error::Segment::Map { key } => loc.push(json!(key)),
                serde_path_to_error::Segment::Enum { variant } => loc.push(json!(variant)),
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        let inner = error.into_inner();
        let kind = match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "json_invalid"
            }
            serde_json::error::Category::Io => "json_invalid",
            serde_json::error::Category::Data => "value_error",
        };
        ApiError::Validation(vec![FieldError {
            loc,
            msg: without_position(&inner.to_string()),
            kind,
        }])
    })?;
    deserializer.end().map_err(|e| {
        ApiError::Validation(vec![FieldError {
            loc: vec![json!("body")],
            msg: without_position(&e.to_string()),
            kind: "json_invalid",
        }])
    })?;
    Ok(value)
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

/// Who is calling: an organisation, and the customer it acts for.
#[derive(Clone, Debug)]
pub struct Caller {
    pub organisation: store::Organisation,
    pub customer_id: Option<String>,
}

impl Caller {
    /// The customer, required by customer-scoped endpoints.
    pub fn customer(&self) -> Result<&str, ApiError> {
        self.customer_id.as_deref().ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "customer_id_required",
                "send the customer-id header (or authenticate with a customer token)",
            )
        })
    }
}

pub const MAX_CUSTOMER_ID: usize = 255;

pub fn valid_customer_id(id: &str) -> bool {
    !id.trim().is_empty() && id.len() <= MAX_CUSTOMER_ID && !id.chars().any(char::is_control)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
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
                let organisation = state
                    .store
                    .organisation_by_key(&hash_secret(credential))
                    .await?
                    .ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
                let customer_id = match parts.headers.get("customer-id") {
                    None => None,
                    Some(value) => {
                        let id = value.to_str().ok().filter(|id| valid_customer_id(id)).ok_or_else(|| {
                            ApiError::bad_request(
                                "invalid_customer_id",
                                format!("customer-id must be 1 to {MAX_CUSTOMER_ID} printable characters"),
                            )
                        })?;
                        Some(id.to_string())
                    }
                };
                Ok(Caller {
                    organisation,
                    customer_id,
                })
            }
            "token" => {
                let (organisation, customer) = state
                    .store
                    .customer_token(&hash_secret(credential), "access")
                    .await?
                    .ok_or_else(|| ApiError::unauthorized("invalid or expired customer token"))?;
                Ok(Caller {
                    organisation,
                    customer_id: Some(customer),
                })
            }
            _ => Err(ApiError::unauthorized(
                "unknown authorization scheme: use Bearer or Token",
            )),
        }
    }
}
