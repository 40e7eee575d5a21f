//! Retries with backoff and jitter, Retry-After honoured up to a cap, and a
//! per-site governor that spaces requests out when Confluence says it is
//! near its limit and stops them all while it says to wait.

use parking_lot::Mutex;
use rand::Rng;
use reqwest::header::HeaderMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, Result};
use crate::Client;

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Retry-After is honoured up to this; beyond it (Confluence has sent
    /// 2^63 seconds) it is treated as this.
    pub max_retry_after: Duration,
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            request_timeout: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Short waits, for tests against the simulator.
    pub fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(2),
            request_timeout: Duration::from_secs(30),
        }
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        // Full jitter, so that many clients do not retry in step.
        let jittered = rand::thread_rng().gen_range(Duration::ZERO..=exponential);
        match retry_after {
            Some(wait) => wait.min(self.max_retry_after) + jittered / 4,
            None => jittered.max(self.base_delay / 2),
        }
    }
}

/// Spacing between requests to one site.
#[derive(Default)]
pub(crate) struct Governor {
    state: Mutex<GovernorState>,
}

#[derive(Default)]
struct GovernorState {
    not_before: Option<Instant>,
    spacing: Duration,
}

impl Governor {
    async fn wait(&self) {
        let wait = {
            let mut state = self.state.lock();
            let now = Instant::now();
            let start = state.not_before.map_or(now, |t| t.max(now));
            state.not_before = Some(start + state.spacing);
            start - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Confluence said it is near its limit: double the spacing (up to 2 s).
    fn slow_down(&self) {
        let mut state = self.state.lock();
        state.spacing = (state.spacing * 2)
            .max(Duration::from_millis(20))
            .min(Duration::from_secs(2));
    }

    fn relax(&self) {
        let mut state = self.state.lock();
        state.spacing /= 2;
        if state.spacing < Duration::from_millis(5) {
            state.spacing = Duration::ZERO;
        }
    }

    /// Every request to the site waits this long.
    fn pause(&self, wait: Duration) {
        let mut state = self.state.lock();
        let until = Instant::now() + wait;
        state.not_before = Some(state.not_before.map_or(until, |t| t.max(until)));
    }
}

fn retry_after(headers: &HeaderMap, cap: Duration) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds).min(cap));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        if seconds.is_finite() && seconds >= 0.0 {
            return Some(Duration::from_secs_f64(seconds.min(cap.as_secs_f64())));
        }
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .min(cap),
    )
}

fn near_limit(headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("x-ratelimit-nearlimit") == Some("true") {
        return true;
    }
    match (
        header("x-ratelimit-remaining").and_then(|v| v.parse::<f64>().ok()),
        header("x-ratelimit-limit").and_then(|v| v.parse::<f64>().ok()),
    ) {
        (Some(remaining), Some(limit)) if limit > 0.0 => remaining / limit < 0.2,
        _ => false,
    }
}

/// One request with retries. `json` asks that the body parse as JSON, so
/// that a truncated body is retried like a broken connection.
pub(crate) async fn run(client: &Client, url: &str, json: bool) -> Result<bytes::Bytes> {
    let inner = &client.inner;
    let mut attempt = 0;
    let mut refreshed = false;
    loop {
        inner.governor.wait().await;
        inner.requests.fetch_add(1, Ordering::Relaxed);
        let outcome = once(client, url, json).await;
        let error = match outcome {
            Ok(bytes) => return Ok(bytes),
            Err(error) => error,
        };
        // A 401 on an OAuth token we believed valid: refresh once.
        if matches!(error, Error::Unauthorized(_)) && !refreshed {
            refreshed = true;
            if inner.credentials.refresh_now(&inner.http).await? {
                continue;
            }
        }
        attempt += 1;
        if !error.is_retryable() || attempt >= inner.policy.max_attempts {
            return Err(error);
        }
        let announced = match &error {
            Error::RateLimited { retry_after } => *retry_after,
            _ => None,
        };
        let delay = inner.policy.backoff(attempt - 1, announced);
        if matches!(error, Error::RateLimited { .. }) {
            // Everyone waits, not only this request.
            inner.governor.pause(delay);
            inner.governor.slow_down();
        }
        inner.retries.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%url, attempt, ?delay, %error, "request failed, retrying");
        tokio::time::sleep(delay).await;
    }
}

