//! Errors in the caller's terms, each saying whether a retry could help.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The credentials were refused (401), or an OAuth grant is gone and the
    /// connection needs the user's consent again.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// Confluence refused the request as malformed (400): a bug on our side
    /// or input it does not accept; retrying the same request cannot help.
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("rate limited; retry after {retry_after:?}")]
    RateLimited { retry_after: Option<Duration> },
    #[error("server error {status}: {message}")]
    Server { status: u16, message: String },
    #[error("transport: {0}")]
    Transport(String),
    /// No connection could be made: refused, no such host, TLS refused.
    #[error("cannot connect: {0}")]
    Unreachable(String),
    /// A response that did not parse: truncated or not what the API documents.
    #[error("undecodable response from {url}: {message}")]
    Decode { url: String, message: String },
    /// The OAuth refresh token was refused (invalid_grant): re-consent needed.
    #[error("oauth grant refused: {0}")]
    GrantRevoked(String),
    #[error("token store failed: {0}")]
    TokenStore(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A link or redirect to another origin than the site's: never
    /// followed, so that the site's credentials go nowhere else.
    #[error("refused a link to another host than the site's: {0}")]
    ForeignOrigin(String),
}

impl Error {
    /// Whether the same request may succeed if made again later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::RateLimited { .. }
                | Error::Server { .. }
                | Error::Transport(_)
                | Error::Unreachable(_)
                | Error::Decode { .. }
        )
    }

    /// Whether the connection can go on without a person acting (new
    /// credentials, consent).
    pub fn needs_reauthorization(&self) -> bool {
        matches!(self, Error::Unauthorized(_) | Error::GrantRevoked(_))
    }
}

pub type Result<T> = std::result::Result<T, Error>;
