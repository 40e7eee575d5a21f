//! Data Center's webhooks (Confluence 7.7 and later): registered by an
//! administrator with `POST /rest/api/webhooks` ({name, url, events,
//! configuration: {secret}, active}), then sent for each change as a JSON
//! payload, signed with the webhook's secret (HMAC-SHA256 of the body, in
//! `X-Hub-Signature: sha256=<hex>`), as Atlassian's "Managing webhooks"
//! describes. Deliveries are fire-and-forget, as Confluence's are: a
//! receiver that is down misses them (a connector must not rely on them
//! alone).

use crate::model::{ContentKind, Site, Status};
use crate::Change;
use serde::Deserialize;
use serde_json::{json, Value};

/// A registered webhook.
#[derive(Clone, Debug)]
pub struct Webhook {
    pub id: u64,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub secret: Option<String>,
    pub active: bool,
}

impl Webhook {
    pub fn json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "events": self.events,
            "active": self.active,
            // The secret is never shown back, as in Confluence.
            "configuration": {},
        })
    }
}

/// The body `POST /rest/api/webhooks` takes.
#[derive(Deserialize)]
pub struct NewWebhook {
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    #[serde(default)]
    pub configuration: Option<Configuration>,
    #[serde(default = "yes")]
    pub active: bool,
}

#[derive(Deserialize)]
pub struct Configuration {
    #[serde(default)]
    pub secret: Option<String>,
}

fn yes() -> bool {
    true
}

/// The events Confluence sends for content and spaces.
pub const EVENTS: &[&str] = &[
    "page_created",
    "page_updated",
    "page_trashed",
    "page_restored",
    "page_removed",
    "page_moved",
    "blog_created",
    "blog_updated",
    "blog_trashed",
    "blog_restored",
    "blog_removed",
    "space_created",
    "space_updated",
    "space_removed",
    "content_permissions_updated",
    "comment_created",
    "attachment_created",
];

/// The events a change raises, with their payloads (read from the site
/// after the change), as (event name, payload).
pub fn events_of(site: &Site, change: &Change, now: i64) -> Vec<(String, Value)> {
    let content_event = |id: &str, action: &str| -> Option<(String, Value)> {
        let id: u64 = id.parse().ok()?;
        let content = site.content.get(&id)?;
        let blog = content.kind == ContentKind::BlogPost;
        let space = site.spaces.get(&content.space_id)?;
        let (prefix, field) = if blog {
            ("blog", "blog")
        } else {
            ("page", "page")
        };
        let event = format!("{prefix}_{action}");
        let payload = json!({
            "timestamp": now,
            "event": event,
            "userKey": site.users.first().map(|u| u.account_id.clone()),
            field: {
                "id": content.id,
                "spaceKey": space.key,
                "title": content.title,
                "version": content.version,
                "creationDate": content.created_at,
                "modificationDate": content.modified_at,
                "self": format!("/pages/viewpage.action?pageId={}", content.id),
                "trashed": content.status == Status::Trashed,
            },
        });
        Some((event, payload))
    };
    match change {
        Change::Edit { id, .. } | Change::Rename { id, .. } => {
            content_event(id, "updated").into_iter().collect()
        }
        Change::Move { id, .. } => content_event(id, "moved").into_iter().collect(),
        Change::Trash { id } => content_event(id, "trashed").into_iter().collect(),
        Change::Restore { id } => content_event(id, "restored").into_iter().collect(),
        Change::Create { id: Some(id), .. } => content_event(id, "created").into_iter().collect(),
        Change::Restrict { id, .. } | Change::Unrestrict { id } => content_event(id, "updated")
            .map(|(_, mut payload)| {
                payload["event"] = json!("content_permissions_updated");
                ("content_permissions_updated".to_string(), payload)
            })
            .into_iter()
            .collect(),
        // Gone from the site: what the payload can still say.
        Change::Purge { id } => {
            let event = "page_removed".to_string();
            vec![(
                event.clone(),
                json!({"timestamp": now, "event": event, "page": {"id": id.parse::<u64>().unwrap_or(0)}}),
            )]
        }
        Change::DeleteSpace { space_id } => {
            let event = "space_removed".to_string();
            vec![(
                event.clone(),
                json!({"timestamp": now, "event": event, "space": {"id": space_id.parse::<u64>().unwrap_or(0)}}),
            )]
        }
        Change::AddComment { container_id, .. } => content_event(container_id, "updated")
            .map(|(_, mut payload)| {
                payload["event"] = json!("comment_created");
                ("comment_created".to_string(), payload)
            })
            .into_iter()
            .collect(),
        Change::AddAttachment { container_id, .. } => content_event(container_id, "updated")
            .map(|(_, mut payload)| {
                payload["event"] = json!("attachment_created");
                ("attachment_created".to_string(), payload)
            })
            .into_iter()
            .collect(),
        Change::Create { id: None, .. } => Vec::new(),
    }
}

/// `X-Hub-Signature`'s value for a body.
pub fn signature(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends each event to every active webhook that asked for it, in the
/// background, in order per webhook.
pub fn send(hooks: Vec<Webhook>, events: Vec<(String, Value)>) {
    if hooks.is_empty() || events.is_empty() {
        return;
    }
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    for hook in hooks.into_iter().filter(|h| h.active) {
        let wanted: Vec<(String, Value)> = events
            .iter()
            .filter(|(event, _)| hook.events.iter().any(|e| e == event))
            .cloned()
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let http = http.clone();
        handle.spawn(async move {
            for (event, payload) in wanted {
                let body = payload.to_string();
                let mut request = http
                    .post(&hook.url)
                    .header("content-type", "application/json")
                    .header("x-event-key", &event);
                if let Some(secret) = &hook.secret {
                    request = request.header("x-hub-signature", signature(secret, body.as_bytes()));
                }
                if let Err(error) = request.body(body).send().await {
                    tracing::debug!(url = %hook.url, %error, "webhook not delivered");
                }
            }
        });
    }
}
