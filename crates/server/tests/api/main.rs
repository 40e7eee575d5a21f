//! The HTTP API against the simulator: a real server on a real port, a
//! real store and index under a temporary directory, and a webhook
//! receiver that checks signatures as a customer's application would.

mod browser;
mod carbon_connect;
mod console;
mod content;
mod credentials;
mod flow;
mod isolation;
mod malformed;
mod mcp;
mod oauth;
mod picker;
mod schedule;
mod schemathesis;
mod security;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use confluence_sim::{RunningSimulator, SimConfig, Simulator, SiteConfig};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A test's data directory and, when the suite runs on PostgreSQL
/// (`CONFSYNC_TEST_BACKEND=postgres`), a database of its own: both go
/// when the test ends.
pub struct TempDir(pub PathBuf, pub Option<store::testing::TestDatabase>);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "confsync-api-{name}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let db = on_postgres().then(|| {
            assert!(
                std::env::var("CONFSYNC_SECRET_KEY").is_ok(),
                "CONFSYNC_TEST_BACKEND=postgres needs CONFSYNC_SECRET_KEY (64 hex digits)"
            );
            store::testing::TestDatabase::create_blocking()
        });
        TempDir(dir, db)
    }

    /// The database URL the server is configured with (`None`: SQLite).
    pub fn database_url(&self) -> Option<String> {
        self.1.as_ref().map(|db| db.url.clone())
    }
}

