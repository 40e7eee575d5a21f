//! Load on /embeddings, with and without a sync running: concurrent
//! clients search one customer's content over HTTP while another
//! customer's full sync of the same site writes to the store and index;
//! then /user_files_v2 (a page of 100 files) alone.
//!
//! cargo bench -p server --bench load [-- PAGES CLIENTS SECONDS [quick]]
//! (defaults: 5000 pages, 16 clients, 10 seconds a phase; `quick` leaves
//! out the phase during a second full sync)
//! With CONFSYNC_BENCH_BACKEND=postgres the store is PostgreSQL (a fresh
//! database on CONFSYNC_TEST_POSTGRES's server, dropped afterwards).
//!
//! Prints the first sync's pages/s, requests/s, latency percentiles and
//! errors per phase, and the store's size on disk.

use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Phase {
    name: &'static str,
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn post(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    customer: &str,
    path: &str,
    body: Value,
) -> Value {
    let response = http
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .header("customer-id", customer)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

async fn wait_ready(http: &reqwest::Client, base: &str, key: &str, customer: &str, id: i64) {
    loop {
        let sources = post(
            http,
            base,
            key,
            customer,
            "/user_data_sources",
            json!({"filters": {"ids": [id]}}),
        )
        .await;
        match sources["results"][0]["sync_status"].as_str() {
            Some("READY") => return,
            Some("SYNC_ERROR") => panic!("sync failed: {sources}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// What a client sends: a path and a body for its i-th request.
type Request = fn(&[String], usize) -> (&'static str, Value);

fn search(queries: &[String], i: usize) -> (&'static str, Value) {
    (
        "/embeddings",
        json!({"query": queries[i % queries.len()], "k": 10}),
    )
}

fn list_files(_: &[String], i: usize) -> (&'static str, Value) {
    (
        "/user_files_v2",
        json!({"pagination": {"limit": 100, "offset": (i % 50) * 100}, "order_by": "created_at"}),
    )
}

#[allow(clippy::too_many_arguments)] // one phase's settings
async fn load(
    base: &str,
    key: &str,
    queries: Arc<Vec<String>>,
    clients: usize,
    until: impl Fn() -> bool + Send + Sync + 'static,
    name: &'static str,
    request: Request,
) -> Phase {
    let until = Arc::new(until);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (base, key, queries, until) = (
            base.to_string(),
            key.to_string(),
            queries.clone(),
            until.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut i = client * 7919;
            while !until() {
                i += 1;
                let (path, body) = request(&queries, i);
                let sent = Instant::now();
                let response = http
                    .post(format!("{base}{path}"))
                    .bearer_auth(&key)
                    .header("customer-id", "reader")
                    .json(&body)
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(sent.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await.unwrap();
        latencies.extend(l);
        errors += e;
    }
    latencies.sort();
    Phase {
        name,
        latencies,
        errors,
        elapsed: started.elapsed(),
    }
}

fn report(phase: &Phase) {
    let n = phase.latencies.len();
    println!(
        "{:<22} {:>7} requests  {:>7.0} req/s  p50 {:>6.1} ms  p95 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms  errors {}",
        phase.name,
        n,
        n as f64 / phase.elapsed.as_secs_f64(),
        percentile(&phase.latencies, 0.50),
        percentile(&phase.latencies, 0.95),
        percentile(&phase.latencies, 0.99),
        percentile(&phase.latencies, 1.0),
        phase.errors
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let pages: u32 = args.first().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let clients: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(16);
    let seconds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    // `quick`: no searching during a second full sync (the longest phase).
    let quick = args.get(3).is_some_and(|a| a == "quick");
    let postgres = std::env::var("CONFSYNC_BENCH_BACKEND").is_ok_and(|b| b == "postgres");
    if postgres && std::env::var("CONFSYNC_SECRET_KEY").is_err() {
        // Before any thread starts: the key the server seals with.
        std::env::set_var("CONFSYNC_SECRET_KEY", "07".repeat(32));
    }
    let database = postgres.then(store::testing::TestDatabase::create_blocking);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let sim = confluence_sim::Simulator::spawn(
            confluence_sim::SimConfig {
                site: confluence_sim::SiteConfig { seed: 3, spaces: 8, pages },
                ..Default::default()
            },
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let creds = sim.credentials();
        let dir = std::env::temp_dir().join(format!("confsync-load-{}", std::process::id()));
        let mut config = server::Config {
            data_dir: dir.clone(),
            database_url: database.as_ref().map(|d| d.url.clone()),
            ..Default::default()
        };
        // One organisation's clients are the whole load here: no rate limit.
        config.limits.organisation_requests_per_second = u32::MAX;
        config.limits.organisation_burst = u32::MAX;
        config.sites = vec![server::config::SiteConfig {
            name: "sim".into(),
            base_url: creds.base_url.clone(),
            context_path: "/wiki".into(),
        }];
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = server::start(config, listener).await.unwrap();
        let base = running.url();
        let (_, key) = server::create_organisation(&running.app.store, "bench").await.unwrap();
        let http = reqwest::Client::new();
        let auth = json!({"source": "CONFLUENCE", "subdomain": "sim", "username": creds.email, "access_token": creds.api_token});

        // The content searched: one customer's full sync.
        let started = Instant::now();
        let reader = post(&http, &base, &key, "reader", "/integrations/connect", json!({"authentication": auth})).await;
        wait_ready(&http, &base, &key, "reader", reader["data_source"]["id"].as_i64().unwrap()).await;
        let files = post(&http, &base, &key, "reader", "/user_files_v2", json!({"pagination": {"limit": 1}})).await;
        let took = started.elapsed().as_secs_f64();
        println!(
            "store: {}; site: {pages} pages; reader's sync: {} files, {} chunks in {took:.1} s ({:.0} pages/s)",
            if postgres { "PostgreSQL" } else { "SQLite" },
            files["count"],
            running.app.index.num_chunks(),
            f64::from(pages) / took
        );
        // Queries: words of titles, one or two at a time.
        let names = post(&http, &base, &key, "reader", "/user_files_v2", json!({"pagination": {"limit": 250}})).await;
        let words: Vec<String> = names["results"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["name"].as_str().unwrap_or("").split_whitespace().map(str::to_lowercase).collect::<Vec<_>>())
            .filter(|w| w.len() > 3 && !w.chars().all(|c| c.is_ascii_digit()))
            .collect();
        let queries: Arc<Vec<String>> = Arc::new(
            (0..400)
                .map(|i| {
                    if i % 3 == 0 {
                        format!("{} {}", words[(i * 31) % words.len()], words[(i * 17 + 5) % words.len()])
                    } else {
                        words[(i * 13) % words.len()].clone()
                    }
                })
                .collect(),
        );

        // Phase 1: searching alone.
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let idle = load(&base, &key, queries.clone(), clients, move || Instant::now() > deadline, "searches alone", search).await;

        if quick {
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let listing = load(&base, &key, queries, clients, move || Instant::now() > deadline, "user_files_v2 alone", list_files).await;
            println!("clients: {clients}");
            report(&idle);
            report(&listing);
            running.stop().await;
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
        // Phase 2: searching while another customer's full sync runs.
        let writer = post(&http, &base, &key, "writer", "/integrations/connect", json!({"authentication": auth})).await;
        let writer_id = writer["data_source"]["id"].as_i64().unwrap();
        let syncing = Arc::new(AtomicBool::new(true));
        let flag = syncing.clone();
        let (base2, key2) = (base.clone(), key.clone());
        let sync_started = Instant::now();
        let watcher = tokio::spawn(async move {
            wait_ready(&reqwest::Client::new(), &base2, &key2, "writer", writer_id).await;
            flag.store(false, Ordering::SeqCst);
            sync_started.elapsed()
        });
        let flag = syncing.clone();
        let min_end = Instant::now() + Duration::from_secs(2);
        let busy = load(&base, &key, queries.clone(), clients, move || !flag.load(Ordering::SeqCst) && Instant::now() > min_end, "searches during a sync", search).await;
        let sync_took = watcher.await.unwrap();
        // Phase 3: listing files alone (the reader's, a page of 100).
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let listing = load(&base, &key, queries, clients, move || Instant::now() > deadline, "user_files_v2 alone", list_files).await;
        println!("clients: {clients}");
        report(&idle);
        report(&busy);
        report(&listing);
        println!("writer's full sync during the load: {:.1} s", sync_took.as_secs_f64());
        running.stop().await;
        // Two customers' copies of the site, on disk.
        let bytes: u64 = match &database {
            Some(db) => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
                let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
                size as u64
            }
            None => ["confsync.db", "confsync.db-wal"]
                .iter()
                .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
                .map(|m| m.len())
                .sum(),
        };
        println!("store on disk: {:.1} MB", bytes as f64 / 1e6);
        let _ = std::fs::remove_dir_all(dir);
    });
}
