//! Fault injection and the per-credential rate limit.
//!
//! Faults are drawn at random (a rate and a set of kinds, from a seed) or
//! taken in order from a script, so a test can say exactly which request
//! fails and how. The rate limit is a token bucket per credential that
//! answers as Cloud does: 429 with Retry-After and the X-RateLimit-*
//! headers, `X-RateLimit-NearLimit: true` below 20% left.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultKind {
    /// 429 with `Retry-After` in seconds.
    #[serde(rename = "429_seconds")]
    TooManySeconds,
    /// 429 with `Retry-After` as an HTTP date.
    #[serde(rename = "429_http_date")]
    TooManyHttpDate,
    /// 429 without `Retry-After`.
    #[serde(rename = "429_missing")]
    TooManyMissing,
    /// 429 with `Retry-After: 9223372036854775807`, as seen in the field.
    #[serde(rename = "429_absurd")]
    TooManyAbsurd,
    #[serde(rename = "500")]
    Internal,
    #[serde(rename = "502")]
    BadGateway,
    #[serde(rename = "503")]
    Unavailable,
    #[serde(rename = "504")]
    GatewayTimeout,
    /// The status and headers are sent, then the connection closes halfway
    /// through the body.
    #[serde(rename = "close_mid_body")]
    CloseMidBody,
    /// A 200 whose JSON body is cut short (with a matching Content-Length).
    #[serde(rename = "truncated_json")]
    TruncatedJson,
    /// 401, as Confluence answers once the token was revoked: not a
    /// passing fault, so never among the random kinds (`ALL`); scripted
    /// or chosen, it makes a sync fail for good.
    #[serde(rename = "401")]
    Unauthorized,
}

impl FaultKind {
    pub const ALL: [FaultKind; 10] = [
        FaultKind::TooManySeconds,
        FaultKind::TooManyHttpDate,
        FaultKind::TooManyMissing,
        FaultKind::TooManyAbsurd,
        FaultKind::Internal,
        FaultKind::BadGateway,
        FaultKind::Unavailable,
        FaultKind::GatewayTimeout,
        FaultKind::CloseMidBody,
        FaultKind::TruncatedJson,
    ];
}

fn default_kinds() -> Vec<FaultKind> {
    FaultKind::ALL.to_vec()
}

fn default_retry_after() -> u64 {
    1
}

/// What `PUT /_sim/faults` takes and `GET /_sim/faults` answers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaultConfig {
    /// Probability in [0, 1] that an API request fails.
    #[serde(default)]
    pub rate: f64,
    #[serde(default = "default_kinds")]
    pub kinds: Vec<FaultKind>,
    #[serde(default)]
    pub seed: u64,
    /// Added to every API request.
    #[serde(default)]
    pub latency_ms: u64,
    /// Faults applied, in order, to the next API requests, before any
    /// random one.
    #[serde(default)]
    pub script: Vec<FaultKind>,
    /// The `Retry-After` that 429s in seconds and as a date announce.
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            rate: 0.0,
            kinds: default_kinds(),
            seed: 0,
            latency_ms: 0,
            script: Vec::new(),
            retry_after_secs: default_retry_after(),
        }
    }
}

pub struct FaultState {
    pub config: FaultConfig,
    script: VecDeque<FaultKind>,
    rng: ChaCha8Rng,
    pub injected: u64,
}

impl FaultState {
    pub fn new(config: FaultConfig) -> Self {
        FaultState {
            script: config.script.iter().copied().collect(),
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config,
            injected: 0,
        }
    }

    /// The fault for the next API request, if any.
    pub fn next_fault(&mut self) -> Option<FaultKind> {
        let fault = if let Some(kind) = self.script.pop_front() {
            Some(kind)
        } else if self.config.rate > 0.0
            && !self.config.kinds.is_empty()
            && self.rng.gen_bool(self.config.rate.clamp(0.0, 1.0))
        {
            Some(self.config.kinds[self.rng.gen_range(0..self.config.kinds.len())])
        } else {
            None
        };
        if fault.is_some() {
            self.injected += 1;
        }
        fault
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct RateLimitConfig {
    /// Bucket size: the burst a credential may make.
    pub capacity: f64,
    /// Tokens added a second.
    pub refill_per_second: f64,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// One token bucket per credential.
pub struct RateLimiter {
    pub config: Option<RateLimitConfig>,
    buckets: HashMap<String, Bucket>,
    pub limited: u64,
}

/// What the limiter decided, with what the response headers must say.
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the bucket is full again.
    pub reset_in: f64,
    /// Seconds until one token is available.
    pub retry_after: u64,
}

impl RateLimiter {
    pub fn new(config: Option<RateLimitConfig>) -> Self {
        RateLimiter {
            config,
            buckets: HashMap::new(),
            limited: 0,
        }
    }

    pub fn set(&mut self, config: Option<RateLimitConfig>) {
        self.config = config;
        self.buckets.clear();
    }

    pub fn check(&mut self, credential: &str, now: Instant) -> Option<RateDecision> {
        let config = self.config?;
        let capacity = config.capacity.max(1.0);
        let refill = config.refill_per_second.max(0.001);
        let bucket = self
            .buckets
            .entry(credential.to_string())
            .or_insert(Bucket {
                tokens: capacity,
                updated: now,
            });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * refill).min(capacity);
        bucket.updated = now;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        } else {
            self.limited += 1;
        }
        let missing = (1.0 - bucket.tokens).max(0.0);
        Some(RateDecision {
            allowed,
            limit: capacity as u64,
            remaining: bucket.tokens.floor() as u64,
            reset_in: (capacity - bucket.tokens) / refill,
            retry_after: (missing / refill).ceil().max(1.0) as u64,
        })
    }
}

pub fn reset_header(reset_in: f64) -> String {
    let at = chrono::Utc::now() + chrono::Duration::milliseconds((reset_in * 1000.0) as i64);
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn http_date_in(seconds: u64) -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(seconds))
}