/// Whether this run of the suite is on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("CONFSYNC_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn simulator(spaces: u32, pages: u32) -> RunningSimulator {
    Simulator::spawn(
        SimConfig {
            site: SiteConfig {
                seed: 7,
                spaces,
                pages,
            },
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

/// A server configured to reach the simulator only: as the site named
/// `acme`, and as Atlassian's OAuth and API hosts.
pub fn config(sim: &RunningSimulator, dir: &TempDir) -> server::Config {
    let creds = sim.credentials();
    let mut config = server::Config {
        data_dir: dir.0.clone(),
        database_url: dir.database_url(),
        workers: 2,
        scheduler_tick_secs: 1,
        ..Default::default()
    };
    config.stand_in(
        "acme",
        &creds.base_url,
        &creds.oauth_client_id,
        &creds.oauth_client_secret,
    );
    config.webhooks.allow_private_targets = true;
    config.webhooks.retry_base_ms = 50;
    // Tests hammer the API from one organisation; the rate limit has a
    // test of its own.
    config.limits.organisation_requests_per_second = 1_000_000;
    config.limits.organisation_burst = 1_000_000;
    config
}

pub async fn start(config: server::Config) -> server::Running {
    // The server's errors in the test's output (shown when a test fails).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    server::start(config, listener).await.unwrap()
}

/// An API client as one organisation (and customer).
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub key: String,
    pub customer: Option<String>,
    /// A customer token to authenticate with instead of the API key.
    pub token: Option<String>,
    /// The organisation's store id.
    pub organisation_id: String,
    pub http: reqwest::Client,
}

impl Api {
    pub async fn new(running: &server::Running, org: &str) -> Api {
        let (organisation, key) = server::create_organisation(&running.app.store, org)
            .await
            .unwrap();
        Api {
            base: running.url(),
            key,
            customer: None,
            token: None,
            organisation_id: organisation.id,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    pub fn customer(&self, customer: &str) -> Api {
        Api {
            customer: Some(customer.into()),
            ..self.clone()
        }
    }

    /// The same caller, authenticated by a customer token instead.
    pub fn with_token(&self, token: &str) -> Api {
        Api {
            token: Some(token.into()),
            customer: None,
            ..self.clone()
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        let mut request = match &self.token {
            Some(token) => request.header("authorization", format!("Token {token}")),
            None => request.bearer_auth(&self.key),
        };
        if let Some(customer) = &self.customer {
            request = request.header("customer-id", customer);
        }
        request
    }

    /// POSTs JSON; the status and the JSON answer (every answer is JSON).
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .request(reqwest::Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        answer(response).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        answer(
            self.request(reqwest::Method::GET, path)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        answer(
            self.request(reqwest::Method::DELETE, path)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// POSTs and insists on 200.
    pub async fn ok(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.post(path, body.clone()).await;
        assert_eq!(status, 200, "{path} {body} -> {answer}");
        answer
    }

    /// Connects the simulator's site with an API token.
    pub async fn connect(&self, sim: &RunningSimulator, sync_all: bool) -> i64 {
        self.connect_with(sim, json!({"sync_files_on_connection": sync_all}))
            .await
    }

    /// Connects the simulator's site with an API token and these
    /// `sync_options`.
    pub async fn connect_with(&self, sim: &RunningSimulator, sync_options: Value) -> i64 {
        let creds = sim.credentials();
        let answer = self
            .ok(
                "/integrations/connect",
                json!({"authentication": {"source": "CONFLUENCE", "subdomain": "acme",
                    "username": creds.email, "access_token": creds.api_token},
                    "sync_options": sync_options}),
            )
            .await;
        answer["data_source"]["id"].as_i64().unwrap()
    }

    /// Waits until the data source is READY and every file is READY.
    pub async fn wait_ready(&self, data_source_id: i64) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let sources = self
                .ok(
                    "/user_data_sources",
                    json!({"filters": {"ids": [data_source_id]}}),
                )
                .await;
            let status = sources["results"][0]["sync_status"]
                .as_str()
                .unwrap_or("")
                .to_string();
            assert_ne!(status, "SYNC_ERROR", "{sources}");
            if status == "READY" {
                let files = self
                    .all_files(json!({"organization_user_data_source_id": [data_source_id]}))
                    .await;
                if files.iter().all(|f| f["sync_status"] == "READY") {
                    return files;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "not ready: {sources}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A data source of this customer as the store holds it.
    pub async fn connection(&self, running: &server::Running, source: i64) -> store::Connection {
        let store = &running.app.store;
        let customer = self.customer.as_deref().expect("a customer's API");
        let user = store
            .end_user(&self.organisation_id, customer)
            .await
            .unwrap()
            .unwrap();
        store
            .data_source(&self.organisation_id, &user.id, source)
            .await
            .unwrap()
            .unwrap()
    }

    /// Lists the site's items (items/sync) and waits until the listing is
    /// done: the data source's `source_items_synced_at` moves.
    pub async fn list_items(&self, data_source_id: i64) -> Value {
        let before = self
            .ok(
                "/integrations/items/sync",
                json!({"data_source_id": data_source_id}),
            )
            .await["source_items_synced_at"]
            .clone();
        let started = Instant::now();
        loop {
            let sources = self
                .ok(
                    "/user_data_sources",
                    json!({"filters": {"ids": [data_source_id]}}),
                )
                .await;
            let source = sources["results"][0].clone();
            if !source["source_items_synced_at"].is_null()
                && source["source_items_synced_at"] != before
            {
                return source;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "items never listed: {source}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every file matching the filters, page by page.
    pub async fn all_files(&self, filters: Value) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let page = self
                .ok(
                    "/user_files_v2",
                    json!({"filters": filters, "pagination": {"limit": 250, "offset": out.len()}, "order_by": "id"}),
                )
                .await;
            let results = page["results"].as_array().unwrap().clone();
            let n = results.len();
            out.extend(results);
            if n < 250 {
                assert_eq!(out.len() as i64, page["count"].as_i64().unwrap());
                return out;
            }
        }
    }

    pub async fn search(&self, query: &str, k: usize) -> Vec<Value> {
        let answer = self
            .ok("/embeddings", json!({"query": query, "k": k}))
            .await;
        answer["documents"].as_array().unwrap().clone()
    }
}

/// oauth_url with `request`, the consent page as a browser opens it, and
/// the user's `decision` on it: the consent URL's parameters, and the
/// callback URL the simulator redirects to.
pub async fn authorize(
    api: &Api,
    sim: &RunningSimulator,
    request: Value,
    decision: &str,
) -> (std::collections::HashMap<String, String>, String) {
    let answer = api.ok("/integrations/oauth_url", request).await;
    let url = url::Url::parse(answer["oauth_url"].as_str().unwrap()).unwrap();
    assert!(url
        .as_str()
        .starts_with(&format!("{}/authorize?", sim.base_url())));
    let params: std::collections::HashMap<String, String> =
        url.query_pairs().into_owned().collect();
    assert_eq!(
        api.http.get(url.clone()).send().await.unwrap().status(),
        200,
        "the consent page renders"
    );
    let response = api
        .http
        .post(format!("{}/authorize/consent", sim.base_url()))
        .form(&[
            ("client_id", params["client_id"].as_str()),
            ("redirect_uri", params["redirect_uri"].as_str()),
            ("scope", params["scope"].as_str()),
            ("state", params["state"].as_str()),
            ("account", "admin@example.com"),
            ("decision", decision),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let callback = response.headers()["location"].to_str().unwrap().to_string();
    (params, callback)
}

/// Carbon's OpenAPI document, from ../shared/carbon-api beside the clone.
pub fn carbon_document() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/carbon-api/carbon.openapi.json"
        ))
        .unwrap(),
    )
    .unwrap()
}

pub async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("status {status}: not JSON: {text:?}"));
    (status, value)
}

/// A customer's application receiving webhooks: it records what arrives,
/// and answers 500 to the first `fail_first` deliveries.
#[derive(Clone, Default)]
pub struct Receiver {
    pub received: Arc<Mutex<Vec<(HeaderMap, String, u16)>>>,
    pub fail_first: Arc<AtomicUsize>,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> (Receiver, String) {
        let receiver = Receiver {
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
            ..Default::default()
        };
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    let fail = state
                        .fail_first
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    let status = if fail { 500 } else { 200 };
                    state.received.lock().push((
                        headers,
                        String::from_utf8_lossy(&body).into_owned(),
                        status,
                    ));
                    StatusCode::from_u16(status).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    /// The events accepted so far (answered 200), each checked against
    /// its signature with the signing key: (webhook_type, payload).
    pub fn events(&self, key: &str) -> Vec<(String, Value)> {
        self.received
            .lock()
            .iter()
            .filter(|(_, _, status)| *status == 200)
            .map(|(headers, body, _)| {
                let header = headers["carbon-signature"].to_str().unwrap();
                assert!(
                    signature_valid(key.as_bytes(), header, body),
                    "bad signature {header} on {body}"
                );
                let outer: Value = serde_json::from_str(body).unwrap();
                let payload: Value =
                    serde_json::from_str(outer["payload"].as_str().unwrap()).unwrap();
                (
                    payload["webhook_type"].as_str().unwrap().to_string(),
                    payload,
                )
            })
            .collect()
    }

    pub async fn wait_for(
        &self,
        key: &str,
        what: impl Fn(&[(String, Value)]) -> bool,
    ) -> Vec<(String, Value)> {
        let started = Instant::now();
        loop {
            let events = self.events(key);
            if what(&events) {
                return events;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "webhooks never arrived; got {:?}",
                events.iter().map(|(t, _)| t).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Carbon's documented check, written here independently of the server:
/// HMAC-SHA256 of "{t}.{body}" with the signing key, hex, equal to v1.
pub fn signature_valid(key: &[u8], header: &str, body: &str) -> bool {
    use hmac::Mac;
    let parts: std::collections::HashMap<&str, &str> = header
        .split(',')
        .filter_map(|p| p.split_once('='))
        .collect();
    let (Some(t), Some(v1)) = (parts.get("t"), parts.get("v1")) else {
        return false;
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes()) == *v1
}
