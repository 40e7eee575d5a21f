//! Prometheus metrics, rendered at `/metrics`: requests by route and
//! status with latency histograms, sync jobs by state, what syncs fetched
//! and how often Confluence made them retry, webhook deliveries, the
//! outbox's depth and this node's index lag. Counters and histograms are
//! recorded where things happen; gauges that the store knows (jobs by
//! state, outbox depth, index lag) are read from it at each scrape, so
//! every node reports the shared queue the same way.

use crate::App;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Latency buckets, in seconds: 1 ms to 10 s.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's recorder, installed once (several servers in one test
/// process share it).
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        // Only fails for an empty bucket list, which BUCKETS is not.
        let recorder = match PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
        {
            Ok(builder) => builder.build_recorder(),
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics shows only gauges");
        }
        handle
    })
}

/// Installs the recorder (before the first request or job records).
pub fn install() {
    handle();
}

/// Middleware: each request runs in a span naming the node, method and
/// route, and is counted by route template (never the raw path: ids would
/// make a series each), method and status, and timed.
pub async fn track(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    use tracing::Instrument;
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let span = tracing::info_span!("request", node = %app.node_id, %method, %route);
    let response = next.run(request).instrument(span).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("confsync_http_requests_total",
        "route" => route.clone(), "method" => method.clone(), "status" => status)
    .increment(1);
    metrics::histogram!("confsync_http_request_duration_seconds",
        "route" => route, "method" => method)
    .record(started.elapsed().as_secs_f64());
    response
}

/// What one finished sync did, added to the totals.
pub fn record_sync(report: &sync::Report) {
    for (kind, counts) in [
        ("page", &report.pages),
        ("blogpost", &report.blogposts),
        ("attachment", &report.attachments),
        ("comment", &report.comments),
    ] {
        for (change, n) in [
            ("added", counts.added),
            ("updated", counts.updated),
            ("deleted", counts.deleted),
            ("failed", counts.failed),
        ] {
            metrics::counter!("confsync_sync_files_total", "kind" => kind, "change" => change)
                .increment(n);
        }
    }
    metrics::counter!("confsync_confluence_requests_total").increment(report.requests);
    metrics::counter!("confsync_confluence_retries_total").increment(report.retries);
}

/// A sync job's end, by outcome (`done`, `failed`, `cancelled`, `lost`).
pub fn record_job(outcome: &'static str) {
    metrics::counter!("confsync_sync_jobs_finished_total", "outcome" => outcome).increment(1);
}

/// A webhook delivery attempt, by outcome (`delivered`, `retrying`,
/// `failed`).
pub fn record_delivery(outcome: &'static str) {
    metrics::counter!("confsync_webhook_deliveries_total", "outcome" => outcome).increment(1);
}

/// `GET /metrics`: Prometheus's text format.
pub async fn render(State(app): State<Arc<App>>) -> Response {
    use store::IndexSource;
    match app.store.sync_job_counts().await {
        Ok(counts) => {
            for state in ["QUEUED", "RUNNING", "DONE", "FAILED", "CANCELLED"] {
                let n = counts
                    .iter()
                    .find(|(s, _)| s == state)
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!("confsync_sync_jobs", "state" => state).set(n as f64);
            }
        }
        Err(error) => tracing::warn!(%error, "metrics: counting jobs failed"),
    }
    match app.store.outbox_depth().await {
        Ok(n) => metrics::gauge!("confsync_outbox_depth").set(n as f64),
        Err(error) => tracing::warn!(%error, "metrics: reading the outbox failed"),
    }
    match app.store.index_pending(app.index.applied_position()).await {
        Ok(n) => metrics::gauge!("confsync_index_lag_changes").set(n as f64),
        Err(error) => tracing::warn!(%error, "metrics: reading the index lag failed"),
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        handle().render(),
    )
        .into_response()
}
