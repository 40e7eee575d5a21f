//! A small OpenAI-compatible embeddings server for the tests: each text's
//! vector counts its words hashed into 64 buckets, so texts that share
//! words are near. It wants `Authorization: Bearer test-key`, answers the
//! first `fail_first` requests with 503, and counts what it served.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub const DIM: usize = 64;
pub const KEY: &str = "test-key";

#[derive(Default)]
pub struct Counters {
    pub requests: AtomicUsize,
    pub inputs: AtomicUsize,
    pub fail_first: AtomicUsize,
}

pub fn embed(text: &str) -> Vec<f32> {
    let mut vector = vec![0.0f32; DIM];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
    {
        let mut hash: u64 = 0xcbf29ce484222325;
        for byte in word.to_lowercase().bytes() {
            hash ^= byte as u64;
            hash = hash.wrapping_mul(0x100000001b3);
        }
        vector[(hash % DIM as u64) as usize] += 1.0;
    }
    vector
}

async fn embeddings(
    State(counters): State<Arc<Counters>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    counters.requests.fetch_add(1, Ordering::SeqCst);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {KEY}"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "bad key"}})),
        );
    }
    if counters
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": {"message": "busy"}})),
        );
    }
    let inputs: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().unwrap_or("").to_string())
            .collect(),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": {"message": "input"}})),
            )
        }
    };
    counters.inputs.fetch_add(inputs.len(), Ordering::SeqCst);
    // Answered in reverse order: clients must sort by index.
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": embed(text)}))
        .collect();
    (
        StatusCode::OK,
        Json(
            json!({"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 0, "total_tokens": 0}}),
        ),
    )
}

/// Starts the server; returns its base URL (`.../v1`) and its counters.
pub async fn start() -> (String, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let app = Router::new()
        .route("/v1/embeddings", post(embeddings))
        .with_state(counters.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{address}/v1"), counters)
}
