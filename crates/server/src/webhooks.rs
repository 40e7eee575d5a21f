//! Webhook delivery from the durable outbox: at least once, signed, with
//! exponential backoff, and never to the operator's own network unless
//! the operator allows it.

use crate::events;
use crate::App;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

pub async fn deliverer(app: Arc<App>) {
    let mut last_prune = std::time::Instant::now();
    loop {
        let due = match app.store.due_deliveries(32).await {
            Ok(due) => due,
            Err(error) => {
                tracing::error!(%error, "reading the webhook outbox failed");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        if due.is_empty() {
            let _ =
                tokio::time::timeout(Duration::from_millis(500), app.outbox_ready.notified()).await;
            if last_prune.elapsed() > Duration::from_secs(3600) {
                last_prune = std::time::Instant::now();
                let week_ago = (chrono::Utc::now() - chrono::Duration::days(7))
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                if let Err(error) = app.store.prune_outbox(&week_ago).await {
                    tracing::warn!(%error, "pruning the webhook outbox failed");
                }
            }
            continue;
        }
        // Deliveries to different hooks in parallel; in order within one.
        let mut by_hook: std::collections::BTreeMap<i64, Vec<store::Delivery>> = Default::default();
        for delivery in due {
            by_hook
                .entry(delivery.webhook_id)
                .or_default()
                .push(delivery);
        }
        let app_ref = &app;
        futures::future::join_all(by_hook.into_values().map(|deliveries| async move {
            for delivery in deliveries {
                deliver(app_ref, delivery).await;
            }
        }))
        .await;
    }
}

async fn deliver(app: &App, delivery: store::Delivery) {
    let config = &app.config.webhooks;
    let outcome = match check_target(&delivery.url, config.allow_private_targets).await {
        Err(refused) => Err((format!("the URL {}", refused.reason), refused.transient)),
        Ok(pinned) => {
            // Connect to the addresses just checked, not to a new lookup's.
            let http = match pinned {
                None => Ok(app.webhook_http.clone()),
                Some((host, addresses)) => reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .resolve_to_addrs(&host, &addresses)
                    .build(),
            };
            match http {
                Err(error) => Err((format!("no HTTP client: {error}"), true)),
                Ok(http) => send(&http, &delivery, config.timeout_secs).await,
            }
        }
    };
    let result = match outcome {
        Ok(()) => app.store.delivery_succeeded(delivery.id).await,
        Err((reason, retryable)) => {
            let attempts = delivery.attempts + 1;
            let retry_at = (retryable && attempts < config.max_attempts as i64).then(|| {
                let backoff = config
                    .retry_base_ms
                    .saturating_mul(1u64 << (attempts - 1).clamp(0, 20) as u32)
                    .min(3_600_000);
                (chrono::Utc::now() + chrono::Duration::milliseconds(backoff as i64))
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            });
            tracing::info!(webhook = delivery.webhook_id, attempts, %reason, retry = retry_at.is_some(), "webhook delivery failed");
            app.store
                .delivery_failed(delivery.id, &reason, retry_at.as_deref())
                .await
        }
    };
    if let Err(error) = result {
        tracing::error!(%error, "recording a webhook delivery failed");
    }
}

/// One signed POST; `Err((reason, retryable))` unless it answered 2xx.
async fn send(
    http: &reqwest::Client,
    delivery: &store::Delivery,
    timeout_secs: u64,
) -> Result<(), (String, bool)> {
    let timestamp = chrono::Utc::now().timestamp();
    let signature = events::signature(&delivery.signing_key, timestamp, &delivery.body);
    let compact = signature.replacen(",v1=", ",v2=", 1);
    let sent = http
        .post(&delivery.url)
        .header("content-type", "application/json")
        .header("Carbon-Signature", signature)
        .header("Carbon-Signature-Compact", compact)
        .timeout(Duration::from_secs(timeout_secs))
        .body(delivery.body.clone())
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err((format!("answered {}", response.status()), true)),
        Err(error) => Err((
            format!("could not be reached: {}", without_url(&error)),
            true,
        )),
    }
}

fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    text
}

/// Whether an address belongs to the machine or a private network.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

/// A webhook URL must be http(s); unless allowed, every address its host
/// resolves to must be public. Returns the host name and the addresses it
/// resolved to, so that the delivery connects to exactly those (a second
/// lookup could answer otherwise: DNS rebinding).
/// Why a webhook target is refused; `transient` when trying again later
/// may succeed (a lookup failed).
#[derive(Debug)]
pub struct Refused {
    pub reason: &'static str,
    pub transient: bool,
}

impl Refused {
    fn permanent(reason: &'static str) -> Refused {
        Refused {
            reason,
            transient: false,
        }
    }

    fn transient(reason: &'static str) -> Refused {
        Refused {
            reason,
            transient: true,
        }
    }
}

pub async fn check_target(
    url: &str,
    allow_private: bool,
) -> Result<Option<(String, Vec<std::net::SocketAddr>)>, Refused> {
    let parsed = url::Url::parse(url).map_err(|_| Refused::permanent("is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Refused::permanent("must be http or https"));
    }
    let host = parsed
        .host_str()
        .ok_or(Refused::permanent("has no host"))?
        .to_string();
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Refused::permanent("must not carry credentials"));
    }
    if allow_private {
        return Ok(None);
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        if is_private(ip) {
            return Err(Refused::permanent(
                "points at a private or loopback address",
            ));
        }
        return Ok(None);
    }
    if bare == "localhost" || bare.ends_with(".localhost") {
        return Err(Refused::permanent("points at this machine"));
    }
    let addresses: Vec<std::net::SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|_| Refused::transient("its host does not resolve"))?
        .collect();
    if addresses.is_empty() {
        return Err(Refused::transient("its host does not resolve"));
    }
    if addresses.iter().any(|a| is_private(a.ip())) {
        return Err(Refused::permanent(
            "points at a private or loopback address",
        ));
    }
    Ok(Some((bare.to_string(), addresses)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn private_targets_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1/hook",
            "http://localhost:8080/",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
        ] {
            assert!(check_target(url, false).await.is_err(), "{url}");
            assert!(check_target(url, true).await.is_ok(), "{url}");
        }
        for url in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "not a url",
            "http://user:pw@8.8.8.8/",
        ] {
            assert!(check_target(url, true).await.is_err(), "{url}");
        }
        assert!(check_target("https://8.8.8.8/hook", false).await.is_ok());
    }
}
