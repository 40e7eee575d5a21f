//! confsync's HTTP API: Carbon's shape (paths, fields, statuses, webhooks)
//! over confsync's store, sync engine and index.
//!
//! One process holds the store, one index (kept in step by a follower
//! that every commit nudges), the sync workers and the scheduler, and the
//! webhook deliverer. Everything durable is in the store: a killed
//! process loses no queued sync, no schedule and no webhook.
//!
//! It knows nothing of Confluence's wire format: the sync engine and the
//! client do.

#![forbid(unsafe_code)]

mod compat;
pub mod config;
mod connection;
pub mod console;
mod content;
pub mod error;
pub mod events;
mod extract;
pub mod jobs;
pub mod mcp;
mod metrics;
pub mod model;
mod oauth;
pub mod openapi;
pub mod pushes;
mod routes;
pub mod webhooks;

pub use config::Config;
pub use extract::hash_secret;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use error::ApiError;
use rand::Rng;
use std::sync::Arc;

pub struct App {
    pub config: Config,
    /// This node's name: its index replica's, used for the leases it
    /// takes on jobs and deliveries too.
    pub node_id: String,
    pub store: store::Store,
    pub index: Arc<index::Index>,
    pub follower: index::Follower,
    /// Signs OAuth states (derived from the data directory's secret key).
    state_key: [u8; 32],
    /// Signs presigned links to file contents (`content.rs`).
    link_key: [u8; 32],
    /// For Atlassian's OAuth endpoints and credential checks.
    http: reqwest::Client,
    /// For webhooks: never follows redirects (a redirect could lead to a
    /// private address that the target check refused).
    webhook_http: reqwest::Client,
    /// Nudged when a job is queued, and when an event is written.
    pub jobs_ready: tokio::sync::Notify,
    pub outbox_ready: tokio::sync::Notify,
    /// Requests per organisation (`limits`): 429 past the rate.
    rate: governor::DefaultKeyedRateLimiter<String>,
    /// Running jobs asked to stop (item listings cancelled), and a wake-up
    /// for the jobs waiting to hear it.
    cancelled: std::sync::Mutex<std::collections::HashSet<i64>>,
    cancel_asked: tokio::sync::Notify,
    /// The admin console's sign-in limits and pending consents.
    console: console::ConsoleState,
    /// Digests of the Confluence webhooks received in the last minutes
    /// (when): a repeat is done once.
    pub(crate) pushes_seen: parking_lot::Mutex<std::collections::HashMap<String, i64>>,
}

pub type AppState = Arc<App>;

impl App {
    /// Hours between a customer's scheduled syncs: theirs, or the server's.
    /// Asks a running job to stop.
    pub fn cancel_job(&self, job_id: i64) {
        self.cancelled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(job_id);
        self.cancel_asked.notify_waiters();
    }

    /// Resolves once the job is asked to stop (and forgets the asking).
    pub async fn until_cancelled(&self, job_id: i64) {
        loop {
            let asked = self.cancel_asked.notified();
            tokio::pin!(asked);
            // Registered before looking, so that no asking is missed.
            asked.as_mut().enable();
            if self.take_cancelled(job_id) {
                return;
            }
            asked.await;
        }
    }

    /// Whether a job was asked to stop (and forgets it: asked once).
    pub(crate) fn take_cancelled(&self, job_id: i64) -> bool {
        self.cancelled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&job_id)
    }

    /// Counts a request against its organisation's rate; `Err` with the
    /// 429 to answer when it is over.
    pub fn admit(&self, organisation_id: &str) -> Result<(), ApiError> {
        use governor::clock::Clock;
        self.rate
            .check_key(&organisation_id.to_string())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
                ApiError::RateLimited {
                    retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                }
            })
    }

    pub fn sync_interval_hours(&self, user: Option<&store::EndUser>) -> i64 {
        user.and_then(|u| u.auto_sync_interval)
            .unwrap_or(self.config.sync_interval_hours as i64)
    }
}

