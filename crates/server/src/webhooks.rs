//! Webhook delivery from the durable outbox: at least once, signed, with
//! exponential backoff, and never to the operator's own network unless
//! the operator allows it.

use crate::events;
use crate::App;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Deliveries claimed at a time.
const BATCH: i64 = 16;

/// How long a claimed delivery is this node's: renewed just before it is
/// sent, and long enough for that send to time out, so no other node
/// sends it meanwhile; a node that dies holds its claims this long.
fn lease(app: &App) -> Duration {
    Duration::from_secs(2 * app.config.webhooks.timeout_secs + 5)
}

pub async fn deliverer(app: Arc<App>) {
    let mut last_prune = std::time::Instant::now();
    loop {
        let due = match app
            .store
            .claim_deliveries(&app.node_id, BATCH, lease(&app))
            .await
        {
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
                // Still ours (the batch may have waited behind slow
                // receivers longer than the claim lasts)?
                match app_ref
                    .store
                    .renew_delivery(delivery.id, &app_ref.node_id, lease(app_ref))
                    .await
                {
                    Ok(true) => deliver(app_ref, delivery).await,
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(%error, delivery = delivery.id, "renewing a delivery's claim failed; left to its lease");
                    }
                }
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
        Ok(()) => {
            crate::metrics::record_delivery("delivered");
            app.store.delivery_succeeded(delivery.id).await
        }
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
            crate::metrics::record_delivery(if retry_at.is_some() {
                "retrying"
            } else {
                "failed"
            });
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
        // The same on every attempt of one delivery: a receiver drops
        // what it has already seen (delivery is at least once).
        .header("Confsync-Delivery-Id", delivery.id.to_string())
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

/// Whether a webhook may not be sent to `ip`: anything in IANA's IPv4 and
/// IPv6 special-purpose address registries (RFC 6890, from the `iprfc`
/// crate, with the blocks registered since: 64:ff9b:1::/48, 3fff::/20),
/// multicast, the deprecated site-local fec0::/10, and any IPv6 address
/// whose embedded IPv4 address is one of those (mapped, translated,
/// compatible, NAT64, 6to4, Teredo), so that no spelling of a private
/// address gets through.
pub fn is_private(ip: IpAddr) -> bool {
    use iprfc::{Ipv6Net, RFC6890};
    match ip {
        IpAddr::V4(v4) => RFC6890.contains(&v4) || v4.is_multicast(),
        IpAddr::V6(v6) => {
            let later: [Ipv6Net; 3] = [
                // Local-use IPv4/IPv6 translation (RFC 8215).
                Ipv6Net::new_assert(std::net::Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48),
                // Documentation (RFC 9637).
                Ipv6Net::new_assert(std::net::Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),
                // Site-local, deprecated (RFC 3879) but still routed by some stacks.
                Ipv6Net::new_assert(std::net::Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10),
            ];
            RFC6890.contains(&v6)
                || v6.is_multicast()
                || later.iter().any(|net| net.contains(&v6))
                || embedded_ipv4(v6)
                    .iter()
                    .any(|v4| is_private(IpAddr::V4(*v4)))
        }
    }
}

/// The IPv4 addresses an IPv6 address carries, in every form that a
/// network may translate into an IPv4 destination.
fn embedded_ipv4(v6: std::net::Ipv6Addr) -> Vec<std::net::Ipv4Addr> {
    let s = v6.segments();
    let o = v6.octets();
    let v4 = |a: u8, b: u8, c: u8, d: u8| std::net::Ipv4Addr::new(a, b, c, d);
    let last = v4(o[12], o[13], o[14], o[15]);
    let mut out = Vec::new();
    match s {
        // ::a.b.c.d (compatible), ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (translated)
        [0, 0, 0, 0, 0, 0, _, _]
        | [0, 0, 0, 0, 0, 0xffff, _, _]
        | [0, 0, 0, 0, 0xffff, 0, _, _] => out.push(last),
        // NAT64 (RFC 6052's well-known prefix and RFC 8215's local one).
        [0x64, 0xff9b, ..] => out.push(last),
        // 6to4: 2002:AABB:CCDD::/48.
        [0x2002, ..] => out.push(v4(o[2], o[3], o[4], o[5])),
        // Teredo: the server in bits 32-63, the client inverted in the last 32.
        [0x2001, 0, ..] => {
            out.push(v4(o[4], o[5], o[6], o[7]));
            out.push(v4(!o[12], !o[13], !o[14], !o[15]));
        }
        _ => {}
    }
    out
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
            // Issue 11's finding 9: other spellings and special blocks.
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::169.254.169.254]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[64:ff9b:1::a00:1]/",
            "http://[2002:7f00:1::]/",
            "http://[::ffff:0:7f00:1]/",
            "http://[fec0::1]/",
            "http://[2001:db8::1]/",
            "http://[3fff::1]/",
            "http://[100::1]/",
            "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
            "http://[ff02::1]/",
            "http://198.18.0.1/",
            "http://192.0.0.8/",
            "http://192.0.2.1/",
            "http://240.0.0.1/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
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
        for url in [
            "https://8.8.8.8/hook",
            "https://[2606:4700:4700::1111]/hook",
            "https://1.1.1.1/",
        ] {
            assert!(check_target(url, false).await.is_ok(), "{url}");
        }
    }
}
