//! The test-only control API under `/_sim`: credentials, ground truth,
//! request accounting, mutations, faults, the rate limit and token
//! lifetimes. No authentication: the simulator is a test fixture.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

use super::{AppState, Params};
use crate::faults::{FaultConfig, RateLimitConfig};
use crate::Change;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/_sim/info", get(info))
        .route("/_sim/truth", get(truth))
        .route("/_sim/stats", get(stats))
        .route("/_sim/stats/reset", post(reset_stats))
        .route("/_sim/mutate", post(mutate))
        .route(
            "/_sim/faults",
            get(get_faults).put(put_faults).post(put_faults),
        )
        .route(
            "/_sim/rate-limit",
            get(get_rate_limit).put(put_rate_limit).post(put_rate_limit),
        )
        .route("/_sim/oauth", post(put_oauth))
}

fn bad_request(message: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "bad_request", "message": message.to_string()})),
    )
        .into_response()
}

fn simulator(shared: &AppState) -> crate::Simulator {
    crate::Simulator {
        shared: shared.clone(),
    }
}

async fn info(State(shared): State<AppState>) -> Response {
    let sim = simulator(&shared);
    let summary = {
        let site = shared.site.read();
        json!({
            "spaces": site.spaces.len(),
            "content": site.content.len(),
            "attachments": site.attachments.len(),
            "comments": site.comments.len(),
        })
    };
    Json(json!({
        "credentials": sim.credentials(),
        "accounts": sim.accounts(),
        "site": summary,
    }))
    .into_response()
}

async fn truth(State(shared): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let params = Params::parse(raw.as_deref());
    let Some(email) = params.get("account") else {
        return bad_request("the 'account' parameter (an email) is required");
    };
    let site = shared.site.read();
    let Some(user) = site.user_by_email(email) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "not_found", "message": format!("no account {email}")})),
        )
            .into_response();
    };
    let entries = crate::truth_of(&site, user);
    Json(json!({"account": email, "count": entries.len(), "content": entries})).into_response()
}

async fn stats(State(shared): State<AppState>) -> Response {
    Json(simulator(&shared).stats()).into_response()
}

async fn reset_stats(State(shared): State<AppState>) -> Response {
    simulator(&shared).reset_stats();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MutateRequest {
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    random_changes: usize,
    #[serde(default)]
    changes: Vec<Change>,
}

async fn mutate(State(shared): State<AppState>, body: Bytes) -> Response {
    let request: MutateRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return bad_request(error),
    };
    if request.random_changes > 100_000 {
        return bad_request("at most 100000 random changes at a time");
    }
    let sim = simulator(&shared);
    let mut applied = Vec::new();
    for change in request.changes {
        match sim.apply(change) {
            Ok(done) => applied.push(done),
            Err(error) => {
                return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(json!({"error": "invalid_change", "message": error.to_string(), "applied": applied})),
                )
                    .into_response()
            }
        }
    }
    if request.random_changes > 0 {
        applied.extend(sim.random_changes(request.seed, request.random_changes));
    }
    Json(json!({"count": applied.len(), "changes": applied})).into_response()
}

async fn get_faults(State(shared): State<AppState>) -> Response {
    Json(shared.faults.lock().config.clone()).into_response()
}

async fn put_faults(State(shared): State<AppState>, body: Bytes) -> Response {
    let config: FaultConfig = match serde_json::from_slice(&body) {
        Ok(config) => config,
        Err(error) => return bad_request(error),
    };
    if !(0.0..=1.0).contains(&config.rate) {
        return bad_request("rate must be between 0 and 1");
    }
    simulator(&shared).set_faults(config.clone());
    Json(config).into_response()
}

async fn get_rate_limit(State(shared): State<AppState>) -> Response {
    Json(shared.limiter.lock().config).into_response()
}

/// A body of `null` turns the limit off.
async fn put_rate_limit(State(shared): State<AppState>, body: Bytes) -> Response {
    let config: Option<RateLimitConfig> = match serde_json::from_slice(&body) {
        Ok(config) => config,
        Err(error) => return bad_request(error),
    };
    if let Some(c) = config {
        if !(c.capacity >= 1.0 && c.refill_per_second > 0.0) {
            return bad_request("capacity must be at least 1 and refill_per_second above 0");
        }
    }
    simulator(&shared).set_rate_limit(config);
    Json(config).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OAuthSettings {
    #[serde(default)]
    access_token_ttl_secs: Option<f64>,
    #[serde(default)]
    refresh_grace_secs: Option<f64>,
}

async fn put_oauth(State(shared): State<AppState>, body: Bytes) -> Response {
    let settings: OAuthSettings = match serde_json::from_slice(&body) {
        Ok(settings) => settings,
        Err(error) => return bad_request(error),
    };
    let mut oauth = shared.oauth.lock();
    let to_duration = |secs: f64| Duration::from_secs_f64(secs.clamp(0.001, 1e9));
    if let Some(secs) = settings.access_token_ttl_secs {
        oauth.access_token_ttl = to_duration(secs);
    }
    if let Some(secs) = settings.refresh_grace_secs {
        oauth.refresh_grace = to_duration(secs);
    }
    Json(json!({
        "access_token_ttl_secs": oauth.access_token_ttl.as_secs_f64(),
        "refresh_grace_secs": oauth.refresh_grace.as_secs_f64(),
    }))
    .into_response()
}