/// A running server: its address, and its tasks (aborted on drop; `stop`
/// shuts down in order).
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub app: AppState,
    serving: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving (letting requests in flight finish), then the workers,
    /// the scheduler and the deliverer, then the index follower; returns
    /// when the index is closed, so that another server may open the data
    /// directory. A sync in progress stops where it is and resumes at the
    /// next start.
    pub async fn stop(mut self) {
        if let Some((stop, serving)) = self.serving.take() {
            let _ = stop.send(());
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), serving).await;
        }
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        // Jobs stopped mid-run (as a kill would: their checkpoints are
        // whole) and deliveries claimed but not sent go back to the queue
        // now, for another node, rather than when their leases run out.
        match self.app.store.requeue_running_jobs(&self.app.node_id).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "running jobs handed back"),
            Err(error) => {
                tracing::warn!(%error, "handing back running jobs failed; their leases run out")
            }
        }
        if let Err(error) = self.app.store.release_deliveries(&self.app.node_id).await {
            tracing::warn!(%error, "handing back claimed deliveries failed; their leases run out");
        }
        let mut app = self.app.clone();
        drop(self);
        for _ in 0..500 {
            match Arc::try_unwrap(app) {
                Ok(app) => {
                    app.follower.shutdown().await;
                    return;
                }
                Err(shared) => {
                    app = shared;
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
        tracing::warn!("the server's state is still in use after stopping");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some((_, serving)) = &self.serving {
            serving.abort();
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A new organisation and its first API key (printed once, stored hashed).
pub async fn create_organisation(
    store: &store::Store,
    name: &str,
) -> store::Result<(store::Organisation, String)> {
    let organisation = store.create_organisation(name).await?;
    let key = add_api_key(store, &organisation.id).await?;
    Ok((organisation, key))
}

/// A new API key for an organisation: returned once, stored as its hash.
pub async fn add_api_key(store: &store::Store, organisation_id: &str) -> store::Result<String> {
    let key = format!("csk_{}", hex::encode(rand::thread_rng().gen::<[u8; 32]>()));
    store
        .add_api_key(organisation_id, &hash_secret(&key))
        .await?;
    Ok(key)
}

/// Opens the store and index under the configured data directory, starts
/// the workers, the scheduler and the deliverer, and serves on `listener`.
pub async fn start(
    mut config: Config,
    listener: tokio::net::TcpListener,
) -> Result<Running, String> {
    config.validate()?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // The address actually bound (port 0 picks one): OAuth redirects come back here.
    config.addr = addr;
    let store = store::Store::open_url(config.database_url.as_deref(), &config.data_dir)
        .await
        .map_err(|e| match &config.database_url {
            Some(url) => format!("opening the store at {}: {e}", store::redact_url(url)),
            None => format!("opening the store in {}: {e}", config.data_dir.display()),
        })?;
    let embedder: Option<Arc<dyn index::Embedder>> = match &config.embeddings {
        Some(e) => Some(Arc::new(
            index::OpenAiEmbedder::new(index::OpenAiConfig {
                base_url: e.url.clone(),
                model: e.model.clone(),
                api_key: std::env::var("CONFSYNC_EMBEDDINGS_KEY").ok(),
                dimensions: None,
            })
            .map_err(|e| e.to_string())?,
        )),
        None => None,
    };
    let index_dir = config.data_dir.join("index");
    let index = Arc::new(
        index::Index::open(&index_dir, &store, embedder)
            .await
            .map_err(|e| format!("opening the index in {}: {e}", index_dir.display()))?,
    );
    if !index.is_writable() {
        return Err(format!(
            "another process is writing the index in {}; stop it first",
            index_dir.display()
        ));
    }
    metrics::install();
    let node_id = index.node_id().to_string();
    // Every line this node logs names it (several nodes may share one
    // database and one log collector).
    let span = tracing::info_span!("node", node = %node_id);
    tracing::info!(node = %node_id, "node");
    let requeued = store
        .requeue_running_jobs(&node_id)
        .await
        .map_err(|e| e.to_string())?;
    if requeued > 0 {
        tracing::info!(requeued, "sync jobs interrupted by a stop are queued again");
    }
    store
        .release_deliveries(&node_id)
        .await
        .map_err(|e| e.to_string())?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let config_limits = config.limits.clone();
    let config_console = config.console.clone();
    let app = Arc::new(App {
        node_id,
        state_key: store.derive_key("oauth-state"),
        link_key: store.derive_key("presigned-links"),
        follower: span.in_scope(|| index::Follower::start(index.clone(), store.clone())),
        config,
        store,
        index,
        http: http.clone(),
        webhook_http: http,
        jobs_ready: Default::default(),
        outbox_ready: Default::default(),
        rate: governor::RateLimiter::keyed(rate_quota(&config_limits)),
        cancelled: Default::default(),
        cancel_asked: Default::default(),
        console: console::ConsoleState::new(&config_console),
        pushes_seen: Default::default(),
    });
    use tracing::Instrument;
    let mut tasks = Vec::new();
    for _ in 0..app.config.workers {
        tasks.push(tokio::spawn(
            jobs::worker(app.clone()).instrument(span.clone()),
        ));
    }
    tasks.push(tokio::spawn(
        jobs::scheduler(app.clone()).instrument(span.clone()),
    ));
    tasks.push(tokio::spawn(
        webhooks::deliverer(app.clone()).instrument(span.clone()),
    ));
    // Other nodes' commits wake this node's index follower (PostgreSQL);
    // its poll catches them otherwise.
    if let Some(watching) = app.store.watch_index_log(app.follower.hook()) {
        tasks.push(watching);
    }
    let router = router(app.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = app.config.limits.clone();
    let serving = tokio::spawn(serve(listener, router, limits, stopped).instrument(span));
    Ok(Running {
        addr,
        app,
        serving: Some((stop, serving)),
        tasks,
    })
}

fn rate_quota(limits: &config::LimitsConfig) -> governor::Quota {
    let nonzero = |n: u32| std::num::NonZeroU32::new(n.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
    governor::Quota::per_second(nonzero(limits.organisation_requests_per_second))
        .allow_burst(nonzero(limits.organisation_burst))
}

/// Serves HTTP/1.1 on `listener` until `stop`: a client must send its
/// headers within the header timeout (idle kept-alive connections are
/// closed after it too), at most `max_connections` are served at once (the
/// rest wait in the listen backlog, so a flood of slow clients cannot use
/// up the process's file descriptors), and at stop the connections in
/// flight finish their requests, for up to ten seconds.
async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: config::LimitsConfig,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_secs(
            limits.header_read_timeout_secs,
        ));
    loop {
        let slot = tokio::select! {
            _ = &mut stop => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of descriptors, or a connection reset before it
                    // was accepted: wait a little rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), graceful.shutdown()).await;
}

pub fn router(app: AppState) -> Router {
    // The API: every operation of the table in `openapi.rs`, which the
    // document is generated from too.
    let mut router = Router::new();
    for endpoint in openapi::endpoints() {
        router = router.route(endpoint.path, (endpoint.route)());
    }
    router
        // What the links of /parsed_file and /raw_file open (signed; not
        // an API operation, as Carbon's presigned URLs are not).
        .route("/file_contents/{file_id}/{part}", get(content::download))
        .route("/openapi.json", get(|| async { Json(openapi::document()) }))
        .route(
            "/webhooks/confluence/{connection}",
            axum::routing::post(pushes::receive),
        )
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics::render))
        .merge(console::routes())
        .merge(mcp::routes(app.clone()))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint").into_response()
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint takes another method",
            )
            .into_response()
        })
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn_with_state(
            std::time::Duration::from_secs(app.config.limits.request_timeout_secs),
            time_limit,
        ))
        .layer(cors(&app.config.cors))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            console::security_headers,
        ))
        .layer(axum::middleware::from_fn(access_log))
        .with_state(app)
}