pub(crate) async fn once(client: &Client, url: &str, json: bool) -> Result<bytes::Bytes> {
    let inner = &client.inner;
    // A link from a response (a next page, a download) is followed only on
    // the site's own origin: credentials are never sent anywhere else.
    if !client.on_site(url) {
        return Err(Error::ForeignOrigin(foreign(url)));
    }
    let authorization = inner.credentials.header(&inner.http).await?;
    let response = inner
        .http
        .get(url)
        .header("authorization", authorization)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| transport(&e))?;
    let status = response.status();
    if status.is_redirection() {
        // The redirect policy stopped here: another origin.
        let target = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or("");
        return Err(Error::ForeignOrigin(foreign(target)));
    }
    let headers = response.headers().clone();
    if near_limit(&headers) {
        inner.governor.slow_down();
    } else if status.is_success() {
        inner.governor.relax();
    }
    let cap = inner.policy.max_retry_after;
    if status.is_success() {
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Error::Transport(format!("reading the body: {}", e.without_url())))?;
        if json && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() {
            return Err(Error::Decode {
                url: url.to_string(),
                message: "the body is not complete JSON".into(),
            });
        }
        return Ok(bytes);
    }
    // The body of an error is read for its message only, and never trusted
    // to be JSON (gateways answer in HTML).
    let body = response.text().await.unwrap_or_default();
    let message: String = body.chars().take(300).collect();
    Err(match status.as_u16() {
        429 => Error::RateLimited {
            retry_after: retry_after(&headers, cap),
        },
        // 503 may carry Retry-After too; treat it as a rate limit then.
        503 if headers.contains_key("retry-after") => Error::RateLimited {
            retry_after: retry_after(&headers, cap),
        },
        401 => Error::Unauthorized(message),
        403 => Error::Forbidden(message),
        404 => Error::NotFound(url.to_string()),
        400 => Error::BadRequest(message),
        code if code >= 500 => Error::Server {
            status: code,
            message,
        },
        code => Error::Server {
            status: code,
            message: format!("unexpected status: {message}"),
        },
    })
}

/// A request that got no answer, with its cause as a person can act on
/// it (the innermost error: "Connection refused", a DNS failure, a
/// certificate refused) rather than reqwest's "error sending request".
fn transport(error: &reqwest::Error) -> Error {
    let mut cause = None;
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        cause = Some(inner.to_string());
        source = inner.source();
    }
    let cause = cause.unwrap_or_else(|| error.to_string());
    // "Connection refused (os error 111)": the number helps nobody.
    let cause = match cause.find(" (os error ") {
        Some(at) => cause[..at].to_string(),
        None => cause,
    };
    if error.is_timeout() {
        Error::Transport(format!("no answer in time ({cause})"))
    } else if error.is_connect() {
        Error::Unreachable(cause)
    } else {
        Error::Transport(cause)
    }
}

/// A foreign URL as an error names it: scheme and host only (a query
/// could carry anything).
fn foreign(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(url) => format!("{}://{}", url.scheme(), url.host_str().unwrap_or("")),
        Err(_) => "an unparseable URL".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms_and_cap() {
        let cap = Duration::from_secs(120);
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&headers, cap), Some(Duration::from_secs(7)));
        headers.insert("retry-after", "9223372036854775807".parse().unwrap());
        assert_eq!(retry_after(&headers, cap), Some(cap));
        headers.insert("retry-after", "99999999999999999999999".parse().unwrap());
        assert_eq!(retry_after(&headers, cap), Some(cap));
        let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        headers.insert("retry-after", date.parse().unwrap());
        let wait = retry_after(&headers, cap).unwrap();
        assert!(wait <= Duration::from_secs(30) && wait >= Duration::from_secs(28));
        headers.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&headers, cap), None);
        assert_eq!(retry_after(&HeaderMap::new(), cap), None);
    }

    #[test]
    fn backoff_is_bounded() {
        let policy = RetryPolicy::default();
        for attempt in 0..40 {
            assert!(policy.backoff(attempt, None) <= policy.max_delay);
            let announced = policy.backoff(attempt, Some(Duration::from_secs(1_000_000)));
            assert!(announced <= policy.max_retry_after + policy.max_delay / 4);
        }
    }
}
