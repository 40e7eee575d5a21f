//! Pushes from Confluence Data Center: `POST /webhooks/confluence/{connection}`
//! takes the webhooks an administrator registered in Confluence (7.7 and
//! later) for a connection, with the secret confsync derives for it
//! (`secret_for`: shown by `confsync connections show`). Each event, once
//! its signature (`X-Hub-Signature`, HMAC-SHA256 of the body) checks out,
//! becomes the same work a poll or a scheduled sync does: a poll for an
//! edit or a creation, a full sync for what a poll cannot see (trash,
//! removal, restore, permissions, spaces).
//!
//! An event is a hint, never data: what is synced is read from Confluence,
//! so a forged event (refused: no valid signature) or a replayed one (a
//! stale timestamp is refused, a repeat within the window is dropped, and
//! either would only make confsync read what Confluence says now) changes
//! nothing in the store.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::time::Duration;
use store::SyncState;

/// Events older (or further ahead) than this are refused as replays.
const WINDOW: Duration = Duration::from_secs(10 * 60);

/// The secret a connection's Data Center webhooks are signed with:
/// derived from the store's key, so that nothing more is stored and it
/// changes with nothing but the key.
pub fn secret_for(store: &store::Store, connection_id: &str) -> String {
    use hmac::Mac;
    let key = store.derive_key("confluence-webhooks");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(connection_id.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..20])
}

/// Whether `header` (`sha256=<hex>`, or the bare hex) signs `body` with `secret`.
fn signed(secret: &str, header: Option<&str>, body: &[u8]) -> bool {
    use hmac::Mac;
    let Some(header) = header else {
        return false;
    };
    let hex_part = header.strip_prefix("sha256=").unwrap_or(header);
    let Ok(given) = hex::decode(hex_part.trim()) else {
        return false;
    };
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// What an event asks of confsync.
#[derive(Debug, PartialEq, Eq)]
enum Work {
    /// Recent edits and creations: a poll finds and syncs them.
    Poll,
    /// What a poll cannot see: a full (incremental) sync.
    Sync,
    /// Nothing confsync keeps.
    Nothing,
}

fn work_for(event: &str) -> Work {
    match event {
        "page_created" | "page_updated" | "blog_created" | "blog_updated" => Work::Poll,
        "page_trashed"
        | "page_restored"
        | "page_removed"
        | "page_moved"
        | "blog_trashed"
        | "blog_restored"
        | "blog_removed"
        | "space_created"
        | "space_updated"
        | "space_removed"
        | "content_permissions_updated"
        | "comment_created"
        | "comment_updated"
        | "comment_removed"
        | "attachment_created"
        | "attachment_updated"
        | "attachment_removed" => Work::Sync,
        _ => Work::Nothing,
    }
}

/// POST /webhooks/confluence/{connection}
pub async fn receive(
    State(app): State<AppState>,
    Path(connection_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    // One answer for an unknown connection and a bad signature: the path
    // tells a caller nothing.
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            "the event is not signed with this connection's webhook secret",
        )
        .into_response()
    };
    if connection_id.len() > 64 || body.len() > 1 << 20 {
        return refused();
    }
    let connection = match app.store.connection(&connection_id).await {
        Ok(connection) => connection,
        Err(store::Error::NotFound(_)) => return refused(),
        Err(error) => return ApiError::internal(error).into_response(),
    };
    let signature = headers.get("x-hub-signature").and_then(|v| v.to_str().ok());
    if !signed(&secret_for(&app.store, &connection.id), signature, &body) {
        tracing::warn!(connection = %connection.id, "a Confluence webhook with a bad signature was refused");
        return refused();
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return ApiError::bad_request("invalid_event", "the event is not JSON").into_response();
    };
    let name = event["event"].as_str().unwrap_or("").to_string();
    let sent = event["timestamp"].as_i64().unwrap_or(0);
    let now = chrono::Utc::now().timestamp_millis();
    if (now - sent).unsigned_abs() > WINDOW.as_millis() as u64 {
        return ApiError::bad_request(
            "stale_event",
            "the event's timestamp is not within 10 minutes of now (a replay?)",
        )
        .into_response();
    }
    // A repeat within the window (a retry, or a replay) is done once.
    {
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(&body));
        let mut seen = app.pushes_seen.lock();
        seen.retain(|_, at| now - *at < WINDOW.as_millis() as i64);
        if seen.insert(digest, now).is_some() {
            return (StatusCode::OK, Json(json!({"duplicate": true}))).into_response();
        }
    }
    if connection.revoked {
        return (StatusCode::ACCEPTED, Json(json!({"queued": null}))).into_response();
    }
    let work = work_for(&name);
    let queued = match work {
        Work::Poll => app
            .store
            .enqueue_poll(&connection.id, &format!("webhook {name}"))
            .await
            .map(|_| Some("poll")),
        Work::Sync => app
            .store
            .enqueue_sync(&connection.id, &format!("webhook {name}"))
            .await
            .map(|_| Some("sync")),
        Work::Nothing => Ok(None),
    };
    match queued {
        Ok(queued) => {
            tracing::info!(connection = %connection.id, event = %name, ?queued, "Confluence webhook received");
            if queued.is_some() {
                app.jobs_ready.notify_one();
            }
            (StatusCode::ACCEPTED, Json(json!({"queued": queued}))).into_response()
        }
        Err(error) => ApiError::internal(error).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_check_the_whole_body() {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(b"{\"event\":\"page_updated\"}");
        let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert!(signed(
            "s3cret",
            Some(&good),
            b"{\"event\":\"page_updated\"}"
        ));
        assert!(signed(
            "s3cret",
            Some(good.trim_start_matches("sha256=")),
            b"{\"event\":\"page_updated\"}"
        ));
        assert!(!signed(
            "s3cret",
            Some(&good),
            b"{\"event\":\"page_removed\"}"
        ));
        assert!(!signed(
            "other",
            Some(&good),
            b"{\"event\":\"page_updated\"}"
        ));
        assert!(!signed("s3cret", None, b"{}"));
        assert!(!signed("s3cret", Some("sha256=zz"), b"{}"));
        assert_eq!(work_for("page_updated"), Work::Poll);
        assert_eq!(work_for("page_removed"), Work::Sync);
        assert_eq!(work_for("user_followed"), Work::Nothing);
    }
}
