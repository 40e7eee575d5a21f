//! Errors as the API answers them. Validation errors are Carbon's (and
//! FastAPI's): 422 with `{"detail": [{"loc", "msg", "type"}]}`. Every other
//! error is `{"detail": message, "code": stable_code}` with a 4xx or 5xx
//! status; a 5xx never carries internal detail (it is logged instead).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug)]
pub enum ApiError {
    /// 422: what is wrong, where.
    Validation(Vec<FieldError>),
    /// A status with a stable code and a message for a person.
    Status {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// 429 `rate_limited`, with Retry-After in whole seconds.
    RateLimited { retry_after_secs: u64 },
}

#[derive(Debug, Clone)]
pub struct FieldError {
    pub loc: Vec<serde_json::Value>,
    pub msg: String,
    pub kind: &'static str,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// What a person is told.
    pub fn message(&self) -> String {
        match self {
            ApiError::Validation(fields) => fields
                .iter()
                .map(|f| f.msg.clone())
                .collect::<Vec<_>>()
                .join("; "),
            ApiError::Status { message, .. } => message.clone(),
            ApiError::RateLimited { .. } => "too many requests; wait and try again".into(),
        }
    }

    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Status {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// Confluence or Atlassian failed us (unreachable, or an answer not understood).
    pub fn bad_gateway(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_GATEWAY, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// One invalid field of the body.
    pub fn field(path: &[&str], msg: impl Into<String>) -> ApiError {
        let mut loc = vec![json!("body")];
        loc.extend(path.iter().map(|p| json!(p)));
        ApiError::Validation(vec![FieldError {
            loc,
            msg: msg.into(),
            kind: "value_error",
        }])
    }

    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!(%error, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; it has been logged",
        )
    }
}

impl From<store::Error> for ApiError {
    fn from(error: store::Error) -> Self {
        match error {
            store::Error::NotFound(what) => ApiError::not_found(&what),
            store::Error::Invalid(message) => ApiError::bad_request("invalid", message),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Validation(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({
                    "detail": errors.iter().map(|e| json!({
                        "loc": e.loc, "msg": e.msg, "type": e.kind,
                    })).collect::<Vec<_>>()
                })),
            )
                .into_response(),
            ApiError::Status {
                status,
                code,
                message,
            } => (status, Json(json!({"detail": message, "code": code}))).into_response(),
            ApiError::RateLimited { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                [(axum::http::header::RETRY_AFTER, retry_after_secs.to_string())],
                Json(json!({
                    "detail": format!("too many requests for this organisation; retry after {retry_after_secs} s"),
                    "code": "rate_limited",
                })),
            )
                .into_response(),
        }
    }
}