/// Cross-origin calls from the configured origins (a file picker on the
/// developer's page): preflights answered with the headers and methods the
/// API takes; never with credentials.
fn cors(config: &config::CorsConfig) -> tower_http::cors::CorsLayer {
    use axum::http::{header, HeaderName, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins = if config.allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            config
                .allowed_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("customer-id"),
        ])
        .expose_headers([header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(600))
}

/// Every request is answered within the configured time: past it, 503
/// `request_timeout` (the work it started stops with it; what it
/// committed stays committed).
async fn time_limit(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "request_timeout",
            "the request took too long and was stopped",
        )
        .into_response(),
    }
}

/// One line per request: method, route (the matched pattern, so that ids
/// in paths and query strings, which may carry OAuth codes and states, stay
/// out of the log), status and time. Headers are never logged.
async fn access_log(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "(unrouted)".into());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::error!(%method, route, status, ms, "request");
    } else {
        tracing::info!(%method, route, status, ms, "request");
    }
    response
}

/// This node's index against the shared log: where it has applied it to,
/// and how many logged changes it has not applied yet (not searchable on
/// this node).
async fn index_lag(app: &App) -> Result<serde_json::Value, store::Error> {
    use store::IndexSource;
    let applied = app.index.applied_position();
    let pending = app.store.index_pending(applied).await?;
    let head = app.store.index_head().await?;
    Ok(serde_json::json!({
        "applied": applied,
        "head": head,
        "pending_changes": pending,
    }))
}

/// Liveness: the process answers. With the node's id and, when the store
/// answers, its index lag.
async fn health(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let index = index_lag(&app).await.ok();
    Json(serde_json::json!({"status": "ok", "node": app.node_id, "index": index}))
}

/// Readiness, for a load balancer: 200 when the store answers, 503 with
/// the reason when it does not; the index lag either way it is known.
async fn ready(State(app): State<Arc<App>>) -> Response {
    match index_lag(&app).await {
        Ok(index) => {
            Json(serde_json::json!({"status": "ready", "node": app.node_id, "index": index}))
                .into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "not ready: the store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "unavailable", "node": app.node_id,
                    "error": {"code": "store_unavailable", "message": "the store does not answer"}})),
            )
                .into_response()
        }
    }
}
